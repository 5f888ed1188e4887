"""The local backend: the local engine's batched KV-cache generation, CPU or one GPU.

Requests are grouped by their sampling settings (seed included), so every sample with the
same seed comes from one seeded ``generate`` call, which makes runs reproducible.
"""

from __future__ import annotations

from itertools import groupby
from typing import Any, Sequence

from cascade.eval.backends.base import GenOutput, GenRequest


class LocalBackend:
    name = "local"

    def __init__(self, model: str, *, device: str = "auto", dtype: str = "auto", batch_size: int = 64,
                 engine: Any = None) -> None:
        if engine is None:
            from cascade.engine.local import LocalEngine

            engine = LocalEngine(model, device=device, dtype=dtype)
        self.engine = engine
        self.batch_size = batch_size

    def render(self, req: GenRequest) -> str:
        return self.engine.tokenizer.apply_chat_template(
            req.messages, tools=req.tools, tokenize=False, add_generation_prompt=True,
            enable_thinking=req.enable_thinking,
        )

    def generate(self, requests: Sequence[GenRequest]) -> list[GenOutput]:
        from cascade.engine.base import SamplingParams

        outputs: list[GenOutput | None] = [None] * len(requests)

        def key(i: int) -> tuple:
            r = requests[i]
            return (r.seed, r.max_tokens, r.temperature, r.top_p)

        for (seed, max_tokens, temperature, top_p), group in groupby(sorted(range(len(requests)), key=key), key=key):
            idx = list(group)
            sampling = SamplingParams(max_new_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed)
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start:start + self.batch_size]
                gens = self.engine.generate([self.render(requests[i]) for i in chunk], sampling)
                for i, g in zip(chunk, gens):
                    outputs[i] = GenOutput(text=_strip_stop(g.text), tokens=len(g.token_ids),
                                           finish_reason=g.finish_reason)
        return [o for o in outputs if o is not None]

    def close(self) -> None:
        pass


def _strip_stop(text: str) -> str:
    for stop in ("<|im_end|>", "<|endoftext|>"):
        if text.endswith(stop):
            return text[: -len(stop)]
    return text
