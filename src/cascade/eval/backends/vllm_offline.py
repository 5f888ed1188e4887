"""The vllm backend: offline ``LLM.generate`` on GPU (``pip install cascade-rl[vllm]``).

YaRN rope scaling follows the model card: factor 2 over the 32K original window for
64K-token reasoning budgets (paper-notes 1 and 7.3).
"""

from __future__ import annotations

from typing import Any, Sequence

from cascade.errors import CascadeError
from cascade.eval.backends.base import GenOutput, GenRequest


def yarn_overrides(factor: float, original_max_position: int = 32768) -> dict[str, Any]:
    return {"rope_scaling": {"rope_type": "yarn", "factor": factor,
                             "original_max_position_embeddings": original_max_position}}


class VLLMBackend:
    name = "vllm"

    def __init__(self, model: str, *, yarn_factor: float = 1.0, max_model_len: int | None = None,
                 tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.9) -> None:
        try:
            from vllm import LLM
        except ImportError:
            raise CascadeError("the vllm backend needs vLLM and a GPU: pip install 'cascade-rl[vllm]'") from None
        kwargs: dict[str, Any] = {"model": model, "tensor_parallel_size": tensor_parallel_size,
                                  "gpu_memory_utilization": gpu_memory_utilization}
        if yarn_factor != 1.0:
            kwargs["hf_overrides"] = yarn_overrides(yarn_factor)
        if max_model_len:
            kwargs["max_model_len"] = max_model_len
        self.llm = LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()

    def generate(self, requests: Sequence[GenRequest]) -> list[GenOutput]:
        from vllm import SamplingParams

        prompts = [self.tokenizer.apply_chat_template(r.messages, tools=r.tools, tokenize=False,
                                                      add_generation_prompt=True, enable_thinking=r.enable_thinking)
                   for r in requests]
        params = [SamplingParams(temperature=r.temperature, top_p=r.top_p, max_tokens=r.max_tokens, seed=r.seed,
                                 skip_special_tokens=False) for r in requests]
        outs = self.llm.generate(prompts, params)
        return [GenOutput(text=o.outputs[0].text, tokens=len(o.outputs[0].token_ids),
                          finish_reason="length" if o.outputs[0].finish_reason == "length" else "stop")
                for o in outs]

    def close(self) -> None:
        pass
