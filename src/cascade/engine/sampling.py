"""The batched KV-cache decode loop behind ``LocalEngine.generate``.

One left-padded prefill, then one forward per new token: through the lean Qwen3 forward
(``cascade.engine.lean_qwen3``, a preallocated cache written in place) when the model is
one it supports, else through ``model(...)`` with a StaticCache. The KV cache and the
attention mask are allocated once for prompt + budget.
Everything per token stays on the device (sampling, stop checks, finished-row masking); the
host only looks at the "all rows finished" flag every few steps, because each look is a
device sync that stalls a GPU's queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from transformers import PreTrainedModel, StaticCache

from cascade.engine.base import SamplingParams
from cascade.engine.lean_qwen3 import LeanQwen3, group_identical

# How many decode steps run between host checks for "every row has stopped".
_FINISHED_CHECK_EVERY = 8


@dataclass
class SampledRow:
    """One row of a decode batch: its sampled ids, their log-probs, whether a stop token ended it."""
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
        logits = _nucleus_cpu(logits, top_p) if logits.device.type == "cpu" else _nucleus_by_sort(logits, top_p)
    return logits


def _nucleus_by_sort(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Top-p over a full sort of every row."""
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    # Drop a token when the tokens ranked above it already cover top_p.
    drop_sorted = (probs.cumsum(dim=-1) - probs) > top_p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


# How many of a row's most likely tokens the CPU nucleus looks at first. On [128, 1024]
# decode logits a top-16 takes about a tenth of a full sort's time, and a trained policy's
# nucleus at top_p 0.95 is almost always a handful of tokens.
_NUCLEUS_CANDIDATES = 16


def _nucleus_cpu(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Top-p from each row's ``_NUCLEUS_CANDIDATES`` most likely tokens; only the rows whose
    candidates hold no more than ``top_p`` of their mass (the nucleus may reach past them)
    go through a full sort. It keeps the same tokens as :func:`_nucleus_by_sort`: a token
    ranked below a row's candidates has more than top_p above it, so both drop it, and the
    candidates are the sort's first ranks, in its order.

    CPU only: picking the rows is a host-side check, which on a GPU would stall the queue
    once per decode step."""
    vocab = logits.shape[-1]
    if _NUCLEUS_CANDIDATES >= vocab or logits.dim() != 2:
        return _nucleus_by_sort(logits, top_p)
    values, order = torch.topk(logits, _NUCLEUS_CANDIDATES, dim=-1)  # most likely first
    probs = (values - torch.logsumexp(logits, dim=-1, keepdim=True)).exp()
    covered = probs.cumsum(dim=-1)
    keep_sorted = (covered - probs) <= top_p
    keep = torch.zeros(logits.shape, dtype=torch.bool, device=logits.device).scatter(-1, order, keep_sorted)
    narrowed = logits.masked_fill(~keep, float("-inf"))
    wide = (covered[:, -1] <= top_p).nonzero().squeeze(-1)
    if len(wide):
        narrowed[wide] = _nucleus_by_sort(logits[wide], top_p)
    return narrowed


def inverse_cdf_sample(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One draw per row of ``probs [B, V]``: the first token whose cumulative probability
    exceeds a uniform number in [0, total). It needs one random number per row, where
    ``torch.multinomial`` or an exponential race draw one per vocabulary entry (far slower
    on CPU; docs/measurements.md). Tokens of probability 0 are never drawn: the cumulative sum does not
    rise at them, and the uniform stays strictly below the total."""
    cdf = probs.cumsum(dim=-1)
    total = cdf[:, -1:]
    u = torch.rand(total.shape, generator=generator, device=probs.device, dtype=probs.dtype) * total
    u = torch.minimum(u, torch.nextafter(total, torch.zeros_like(total)))
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp(max=probs.shape[-1] - 1)


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
        # Each skipped op below is a full pass over [B, V] per decode step, which matters
        # when the model itself is small: no division at temperature 1, and with no
        # truncation the probabilities are exp(logprobs) rather than a second softmax.
        scaled = logits if sampling.temperature == 1.0 else logits / sampling.temperature
        logprobs = torch.log_softmax(scaled, dim=-1)
        if sampling.top_k <= 0 and sampling.top_p >= 1.0:
            probs = logprobs.exp()
        else:
            probs = torch.softmax(filter_logits(logprobs, sampling.top_k, sampling.top_p), dim=-1)
        tokens = inverse_cdf_sample(probs, generator)
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
    lean: LeanQwen3 | None = None,
    stop_rows: Callable[[], list[bool]] | None = None,
) -> list[SampledRow]:
    """Decode up to ``sampling.max_new_tokens`` tokens for every prompt in one batch, through
    ``lean`` (the lean Qwen3 forward of ``model``) when given, else the model's own modules.
    ``stop_rows()``, polled every few steps, marks rows to stop early (their callers left);
    random draws stay the same for every row, so the other rows' outputs do not change."""
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

    tokens_out = torch.full((batch, budget), pad_id, dtype=torch.long, device=device)
    logprobs_out = torch.zeros((batch, budget), dtype=torch.float32, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    lengths = torch.zeros(batch, dtype=torch.long, device=device)

    if lean is not None:
        cache_dtype = (torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type)
                       else next(model.parameters()).dtype)
        # Identical prompts (the G rollouts of a GRPO group) are prefilled once.
        firsts, rows = group_identical(prompt_ids)
        pick = torch.tensor(firsts, device=device)
        session, logits = lean.start_decode(input_ids[pick], prompt_mask[pick],
                                            torch.tensor(rows, device=device), budget, cache_dtype)

        def advance(tokens: torch.Tensor, seen: int) -> torch.Tensor:
            return session.step(tokens)  # the session tracks its own positions
    else:
        cache = StaticCache(config=model.config, max_cache_len=width + budget)
        cache_arg = _cache_keyword(model)
        logits = model(
            input_ids=input_ids,
            attention_mask=attention_mask[:, :width],
            position_ids=position_ids,
            **{cache_arg: cache},
            use_cache=True,
            logits_to_keep=1,  # the prompt's other positions never need vocabulary logits
        ).logits[:, -1, :]

        next_position = position_ids[:, -1:]

        def advance(tokens: torch.Tensor, seen: int) -> torch.Tensor:
            nonlocal next_position
            next_position = next_position + 1
            return model(
                input_ids=tokens.unsqueeze(-1),
                attention_mask=attention_mask[:, :seen],
                position_ids=next_position,
                **{cache_arg: cache},
                use_cache=True,
            ).logits[:, -1, :]

    steps = 0
    for step in range(budget):
        tokens, logprobs = next_tokens(logits, sampling, generator)
        tokens = tokens.masked_fill(finished, pad_id)
        tokens_out[:, step] = tokens
        logprobs_out[:, step] = logprobs.masked_fill(finished, 0.0)
        lengths += (~finished).long()
        finished |= torch.isin(tokens, stop)
        steps = step + 1
        if stop_rows is not None and steps % _FINISHED_CHECK_EVERY == 0:
            finished |= torch.tensor(stop_rows(), dtype=torch.bool, device=device)
        if steps == budget or (steps % _FINISHED_CHECK_EVERY == 0 and bool(finished.all())):
            break
        logits = advance(tokens, width + steps)

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


def _cache_keyword(model: Any) -> str:
    """The forward's name for the KV cache: ``cache`` in recent transformers, ``past_key_values``
    in the 5.9/5.10 releases verl 0.9.1 pins (there an unknown ``cache=`` is silently ignored,
    and every decode step would see one token without its context)."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
