"""Score many completions at once, in the sandbox's pool of reusable worker processes
(``cascade.sandbox.pool``): a verifier's hang or crash costs one item, not the caller.

- ``score_batch(records, completions)`` routes each record by its ``verifier`` key and
  returns one ``VerifyResult`` per record, in input order. A bad record (no ground
  truth, unknown verifier) or a verifier exception becomes that record's error result;
  an item that runs past ``timeout`` becomes ``VerifyResult(0, False, error="timeout")``
  and its worker is replaced. Nothing one record does can fail the batch.
  Items that repeat a record and completion exactly are scored once (verifiers are
  deterministic); each copy gets its own copy of the result.
  Where a record's verifier runs model-written code (``code``) and no sandbox that holds
  can start here, ``score_batch`` raises ``SandboxUnavailable`` before scoring anything.
- ``score_one(record, completion)`` is the same for a single item.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping, Sequence

from cascade.errors import CascadeError
from cascade.sandbox.modes import SandboxUnavailable
from cascade.sandbox.pool import WorkerOutcome, WorkerPool
from cascade.verifiers.base import Verifier, VerifyResult, get_verifier

_verifier_cache: dict[str, Verifier] = {}
# Verifiers that run model-written code in the sandbox.
SANDBOXED_VERIFIERS = frozenset({"code"})


def _worker_init() -> None:
    from cascade.verifiers import load_builtin
    from cascade.verifiers.math import load_math_verify

    load_builtin()
    load_math_verify()  # pay sympy's import once per worker, not inside an item's timeout


def _verify_item(name: str, completion: str, record: Mapping[str, Any]) -> VerifyResult:
    verifier = _verifier_cache.get(name)
    if verifier is None:
        verifier = _verifier_cache[name] = get_verifier(name)
    try:
        return verifier.verify(completion, record)
    except SandboxUnavailable as exc:
        return VerifyResult(0.0, False, error=f"sandbox_error: {exc.format()}")
    except CascadeError as exc:
        return VerifyResult(0.0, False, error=f"bad_record: {exc.format()}")


def _route(record: Any, completion: Any, known: set[str]) -> str | VerifyResult:
    """The verifier name for a record, or the error result when it cannot be scored."""
    if not isinstance(record, Mapping):
        return VerifyResult(0.0, False, error="bad_record: a record must be a JSON object")
    name = record.get("verifier")
    if not isinstance(name, str) or not name:
        return VerifyResult(0.0, False, error="bad_record: missing 'verifier'")
    if name not in known:
        return VerifyResult(0.0, False, error=f"unknown_verifier: '{name}'")
    if "ground_truth" not in record:
        return VerifyResult(0.0, False, error="bad_record: missing 'ground_truth'")
    if not isinstance(completion, str):
        return VerifyResult(0.0, False, error="bad_record: completion must be a string")
    return name


def _to_result(outcome: WorkerOutcome, timeout: float) -> VerifyResult:
    if outcome.status == "ok":
        return outcome.value
    if outcome.status == "timeout":
        return VerifyResult(0.0, False, {"reason": outcome.value}, error="timeout", seconds=timeout)
    if outcome.status == "crashed":
        return VerifyResult(0.0, False, error=f"crashed: {outcome.value}")
    return VerifyResult(0.0, False, error=f"verifier_error: {outcome.value}")


_pools: dict[int, WorkerPool] = {}
_pools_lock = threading.Lock()


def _pool(workers: int) -> WorkerPool:
    # One pool per size, kept for the life of the process: RL scores a batch every step.
    with _pools_lock:
        pool = _pools.get(workers)
        if pool is None or pool.owner_pid != os.getpid():
            pool = _pools[workers] = WorkerPool(workers, initializer=_worker_init)
        return pool


def _chunks(indices: list[int], workers: int) -> list[list[int]]:
    # Several chunks per worker keep the load balanced; chunks of many fast items keep
    # the pipe round-trips from dominating. 64 bounds the work redone after a timeout.
    size = max(1, min(64, -(-len(indices) // (workers * 4))))
    return [indices[i : i + size] for i in range(0, len(indices), size)]


def score_batch(
    records: Sequence[Mapping[str, Any]],
    completions: Sequence[str],
    *,
    workers: int | None = None,
    timeout: float = 30.0,
    progress: Callable[[int], None] | None = None,
) -> list[VerifyResult]:
    """Score ``completions[i]`` against ``records[i]`` with ``records[i]["verifier"]``.

    ``workers`` defaults to the CPU count; ``timeout`` is seconds per item; ``progress``
    (optional) is called with the number of items just finished.
    """
    if len(records) != len(completions):
        raise CascadeError(
            f"got {len(records)} records but {len(completions)} completions; they must pair up"
        )
    from cascade.verifiers import registered_names

    known = set(registered_names())
    results: list[VerifyResult | None] = [None] * len(records)
    todo: list[int] = []
    # A GRPO group or an eval's k samples often repeat a completion word for word (44% of
    # a tiny-cascade code eval's did); verifiers are deterministic, so each distinct
    # (record, completion) runs once and its copies take its result: for the code verifier,
    # that many fewer sandbox jobs.
    first_of: dict[tuple[str, str], int] = {}
    copies: list[tuple[int, int]] = []  # (index, index of the item that is scored)
    for i, (record, completion) in enumerate(zip(records, completions)):
        routed = _route(record, completion, known)
        if isinstance(routed, VerifyResult):
            results[i] = routed
            continue
        key = (completion, json.dumps(record, sort_keys=True, default=repr))
        if key in first_of:
            copies.append((i, first_of[key]))
        else:
            first_of[key] = i
            todo.append(i)
    if any(records[i]["verifier"] in SANDBOXED_VERIFIERS for i in todo):
        # Model-written code never runs without a sandbox that holds: no strong mode here
        # (and the weak one not asked for) stops training, eval and verify at once with
        # the reason, instead of scoring every item 0.
        from cascade.sandbox import sandbox_mode

        sandbox_mode()
    if progress and len(todo) + len(copies) < len(records):
        progress(len(records) - len(todo) - len(copies))
    if todo:
        size = max(1, workers or os.cpu_count() or 1)
        pool = _pool(size)

        def run_chunk(chunk: list[int]) -> None:
            items = [(records[i]["verifier"], completions[i], dict(records[i])) for i in chunk]
            for i, outcome in zip(chunk, pool.map_chunk(_verify_item, items, timeout)):
                results[i] = _to_result(outcome, timeout)
            if progress:
                progress(len(chunk))

        with ThreadPoolExecutor(max_workers=size, thread_name_prefix="cascade-verify") as threads:
            list(threads.map(run_chunk, _chunks(todo, size)))
    for i, scored in copies:
        # A copy of its own (callers may annotate one result's details), which took no time.
        results[i] = dataclasses.replace(copy.deepcopy(results[scored]), seconds=0.0)
    if progress and copies:
        progress(len(copies))
    return [r for r in results if r is not None]


def score_one(
    record: Mapping[str, Any], completion: str, *, timeout: float = 30.0
) -> VerifyResult:
    """``score_batch`` for one item (same isolation, timeout and error handling)."""
    return score_batch([record], [completion], timeout=timeout)[0]

