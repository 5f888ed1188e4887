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
badly, which is the paper's implicit penalty for unfinished answers (paper section 4.3).

The template is applied with ``enable_thinking=False``: a Qwen3-style template then
renders the assistant turn as a plain answer with no think block and no mode flag logic
in play, and templates without that variable (Qwen2.5, the released RM) ignore it.
A sequence classifier scores pairs in right-padded batches: the pad tokens come after every
real token, so under causal attention they change nothing that is read, and the classifier
pools at the last non-pad token with or without them. A causal LM is scored one pair at a
time (its full ``[T, vocab]`` logits would otherwise be held for a whole batch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence, Union

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from cascade.chat.parse import split_reasoning
from cascade.errors import CascadeError
from cascade.engine.padding import collate

Prompt = Union[str, Sequence[dict[str, Any]]]

# Pairs per forward pass of a classifier reward model.
SCORE_BATCH = 64


def scored_text(response: str) -> str:
    """The part of a response the RM sees: the answer, or everything if it never finished."""
    _reasoning, answer, finished = split_reasoning(response)
    return answer if finished else response


class RewardModelScorer:
    """A reward-model checkpoint (sequence classifier or causal LM) that scores (prompt, reply) pairs."""

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
        """One reward per (prompt, response) pair, in input order."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        # Each distinct conversation is scored once. Besides saving work, this keeps equal
        # answers' scores bit-identical: a batch row's float result can depend on its
        # neighbours, and a group of identical answers must have exactly zero variance.
        rows = [tuple(self._ids(prompt, response)) for prompt, response in zip(prompts, responses)]
        unique = list(dict.fromkeys(rows))
        if self.kind != "classifier" or self.model.config.pad_token_id is None:
            # No pad id: transformers cannot pool a padded batch, so score one pair at a time.
            values = [self._score_batch([row])[0] for row in unique]
        else:
            values = [0.0] * len(unique)
            # Similar lengths share a batch, so little of each batch is padding.
            order = sorted(range(len(unique)), key=lambda i: len(unique[i]))
            for start in range(0, len(order), SCORE_BATCH):
                chunk = order[start:start + SCORE_BATCH]
                for i, value in zip(chunk, self._score_batch([unique[i] for i in chunk])):
                    values[i] = value
        score_of = dict(zip(unique, values))
        return [score_of[row] for row in rows]

    def _ids(self, prompt: Prompt, response: str) -> list[int]:
        text = self.tokenizer.apply_chat_template(self._messages(prompt, response), tokenize=False, enable_thinking=False)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _score_batch(self, rows: Sequence[Sequence[int]]) -> list[float]:
        batch = collate(rows, None, self.model.config.pad_token_id if len(rows) > 1 else 0)
        logits = self.model(**{name: tensor.to(self.device) for name, tensor in batch.items()}).logits
        if self.kind == "classifier":
            return [float(v) for v in logits[:, 0]]
        return [float(logits[b, len(row) - 1, 0]) for b, row in enumerate(rows)]
