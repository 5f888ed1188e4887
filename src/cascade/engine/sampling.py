"""The batched KV-cache decode loop behind ``LocalEngine.generate``.

One left-padded prefill, then one ``model(...)`` call per new token. The KV cache and the
attention mask are allocated once for prompt + budget: a StaticCache writes each step's
keys in place, where a DynamicCache re-concatenates every layer's keys (on CPU the static
cache measured a few per cent faster; the model's matmuls dominate either way).
Everything per token stays on the device (sampling, stop checks, finished-row masking); the
host only looks at the "all rows finished" flag every few steps, because each look is a
device sync that stalls a GPU's queue.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, StaticCache

from cascade.engine.base import SamplingParams

# How many decode steps run between host checks for "every row has stopped".
_FINISHED_CHECK_EVERY = 8


@dataclass
class SampledRow:
    token_ids: list[int]
    logprobs: list[float]
    stopped: bool


def left_pad(prompt_ids: list[list[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad so every row's last prompt token sits in the final column."""
    width = max(len(ids) for ids in prompt_ids)
    input_ids = torch.full((len(prompt_ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompt_ids), width), dtype=torch.long)
    for row, ids in enumerate(prompt_ids):
        if ids:
            input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
            mask[row, width - len(ids):] = 1
    return input_ids.to(device), mask.to(device)


def filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Set logits outside the top-k set, then outside the top-p nucleus, to -inf.

    The most likely token always survives, so a row can never be left with nothing to sample.
    """
    if top_k > 0 and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        # Drop a token when the tokens ranked above it already cover top_p.
        drop_sorted = (probs.cumsum(dim=-1) - probs) > top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def next_tokens(
    logits: torch.Tensor, sampling: SamplingParams, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick one token per row; return ``(tokens, logprobs)``.

    The log-prob is taken under ``log_softmax(logits / temperature)``, the distribution the
    token is drawn from BEFORE top-k/top-p truncation (temperature 0 = greedy, scored at
    temperature 1).
    """
    logits = logits.float()
    if sampling.temperature <= 0:
        logprobs = torch.log_softmax(logits, dim=-1)
        tokens = logits.argmax(dim=-1)
    else:
        logprobs = torch.log_softmax(logits / sampling.temperature, dim=-1)
        truncated = filter_logits(logprobs, sampling.top_k, sampling.top_p)
        probs = torch.softmax(truncated, dim=-1)
        # argmax(p / E) with E ~ Exp(1) draws token i with probability p_i (an exponential
        # race); one fused pass, cheaper than torch.multinomial.
        race = torch.empty_like(probs).exponential_(generator=generator)
        tokens = (probs / race).argmax(dim=-1)
    return tokens, logprobs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


@torch.inference_mode()
def sample_batch(
    model: PreTrainedModel,
    prompt_ids: list[list[int]],
    sampling: SamplingParams,
    *,
    stop_ids: list[int],
    pad_id: int,
    generator: torch.Generator | None,
) -> list[SampledRow]:
    """Decode up to ``sampling.max_new_tokens`` tokens for every prompt in one batch."""
    batch = len(prompt_ids)
    if sampling.max_new_tokens < 1:
        return [SampledRow(token_ids=[], logprobs=[], stopped=False) for _ in range(batch)]
    device = next(model.parameters()).device
    budget = sampling.max_new_tokens
    input_ids, prompt_mask = left_pad(prompt_ids, pad_id, device)
    width = input_ids.shape[1]
    position_ids = (prompt_mask.cumsum(dim=-1) - 1).clamp(min=0)
    attention_mask = torch.ones((batch, width + budget), dtype=torch.long, device=device)
    attention_mask[:, :width] = prompt_mask
    stop = torch.tensor(stop_ids, dtype=torch.long, device=device)
    cache = StaticCache(config=model.config, max_cache_len=width + budget)

    tokens_out = torch.full((batch, budget), pad_id, dtype=torch.long, device=device)
    logprobs_out = torch.zeros((batch, budget), dtype=torch.float32, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    lengths = torch.zeros(batch, dtype=torch.long, device=device)

    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask[:, :width],
        position_ids=position_ids,
        cache=cache,
        use_cache=True,
        logits_to_keep=1,  # the prompt's other positions never need vocabulary logits
    )
    steps = 0
    for step in range(budget):
        tokens, logprobs = next_tokens(out.logits[:, -1, :], sampling, generator)
        tokens = tokens.masked_fill(finished, pad_id)
        tokens_out[:, step] = tokens
        logprobs_out[:, step] = logprobs.masked_fill(finished, 0.0)
        lengths += (~finished).long()
        finished |= torch.isin(tokens, stop)
        steps = step + 1
        if steps == budget or (steps % _FINISHED_CHECK_EVERY == 0 and bool(finished.all())):
            break
        position_ids = position_ids[:, -1:] + 1
        out = model(
            input_ids=tokens.unsqueeze(-1),
            attention_mask=attention_mask[:, : width + steps],
            position_ids=position_ids,
            cache=cache,
            use_cache=True,
        )

    tokens_host = tokens_out[:, :steps].tolist()
    logprobs_host = logprobs_out[:, :steps].tolist()
    lengths_host = lengths.tolist()
    finished_host = finished.tolist()
    return [
        SampledRow(
            token_ids=tokens_host[row][: lengths_host[row]],
            logprobs=logprobs_host[row][: lengths_host[row]],
            stopped=finished_host[row],
        )
        for row in range(batch)
    ]
