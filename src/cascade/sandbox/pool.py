"""A bounded pool of reusable worker processes that run one item at a time each.

Why processes: verifiers run model-written text through parsers (sympy, json, difflib)
and sometimes model-written code; a hang or crash must cost one item, not the caller.
``cascade.verifiers.batch`` scores batches on it, and the math verifier reuses it for its
own isolation.

Workers are fresh interpreters (never forked from the caller, so the caller's threads and
locks cannot leak into them), talk over pipes, and run in their own process group so that
killing a hung worker also kills any subprocess it started (the code sandbox does).
An item that runs past its timeout, or kills its worker, becomes that item's
``WorkerOutcome`` and the worker is replaced. POSIX only (``os.killpg``, ``pass_fds``).
"""

from __future__ import annotations

import atexit
import json
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import weakref
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Callable, Sequence

_IN_WORKER = False


def in_worker_process() -> bool:
    """True inside a pool worker: the process is already isolated and may run untrusted
    parsing inline (its main thread is free for signal-based timeouts)."""
    return _IN_WORKER


@dataclass
class WorkerOutcome:
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
                outbox.send(WorkerOutcome("ok", fn(*pickle.loads(blob))))
            except Exception as exc:  # one item's failure is reported, the worker lives on
                outbox.send(WorkerOutcome("error", f"{type(exc).__name__}: {exc}"))


# Workers are fresh interpreters (not multiprocessing children): a spawned
# multiprocessing child re-imports the caller's main script, which breaks plain scripts
# that call a verifier at top level. The parent's sys.path travels along.
_BOOT = (
    "import json, sys; sys.path[:0] = json.loads(sys.argv[1]); "
    "from cascade.sandbox.pool import _worker_main; "
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

    def map_chunk(self, fn: Callable[..., Any], items: Sequence[tuple], timeout: float) -> list[WorkerOutcome]:
        """Run ``fn(*args)`` for each args tuple on one worker, in order.

        ``timeout`` applies to each item separately. A worker that hangs or dies is
        replaced, and the rest of the chunk continues on the replacement.
        """
        outcomes: list[WorkerOutcome | None] = [None] * len(items)
        # Each item is pickled on its own, so one that cannot be sent fails alone.
        pending: list[tuple[int, bytes]] = []
        for k, args in enumerate(items):
            try:
                pending.append((k, pickle.dumps(args, protocol=pickle.HIGHEST_PROTOCOL)))
            except Exception as exc:
                outcomes[k] = WorkerOutcome("error", f"cannot send the item to a worker: {type(exc).__name__}: {exc}")
        while pending:
            worker = self._acquire()
            healthy = True
            try:
                worker.outbox.send((fn, [blob for _, blob in pending]))
                while pending:
                    k = pending[0][0]
                    if not worker.inbox.poll(timeout):
                        outcomes[k] = WorkerOutcome("timeout", f"no result within {timeout:g}s")
                        healthy = False
                    else:
                        try:
                            outcomes[k] = worker.inbox.recv()
                        except (EOFError, OSError):
                            code = worker.process.poll()
                            outcomes[k] = WorkerOutcome("crashed", f"worker died (exit code {code})")
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

    def call(self, fn: Callable[..., Any], args: tuple, timeout: float) -> WorkerOutcome:
        """``fn(*args)`` on one worker, within ``timeout`` seconds."""
        return self.map_chunk(fn, [args], timeout)[0]

    def close(self) -> None:
        """Stop every worker and whatever it started."""
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
