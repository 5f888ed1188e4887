"""SWE-bench Verified (agentless): prompts from the issue text; scoring is handed off.

Resolving an instance means running its tests in the instance's Docker image, which the
official `swebench` harness does. cascade writes the harness's predictions file
(``instance_id``, ``model_name_or_path``, ``model_patch`` per line); run
``python -m swebench.harness.run_evaluation --predictions_path preds.jsonl
--dataset_name princeton-nlp/SWE-bench_Verified --run_id NAME`` on a machine with Docker.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from cascade.data.io import atomic_open
from cascade.eval.benchmarks.base import read_jsonl, require, user

PROMPT = ("We are currently solving the following issue within our repository. Here is the issue text:\n"
          "--- BEGIN ISSUE ---\n{issue}\n--- END ISSUE ---\n"
          "Repository: {repo} at commit {commit}.\n"
          "Write SEARCH/REPLACE edits in ```diff blocks, each starting with the file path as '### path'.")


def load_swe_bench(path: Path) -> list[dict[str, Any]]:
    """princeton-nlp/SWE-bench_Verified rows: instance_id, repo, base_commit, problem_statement, patch.

    Agentless repair needs the repository's files in the prompt; those come from a checkout
    at ``base_commit`` (not shipped here), so this loader gives the issue-only prompt and
    keeps the gold patch for reference."""
    out = []
    for n, r in read_jsonl(path):
        prompt = PROMPT.format(issue=require(r, "problem_statement", path, n), repo=require(r, "repo", path, n),
                               commit=require(r, "base_commit", path, n))
        out.append({"id": require(r, "instance_id", path, n), "messages": user(prompt), "verifier": "swe",
                    "ground_truth": {"files": {}, "gold_patch": r.get("patch", "")},
                    "meta": {"repo": r["repo"], "base_commit": r["base_commit"]}})
    return out


def write_predictions(path: str | Path, model_name: str, patches: Iterable[tuple[str, str]]) -> Path:
    """Write the swebench harness predictions file atomically: one JSON object per instance."""
    path = Path(path)
    with atomic_open(path) as fh:
        for instance_id, patch in patches:
            fh.write(json.dumps({"instance_id": instance_id, "model_name_or_path": model_name,
                                 "model_patch": patch}) + "\n")
    return path
