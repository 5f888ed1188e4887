"""Dynamic batching for `cascade serve`: concurrent requests share one decode batch.

One worker thread owns the engine (the model and the tokenizer are not safe to share
between threads). It takes the first waiting request, gathers whatever else arrives within
``window_s`` (up to ``max_batch``), and decodes requests with identical sampling settings
in one ``generate_ids`` call: the engine seeds one generator per call, so only requests
with the same seed can share a batch without changing what that seed means. A client
running N requests in flight (``cascade eval --backend openai --concurrency N``) thus gets
the local backend's batched speed.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

Budget = Callable[[int], int]  # prompt length -> completion budget; raises to refuse the request


@dataclass
class Job:
    prompt: str
    sampling: Any  # cascade.engine.base.SamplingParams without max_new_tokens filled in
    budget: Budget
    result: Future = field(default_factory=Future)  # -> (prompt_ids, Generation)
    # None: no log-probabilities; k >= 0: each completion token's, with its top k alternatives
    # (in Generation.meta["token_logprobs"], from LocalEngine.completion_logprobs).
    logprobs_k: int | None = None
    gone: threading.Event = field(default_factory=threading.Event)  # set: the client left; stop


class Batcher:
    def __init__(self, engine: Any, *, max_batch: int = 64, window_s: float = 0.005) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.window_s = window_s
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="cascade-serve-batcher", daemon=True)
        self.thread.start()

    def submit(self, prompt: str, sampling: Any, budget: Budget, logprobs_k: int | None = None, *,
               gone: threading.Event | None = None) -> Future:
        """Queue a prompt; setting ``gone`` drops it, or stops its row mid-decode."""
        job = Job(prompt, sampling, budget, logprobs_k=logprobs_k, gone=gone or threading.Event())
        self.jobs.put(job)
        return job.result

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            first = self.jobs.get()
            if first is None:
                return
            batch, stop = self._gather(first)
            self._run(batch)
            if stop:
                return

    def _gather(self, first: Job) -> tuple[list[Job], bool]:
        batch = [first]
        while len(batch) < self.max_batch:
            try:
                job = self.jobs.get(timeout=self.window_s)
            except queue.Empty:
                break
            if job is None:
                return batch, True
            batch.append(job)
        return batch, False

    def _run(self, batch: list[Job]) -> None:
        from dataclasses import replace

        groups: dict[Any, list[tuple[Job, list[int]]]] = {}
        for job in batch:
            if job.gone.is_set():  # its client left while it waited
                job.result.cancel()
                continue
            try:
                ids = self.engine.tokenizer(job.prompt, add_special_tokens=False)["input_ids"]
                sampling = replace(job.sampling, max_new_tokens=job.budget(len(ids)))
            except Exception as exc:  # the request's own problem (e.g. too long): only it fails
                job.result.set_exception(exc)
                continue
            groups.setdefault(sampling, []).append((job, ids))
        for sampling, members in groups.items():
            try:
                generations = self.engine.generate_ids([ids for _, ids in members], sampling,
                                                       cancelled=lambda i, m=members: m[i][0].gone.is_set())
            except Exception as exc:
                for job, _ in members:
                    job.result.set_exception(exc)
                continue
            for (job, ids), gen in zip(members, generations):
                if job.logprobs_k is not None:
                    try:
                        # The stop token is not part of the message, so it gets no entry.
                        tokens = gen.token_ids[:-1] if gen.finish_reason == "stop" else gen.token_ids
                        gen.meta["token_logprobs"] = self.engine.completion_logprobs(ids, tokens, job.logprobs_k)
                    except Exception as exc:
                        job.result.set_exception(exc)
                        continue
                job.result.set_result((ids, gen))
