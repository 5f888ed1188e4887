"""Token rows to right-padded tensors: the ``[B, T]`` batch layout every model forward reads.

Right padding keeps every real token at the same position it has alone, so under causal
attention the pad tokens after it change nothing that is read.
"""

from __future__ import annotations

from typing import Sequence

import torch


def right_pad(rows: Sequence[Sequence[int]], pad_value: int) -> torch.Tensor:
    """``rows`` as one ``[len(rows), longest]`` long tensor, each row filled out with ``pad_value``."""
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), pad_value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(list(row), dtype=torch.long)
    return out


def collate(input_ids: Sequence[Sequence[int]], loss_masks: Sequence[Sequence[int]] | None, pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``, ``attention_mask`` and (when given) ``loss_mask``."""
    batch = {
        "input_ids": right_pad(input_ids, pad_id),
        "attention_mask": right_pad([[1] * len(r) for r in input_ids], 0),
    }
    if loss_masks is not None:
        batch["loss_mask"] = right_pad(loss_masks, 0)
    return batch
