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


def score_in_reward_manager(manager, tokenizer, records_and_answers, *, data_source: str,
                            think_fraction: float, reward: str, with_uids: bool = False):
    """Every answer to every record scored as verl's RewardLoopWorker does (one `run_single`
    per rollout, gathered). Returns the records (one per rollout), the decoded responses, the
    `DataProto` and the manager's outputs; `with_uids` gives each record's rollouts one group id."""
    import asyncio

    import numpy as np

    from cascade.cluster.verl_data import verl_rows

    records, rows, completions, uids = [], [], [], []
    for index, (record, answers) in enumerate(records_and_answers):
        row = verl_rows([record], data_source=data_source, think_fraction=think_fraction, seed=0, reward=reward)[0]
        for answer in answers:
            records.append(record)
            rows.append(row)
            completions.append(answer)
            uids.append(f"uid-{index}")
    data = rollouts_data_proto(tokenizer, rows, completions)
    if with_uids:
        data.non_tensor_batch["uid"] = np.array(uids, dtype=object)
    decoded = [tokenizer.decode(data.batch["responses"][i][: len(tokenizer(c, add_special_tokens=False)["input_ids"])],
                                skip_special_tokens=True) for i, c in enumerate(completions)]

    async def score_all():
        return await asyncio.gather(*(manager.run_single(data[i: i + 1]) for i in range(len(data))))

    outputs = manager.loop.run_until_complete(score_all())
    if with_uids:
        records = [{**r, "id": uid} for r, uid in zip(records, uids)]
    return records, decoded, data, outputs
