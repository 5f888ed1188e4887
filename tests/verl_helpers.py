"""Shared by the verl tests: the tiny tokenizer and a verl `DataProto` of scored rollouts."""

from __future__ import annotations

import json
from pathlib import Path


def tiny_tokenizer(path: Path):
    """The project's tiny model's tokenizer, built in `path` (no hub)."""
    from transformers import AutoTokenizer

    from cascade.models import init_model

    init_model(path, "tiny", seed=0)
    return AutoTokenizer.from_pretrained(str(path))


def rollouts_data_proto(tokenizer, rows, completions):
    """A `DataProto` laid out as verl's rollout hands one to the reward manager: left-padded
    prompts, right-padded responses, the attention mask over both, and the rows' non-tensor
    fields (`data_source`, `reward_model`, `extra_info`)."""
    import numpy as np
    import torch
    from verl import DataProto

    prompts = [tokenizer(json.dumps(r["prompt"]), add_special_tokens=False)["input_ids"] for r in rows]
    responses = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in completions]
    p_len, r_len = max(map(len, prompts)), max(map(len, responses)) + 2
    pad = tokenizer.pad_token_id or 0
    prompt_t = torch.full((len(rows), p_len), pad)
    response_t = torch.full((len(rows), r_len), pad)
    mask = torch.zeros((len(rows), p_len + r_len), dtype=torch.long)
    for i, (p, r) in enumerate(zip(prompts, responses)):
        prompt_t[i, p_len - len(p):] = torch.tensor(p)
        response_t[i, : len(r)] = torch.tensor(r)
        mask[i, p_len - len(p): p_len + len(r)] = 1
    non_tensors = {key: np.array([row[key] for row in rows], dtype=object)
                   for key in ("data_source", "reward_model", "extra_info")}
    return DataProto.from_dict(
        tensors={"prompts": prompt_t, "responses": response_t, "attention_mask": mask,
                 "input_ids": torch.cat([prompt_t, response_t], dim=1)},
        non_tensors=non_tensors,
    )
