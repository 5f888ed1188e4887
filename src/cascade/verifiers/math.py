"""``math``: the last ``\\boxed{}`` of the answer, checked against the reference with math-verify.

Record: ``ground_truth`` is the reference answer as a string (LaTeX or plain, e.g.
``"\\frac{1}{2}"``, ``"[1, 2)"``, ``"10\\text{ cm}"``); an int or float is accepted too.
Score 1/0. Errors: ``no_boxed_answer`` (score 0), ``timeout``.

math-verify turns model text into sympy expressions (sympy's parser evaluates strings),
and some inputs make sympy compute for minutes in C code that no signal interrupts. So
the comparison never runs in the caller's process: it runs in a small pool of persistent
worker processes (``cascade.sandbox.pool.WorkerPool``) that are killed and replaced on
timeout. Inside a batch worker, which is already isolated, it runs inline. math-verify's
own ``signal.alarm`` timeouts are turned off (they fail outside the main thread); ours
are an interval timer inside the worker plus a hard kill from the parent.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any, Mapping

from cascade.errors import CascadeError
from cascade.sandbox.pool import WorkerPool, in_worker_process
from cascade.verifiers.base import Verifier, VerifyResult, register
from cascade.verifiers.extract import last_boxed

DEFAULT_TIMEOUT_S = 10.0
# The parent waits this much longer than the in-worker timer before killing the worker,
# so that an interruptible computation reports "timeout" without costing a restart.
_KILL_GRACE_S = 2.0


class MathTimeout(BaseException):
    """Raised by the in-worker timer. A BaseException on purpose: math-verify catches
    ``Exception`` around its parsing and would otherwise turn a timeout into "wrong"."""


def load_math_verify() -> None:
    """Import math-verify (and sympy) now, so that the first item does not pay for it."""
    import math_verify  # noqa: F401

    # We enforce timeouts ourselves; math-verify warns on every process that it is not.
    logging.getLogger("math_verify").setLevel(logging.ERROR)


def _equal(gold: str, predicted: str) -> bool:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    # The reference may be bare LaTeX ("\\frac{1}{2}") or plain text ("0.5"): wrap it in
    # math delimiters and let both extractors try. The prediction is the box content.
    gold_parsed = parse(
        f"${gold}$",
        extraction_config=[LatexExtractionConfig(), ExprExtractionConfig()],
        parsing_timeout=None,
    )
    predicted_parsed = parse(
        f"\\boxed{{{predicted}}}",
        extraction_config=[LatexExtractionConfig(boxed_match_priority=0)],
        parsing_timeout=None,
    )
    return bool(verify(gold_parsed, predicted_parsed, timeout_seconds=None))


def _raise_timeout(signum: int, frame: Any) -> None:
    raise MathTimeout()


def compare_with_timer(gold: str, predicted: str, timeout: float) -> bool | None:
    """``_equal`` under an interval timer; None when the timer fired.

    Only valid on the main thread of an isolated worker process.
    """
    previous = signal.signal(signal.SIGALRM, _raise_timeout)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return _equal(gold, predicted)
    except MathTimeout:
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


_helpers: WorkerPool | None = None
_helpers_lock = threading.Lock()


def _helper_pool() -> WorkerPool:
    global _helpers
    with _helpers_lock:
        if _helpers is None or _helpers.owner_pid != os.getpid():
            _helpers = WorkerPool(min(4, os.cpu_count() or 1), initializer=load_math_verify)
        return _helpers


def _ground_truth(record: Mapping[str, Any]) -> str:
    gold = record.get("ground_truth")
    if isinstance(gold, bool) or not isinstance(gold, (str, int, float)) or gold == "":
        raise CascadeError(
            "the math verifier needs the reference answer as a non-empty string",
            field="ground_truth",
        )
    return str(gold)


@register("math")
class MathVerifier(Verifier):
    def __init__(self, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.timeout = timeout

    def check(self, answer: str, record: Mapping[str, Any]) -> VerifyResult:
        gold = _ground_truth(record)
        predicted = last_boxed(answer)
        details: dict[str, Any] = {"extracted": predicted, "ground_truth": gold}
        if predicted is None:
            return VerifyResult(0.0, False, details, error="no_boxed_answer")
        if in_worker_process():
            equal = compare_with_timer(gold, predicted, self.timeout)
        else:
            outcome = _helper_pool().call(
                compare_with_timer, (gold, predicted, self.timeout), self.timeout + _KILL_GRACE_S
            )
            if outcome.status != "ok" and outcome.status != "timeout":
                return VerifyResult(0.0, False, details, error=f"verifier_error: {outcome.value}")
            equal = outcome.value if outcome.status == "ok" else None
        if equal is None:
            return VerifyResult(0.0, False, details, error="timeout")
        return VerifyResult(float(equal), equal, details)
