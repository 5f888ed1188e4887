"""The local backend: the local engine's batched KV-cache generation, CPU or one GPU.

Requests are grouped by their sampling settings (seed included) and each group goes to
one ``LocalEngine.generate`` call, which sorts by length and decodes
``engine.generation_batch_size`` rows at a time; so every sample with the same seed comes
from one seeded call and a run is reproducible. Temperature 0 is greedy decoding.
"""

from __future__ import annotations

from itertools import groupby
from typing import Any, Sequence

from cascade.errors import CascadeError
from cascade.eval.backends.base import CONTEXT_SKIP, GenOutput, GenRequest
from cascade.eval.backends.prompt import context_length, render_prompt, strip_stop


class LocalBackend:
    name = "local"

    def __init__(self, model: str, *, device: str = "auto", dtype: str = "auto", batch_size: int = 64,
                 engine: Any = None) -> None:
        if engine is None:
            from cascade.engine.local import LocalEngine

            engine = LocalEngine(model, device=device, dtype=dtype, generation_batch_size=batch_size)
        self.engine = engine

    def render(self, req: GenRequest) -> str:
        return render_prompt(self.engine.tokenizer, req.messages, enable_thinking=req.enable_thinking, tools=req.tools)

    def generate(self, requests: Sequence[GenRequest]) -> list[GenOutput]:
        from cascade.engine.base import SamplingParams

        outputs: list[GenOutput | None] = [None] * len(requests)

        def key(i: int) -> tuple[int, int, float, float]:
            r = requests[i]
            return (r.seed, r.max_tokens, r.temperature, r.top_p)

        for (seed, max_tokens, temperature, top_p), group in groupby(sorted(range(len(requests)), key=key), key=key):
            idx = list(group)
            prompts = [self.render(requests[i]) for i in idx]
            fits = self._fits(prompts, max_tokens)
            for i, ok in zip(idx, fits):
                if not ok:
                    outputs[i] = GenOutput(text="", tokens=0, finish_reason=CONTEXT_SKIP,
                                           extra={"error": f"the prompt plus a {max_tokens}-token budget exceed the "
                                                           "model's context; pass a smaller --max-tokens"})
            idx, prompts = [i for i, ok in zip(idx, fits) if ok], [p for p, ok in zip(prompts, fits) if ok]
            if not idx:
                continue
            sampling = SamplingParams(max_new_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed)
            for i, g in zip(idx, self.engine.generate(prompts, sampling)):
                outputs[i] = GenOutput(text=strip_stop(g.text), tokens=len(g.token_ids), finish_reason=g.finish_reason)
        return [o for o in outputs if o is not None]

    def _fits(self, prompts: list[str], max_tokens: int) -> list[bool]:
        """Whether each prompt plus the budget fits the model's positions; the engine would
        otherwise allocate a KV cache past the trained context. Those that do not are
        skipped, not generated, so one long prompt cannot stop a run."""
        limit = context_length(getattr(self.engine.model, "config", None))
        if limit is None:
            return [True] * len(prompts)
        lengths = [len(ids) for ids in self.engine.tokenizer(prompts, add_special_tokens=False)["input_ids"]]
        return [n + max_tokens <= limit for n in lengths]

    def close(self) -> None:
        pass
