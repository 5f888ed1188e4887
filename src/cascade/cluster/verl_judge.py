"""The SWE reward's served judge on the verl path (``judge: {base_url, model, ...}``).

The local trainer asks the judge about every patch that is neither exact nor empty
(``cascade.trainers.rollout.JudgedRewards`` over ``cascade.verifiers.judge.JudgeClient``). On verl
the same two classes do it, inside verl's reward workers:

- the head node turns the stage's judge into plain settings (``judge_reward_kwargs``: the endpoint,
  the client's knobs, the prompt template's text) and hands them to verl as
  ``reward.custom_reward_function.reward_kwargs.judge``; verl passes them to our reward hook on
  every call;
- each reward worker process keeps one ``ServedJudge`` per settings (``served_judge``): one
  ``JudgeClient`` and one ``JudgedRewards``, so the judge prompt, the P("YES") read-out, retries,
  timeouts and the counted fallback reward are the local trainer's own code.

What cannot be the same, and why:

- verl scores rollouts one at a time, so requests are bounded per worker process
  (``concurrency`` split over verl's ``reward.num_workers``, at least one each), not per batch;
- the local trainer stops when more than ``max_error_share`` of one step's judge calls failed; a
  verl reward worker never sees a step, so it stops (raises, which ends the job) when more than
  that share of its last ``ERROR_WINDOW`` calls failed, after at least ``MIN_CALLS`` of them;
- a judge behind a loopback address (``127.0.0.1``, ``localhost``) is out of reach of reward
  workers on other nodes: ``check_judge_reachable`` refuses it for jobs of more than one node.

Torch-free and verl-free: the head node imports it to build the job's configuration.
"""

from __future__ import annotations

import collections
import ipaddress
import math
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from cascade.errors import CascadeError
from cascade.verifiers.base import VerifyResult

# The reward hook's keyword argument that carries the settings (verl's reward_kwargs).
REWARD_KWARG = "judge"
ERROR_WINDOW = 64  # judge calls a reward worker looks back over for max_error_share
MIN_CALLS = 8  # ... and how many it needs before a share means anything
_CLIENT_KEYS = ("api_key_env", "timeout_s", "retries", "max_tokens", "temperature", "top_logprobs", "enable_thinking")


def served_judge_stage(stage: Any) -> bool:
    """Whether ``stage`` scores patches with a served judge (not ``lexical``, not none)."""
    judge = getattr(stage, "judge", None)
    return judge is not None and judge != "lexical"


def is_loopback(base_url: str) -> bool:
    """Whether the URL's host is this machine only (127.0.0.0/8, ::1, localhost)."""
    host = urlsplit(base_url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_judge_reachable(stage: Any, nnodes: int) -> None:
    """Refuse a loopback judge for a job that spreads reward workers over several nodes."""
    if not served_judge_stage(stage) or nnodes <= 1 or not is_loopback(stage.judge.base_url):
        return
    raise CascadeError(
        f"stage '{stage.name}': the judge at {stage.judge.base_url} is a loopback address, out of reach of "
        f"verl's reward workers on the other {nnodes - 1} node(s); serve the judge on an address every node "
        f"reaches and pass --judge-base-url http://HOST:PORT/v1 (or --set stages.{stage.name}.judge.base_url=...)",
        field=f"stages.{stage.name}.judge.base_url",
    )


def judge_gap(stage: Any, nnodes: int) -> str | None:
    """The line the job script prints about the judge (None for a stage without a served judge)."""
    if not served_judge_stage(stage):
        return None
    where = ("a loopback address: reachable only because this job runs on one node, the judge's"
             if is_loopback(stage.judge.base_url) else "reached from every node")
    return (f"judge {stage.judge.base_url} ({where}); requests bounded per reward worker, and "
            f"max_error_share {stage.judge.max_error_share:g} judged per worker over its last {ERROR_WINDOW} "
            "judge calls (verl scores rollouts one at a time, so no worker sees a whole step)")


def judge_reward_kwargs(stage: Any, *, num_workers: int, template: str | None) -> dict[str, Any]:
    """The stage's judge as plain values for verl's ``reward_kwargs`` (``template``: the prompt
    file's checked text, or None for the built-in prompt). ``concurrency`` is per reward worker:
    the recipe's total split over ``num_workers``, at least 1."""
    spec = stage.judge
    settings: dict[str, Any] = {
        "base_url": spec.base_url,
        "model": spec.model,
        "concurrency": max(1, math.ceil(spec.concurrency / max(1, num_workers))),
        "fallback_reward": spec.fallback_reward,
        "max_error_share": spec.max_error_share,
    }
    for key in _CLIENT_KEYS:
        value = getattr(spec, key)
        if value is not None:  # Hydra has no None literal inside a dict value: absent means unset
            settings[key] = value
    if template is not None:
        settings["template"] = template
    return settings


class ServedJudge:
    """One reward worker's judge: the local trainer's ``JudgedRewards`` over a ``JudgeClient``,
    at most ``concurrency`` requests at once, failures counted over the last ``ERROR_WINDOW`` calls."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        from cascade.trainers.rollout import JudgedRewards
        from cascade.verifiers.judge import JudgeClient

        client_kwargs = {key: settings[key] for key in _CLIENT_KEYS if key in settings}
        self.client = JudgeClient(str(settings["base_url"]), str(settings["model"]),
                                  concurrency=int(settings["concurrency"]), **client_kwargs)
        # max_error_share 1: one item never trips the per-batch check; the window below does it.
        self.rewards = JudgedRewards(self.client, template=settings.get("template"),
                                     fallback_reward=float(settings["fallback_reward"]), max_error_share=1.0)
        self.max_error_share = float(settings["max_error_share"])
        self.slots = threading.BoundedSemaphore(int(settings["concurrency"]))
        self.recent: collections.deque[bool] = collections.deque(maxlen=ERROR_WINDOW)
        self.lock = threading.Lock()

    def rejudge(self, record: Mapping[str, Any], verdict: VerifyResult) -> VerifyResult:
        """``verdict`` with the judge's P("YES") in place of a lexical score (else unchanged)."""
        with self.slots:
            out = self.rewards.rejudge([record], [verdict])[0]
        if out is verdict:  # exact, empty, unparseable or errored: no judge call
            return out
        with self.lock:
            self.recent.append(out.error == "judge_error")
            failed, calls = sum(self.recent), len(self.recent)
        if calls >= MIN_CALLS and failed > self.max_error_share * calls:
            raise CascadeError(f"the judge failed {failed} of this reward worker's last {calls} calls (more than "
                               f"max_error_share {self.max_error_share:g}); last error: "
                               f"{out.details.get('judge_error')}", field="judge")
        return out


_JUDGES: dict[tuple, ServedJudge] = {}
_JUDGES_LOCK = threading.Lock()


def served_judge(settings: Mapping[str, Any]) -> ServedJudge:
    """The process's ``ServedJudge`` for these settings (made once per reward worker)."""
    key = tuple(sorted((str(k), repr(settings[k])) for k in settings))
    with _JUDGES_LOCK:
        if key not in _JUDGES:
            _JUDGES[key] = ServedJudge({str(k): settings[k] for k in settings})
        return _JUDGES[key]
