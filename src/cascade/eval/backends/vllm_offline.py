"""The vllm backend: offline ``LLM.generate`` on GPU (``pip install cascade-rl[vllm]``).

YaRN rope scaling follows the model card: factor 2 over the 32K original window for
64K-token reasoning budgets (the model cards, and the evaluation scripts the cards link); the context then defaults to
factor x 32K. Prompts are rendered with the cascade chat template, as on every other path.
Each request carries its own seed, so a sample does not depend on its batch-mates.
"""

from __future__ import annotations

from typing import Any, Sequence

from cascade.errors import CascadeError
from cascade.eval.backends.base import CONTEXT_SKIP, GenOutput, GenRequest
from cascade.eval.backends.prompt import render_prompt, strip_stop

ORIGINAL_CONTEXT = 32768  # Qwen3's pre-training window, which YaRN stretches


def yarn_overrides(factor: float, original_max_position: int = ORIGINAL_CONTEXT) -> dict[str, Any]:
    """The ``rope_scaling`` block the model card puts in config.json, as vLLM ``hf_overrides``."""
    return {"rope_scaling": {"rope_type": "yarn", "factor": factor,
                             "original_max_position_embeddings": original_max_position}}


def engine_kwargs(model: str, *, yarn_factor: float, max_model_len: int | None, tensor_parallel_size: int,
                  gpu_memory_utilization: float) -> dict[str, Any]:
    """Arguments for ``vllm.LLM`` (a pure function, so it is testable without vLLM)."""
    if yarn_factor < 1.0:
        raise CascadeError(f"must be >= 1 (1 = no YaRN), got {yarn_factor}", field="--yarn-factor")
    kwargs: dict[str, Any] = {"model": model, "tensor_parallel_size": tensor_parallel_size,
                              "gpu_memory_utilization": gpu_memory_utilization}
    if yarn_factor != 1.0:
        kwargs["hf_overrides"] = yarn_overrides(yarn_factor)
        kwargs["max_model_len"] = max_model_len or int(ORIGINAL_CONTEXT * yarn_factor)
    elif max_model_len:
        kwargs["max_model_len"] = max_model_len
    return kwargs


class VLLMBackend:
    name = "vllm"

    def __init__(self, model: str, *, yarn_factor: float = 1.0, max_model_len: int | None = None,
                 tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.9) -> None:
        kwargs = engine_kwargs(model, yarn_factor=yarn_factor, max_model_len=max_model_len,
                               tensor_parallel_size=tensor_parallel_size,
                               gpu_memory_utilization=gpu_memory_utilization)
        try:
            from vllm import LLM
        except ImportError:
            raise CascadeError("the vllm backend needs vLLM and a GPU: pip install 'cascade-rl[vllm]'") from None
        from cascade.chat.template import chat_template

        self.llm = LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        # The same template the local engine installs; a base model's own would render another format.
        self.tokenizer.chat_template = chat_template()

    def generate(self, requests: Sequence[GenRequest]) -> list[GenOutput]:
        from vllm import SamplingParams

        # Token ids, not text: vLLM would tokenize text with add_special_tokens=True, and a
        # tokenizer with a BOS token would then see a prompt the other backends never send.
        prompts = [{"prompt_token_ids": self.tokenizer.encode(
                        render_prompt(self.tokenizer, r.messages, enable_thinking=r.enable_thinking, tools=r.tools),
                        add_special_tokens=False)}
                   for r in requests]
        params = [SamplingParams(temperature=r.temperature, top_p=r.top_p, max_tokens=r.max_tokens, seed=r.seed,
                                 skip_special_tokens=False) for r in requests]
        # vLLM refuses a prompt longer than max_model_len (and caps the rest at it, as the
        # model card's evaluation does): such prompts are skipped and counted, not fatal.
        limit = self.llm.llm_engine.model_config.max_model_len
        keep = [i for i, p in enumerate(prompts) if len(p["prompt_token_ids"]) < limit]
        outputs = [GenOutput(text="", tokens=0, finish_reason=CONTEXT_SKIP,
                             extra={"error": f"the prompt is longer than max_model_len {limit}"})
                   for _ in requests]
        outs = self.llm.generate([prompts[i] for i in keep], [params[i] for i in keep], use_tqdm=False) if keep else []
        for i, o in zip(keep, outs):
            outputs[i] = GenOutput(text=strip_stop(o.outputs[0].text), tokens=len(o.outputs[0].token_ids),
                                   finish_reason="length" if o.outputs[0].finish_reason == "length" else "stop")
        return outputs

    def close(self) -> None:
        pass
