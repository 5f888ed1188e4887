"""Score many completions at once, in a bounded pool of reusable worker processes.

Why processes: verifiers run model-written text through parsers (sympy, json, difflib)
and sometimes model-written code; a hang or crash must cost one item, not the caller.

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
- ``WorkerPool`` is the pool itself; the math verifier reuses it for its own isolation.

Workers are fresh interpreters (never forked from the caller, so the caller's threads and
locks cannot leak into them), talk over pipes, and run in their own process group so that
killing a hung worker also kills any subprocess it started (the code sandbox does).
POSIX only (``os.killpg``, ``pass_fds``).
"""

from __future__ import annotations

import atexit
import copy
import dataclasses
import json
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Callable, Mapping, Sequence

from cascade.errors import CascadeError
from cascade.sandbox.modes import SandboxUnavailable
from cascade.verifiers.base import Verifier, VerifyResult, get_verifier

_IN_WORKER = False


def in_worker_process() -> bool:
    """True inside a pool worker: the process is already isolated and may run untrusted
    parsing inline (its main thread is free for signal-based timeouts)."""
    return _IN_WORKER


@dataclass
class Outcome:
    """What happened to one item sent to a worker."""

    status: str  # "ok" | "error" | "timeout" | "crashed"
    value: Any = None  # the return value for "ok", a message otherwise


def _worker_main(recv_fd: int, send_fd: int) -> None:
    """Entry point of a worker process (started by ``_Worker`` through ``_BOOT``)."""
    global _IN_WORKER
    _IN_WORKER = True
    inbox = Connection(recv_fd, writable=False)
    outbox = Connection(send_fd, readable=False)
    initializer = inbox.recv()
    if initializer is not None:
        initializer()
    outbox.send("ready")
    while True:
        try:
            message = inbox.recv()
        except (EOFError, OSError):
            return  # the parent went away
        if message is None:
            return
        fn, blobs = message
        for blob in blobs:
            try:
                outbox.send(Outcome("ok", fn(*pickle.loads(blob))))
            except Exception as exc:  # one item's failure is reported, the worker lives on
                outbox.send(Outcome("error", f"{type(exc).__name__}: {exc}"))


# Workers are fresh interpreters (not multiprocessing children): a spawned
# multiprocessing child re-imports the caller's main script, which breaks plain scripts
# that call a verifier at top level. The parent's sys.path travels along.
_BOOT = (
    "import json, sys; sys.path[:0] = json.loads(sys.argv[1]); "
    "from cascade.verifiers.batch import _worker_main; "
    "_worker_main(int(sys.argv[2]), int(sys.argv[3]))"
)


class _Worker:
    def __init__(self, initializer: Callable[[], None] | None, start_timeout: float) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        try:
            # Its own session (process group): killing a hung worker also kills whatever
            # subprocesses a verifier started in it (the code sandbox does).
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, json.dumps(sys.path), str(to_child_r), str(from_child_w)],
                pass_fds=(to_child_r, from_child_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # stdout belongs to the caller (CLI tables, JSONL)
                start_new_session=True,
            )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self.outbox = Connection(to_child_w, readable=False)
        self.inbox = Connection(from_child_r, writable=False)
        self.outbox.send(initializer)
        if not self.inbox.poll(start_timeout):
            self.kill()
            raise RuntimeError(f"verifier worker did not start within {start_timeout:.0f}s")
        try:
            self.inbox.recv()  # "ready"
        except EOFError:
            self.kill()
            raise RuntimeError("verifier worker exited while starting (see its stderr)") from None

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait(timeout=5)
        self.outbox.close()
        self.inbox.close()

    def stop(self) -> None:
        try:
            self.outbox.send(None)
            self.process.wait(timeout=1)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        self.kill()  # also reaps anything the worker left behind in its group


_LIVE_POOLS: "weakref.WeakSet[WorkerPool]" = weakref.WeakSet()


class WorkerPool:
    """At most ``size`` persistent worker processes, started on demand, safe to share
    between threads (each worker serves one caller at a time)."""

    def __init__(
        self,
        size: int,
        *,
        initializer: Callable[[], None] | None = None,
        start_timeout: float = 120.0,
    ) -> None:
        if size < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.size = size
        self._initializer = initializer
        self._start_timeout = start_timeout
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self.owner_pid = os.getpid()  # a forked child must not share our workers' pipes
        _LIVE_POOLS.add(self)

    def _acquire(self) -> _Worker:
        self._slots.acquire()
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        try:
            worker = _Worker(self._initializer, self._start_timeout)
        except BaseException:
            self._slots.release()
            raise
        with self._lock:
            self._all.add(worker)
        return worker

    def _release(self, worker: _Worker | None) -> None:
        if worker is not None:
            self._idle.put(worker)
        self._slots.release()

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._all.discard(worker)

    def map_chunk(self, fn: Callable[..., Any], items: Sequence[tuple], timeout: float) -> list[Outcome]:
        """Run ``fn(*args)`` for each args tuple on one worker, in order.

        ``timeout`` applies to each item separately. A worker that hangs or dies is
        replaced, and the rest of the chunk continues on the replacement.
        """
        outcomes: list[Outcome | None] = [None] * len(items)
        # Each item is pickled on its own, so one that cannot be sent fails alone.
        pending: list[tuple[int, bytes]] = []
        for k, args in enumerate(items):
            try:
                pending.append((k, pickle.dumps(args, protocol=pickle.HIGHEST_PROTOCOL)))
            except Exception as exc:
                outcomes[k] = Outcome("error", f"cannot send the item to a worker: {type(exc).__name__}: {exc}")
        while pending:
            worker = self._acquire()
            healthy = True
            try:
                worker.outbox.send((fn, [blob for _, blob in pending]))
                while pending:
                    k = pending[0][0]
                    if not worker.inbox.poll(timeout):
                        outcomes[k] = Outcome("timeout", f"no result within {timeout:g}s")
                        healthy = False
                    else:
                        try:
                            outcomes[k] = worker.inbox.recv()
                        except (EOFError, OSError):
                            code = worker.process.poll()
                            outcomes[k] = Outcome("crashed", f"worker died (exit code {code})")
                            healthy = False
                    pending.pop(0)
                    if not healthy:
                        break  # the rest of the chunk goes to a fresh worker
            except BaseException:
                healthy = False
                raise
            finally:
                if healthy:
                    self._release(worker)
                else:
                    self._discard(worker)
                    self._release(None)
        return [o for o in outcomes if o is not None]

    def call(self, fn: Callable[..., Any], args: tuple, timeout: float) -> Outcome:
        return self.map_chunk(fn, [args], timeout)[0]

    def close(self) -> None:
        with self._lock:
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            worker.stop()


@atexit.register
def _close_live_pools() -> None:
    # Workers also exit on their own when our pipe closes; this reaps them promptly.
    for pool in list(_LIVE_POOLS):
        if pool.owner_pid == os.getpid():
            pool.close()


# ---------------------------------------------------------------------------------------
# Batch scoring

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


def _to_result(outcome: Outcome, timeout: float) -> VerifyResult:
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

