"""IFEval and IFBench: official `instruction_id_list` + `kwargs` ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cascade.eval.benchmarks.base import read_jsonl, require, user


def load_if(path: Path) -> list[dict[str, Any]]:
    """google-research IFEval / allenai IFBench layout: key, prompt, instruction_id_list, kwargs."""
    out = []
    for n, r in read_jsonl(path):
        prompt = require(r, "prompt", path, n)
        out.append({
            "id": str(require(r, "key", path, n)),
            "messages": user(prompt),
            "verifier": "instruction_following",
            "ground_truth": {"instruction_id_list": require(r, "instruction_id_list", path, n),
                             "kwargs": require(r, "kwargs", path, n)},
            "meta": {"prompt": prompt},
        })
    return out
