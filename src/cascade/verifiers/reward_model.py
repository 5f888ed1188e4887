"""Reward-model scoring for RLHF and thinking-mode IF-RL (imports torch; kept apart).

``RewardModelScorer(path).score(prompts, responses)`` returns one float per pair. The
conversation scored is [prompt turns..., assistant: final answer], rendered with the
reward model's own chat template. Two checkpoint kinds are read:
- a sequence classifier with one label (``AutoModelForSequenceClassification``,
  ``num_labels=1``): the reward is ``logits[0, 0]`` (pooled at the last token);
- a causal LM whose last-position logit 0 is the reward, which is how the released
  ``nvidia/Qwen2.5-CascadeRL-RM-72B`` is read (``out.logits[0, -1, 0]``).

Only the final answer is scored (the text after ``</think>``); when the reasoning never
closes, the whole text is scored: the RM never saw raw traces, so a runaway trace scores
badly, which is the paper's implicit penalty for unfinished answers (notes 5.1).

The template is applied with ``enable_thinking=False``: a Qwen3-style template then
renders the assistant turn as a plain answer with no think block and no mode flag logic
in play, and templates without that variable (Qwen2.5, the released RM) ignore it.
Pairs are scored one at a time, so no padding side or pad token can change a score.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence, Union

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from cascade.chat.parse import split_reasoning
from cascade.errors import CascadeError

Prompt = Union[str, Sequence[dict[str, Any]]]


def scored_text(response: str) -> str:
    """The part of a response the RM sees: the answer, or everything if it never finished."""
    _reasoning, answer, finished = split_reasoning(response)
    return answer if finished else response


class RewardModelScorer:
    def __init__(self, path: str | Path, device: str = "cpu", dtype: torch.dtype | None = None) -> None:
        path = Path(path)
        if not (path / "config.json").is_file():
            raise CascadeError("not a Hugging Face checkpoint (no config.json)", file=str(path))
        config = AutoConfig.from_pretrained(path)
        architectures = getattr(config, "architectures", None) or []
        self.kind = "classifier" if any(a.endswith("ForSequenceClassification") for a in architectures) else "causal_lm"
        loader = AutoModelForSequenceClassification if self.kind == "classifier" else AutoModelForCausalLM
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if not self.tokenizer.chat_template:
            raise CascadeError("the reward model's tokenizer has no chat template", file=str(path))
        self.model = loader.from_pretrained(path, dtype=dtype).to(device).eval()
        self.device = device

    def _messages(self, prompt: Prompt, response: str) -> list[dict[str, Any]]:
        if isinstance(prompt, str):
            turns = [{"role": "user", "content": prompt}]
        else:
            turns = [dict(m) for m in prompt]
        return turns + [{"role": "assistant", "content": scored_text(response)}]

    @torch.no_grad()
    def score(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[float]:
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        scores = []
        for prompt, response in zip(prompts, responses):
            text = self.tokenizer.apply_chat_template(
                self._messages(prompt, response), tokenize=False, enable_thinking=False
            )
            ids = self.tokenizer(text, return_tensors="pt", add_special_tokens=False).to(self.device)
            logits = self.model(**ids).logits
            value = logits[0, 0] if self.kind == "classifier" else logits[0, -1, 0]
            scores.append(float(value))
        return scores
