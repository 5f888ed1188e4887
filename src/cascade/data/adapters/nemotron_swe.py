"""Format ``nemotron_swe``: ``nvidia/Nemotron-Cascade-RL-SWE`` -> ``prompt`` records (verifier ``swe``).

Fields read:
- ``prompt`` (required string): the Agentless-style repair prompt, which already holds the
  issue, the relevant files and the SEARCH/REPLACE answer format; used unchanged;
- ``golden_patch`` (required string): the reference unified diff, the reward's ground truth;
- ``relevant_file_contents`` (required): a list of ``{"file_path", "content"}`` (or its
  JSON text), the files the edits may touch;
- ``instance_id`` (required string): the row id; ``source``, ``original_prompt``
  (optional) -> ``meta`` (``original_prompt`` becomes ``meta.issue`` for a judge).

Record: ``{"id": instance_id, "prompt", "verifier": "swe", "ground_truth": {"files":
{file_path: content}, "gold_patch": golden_patch}, "meta"}``, the shape the execution-free
SWE reward reads (paper Eq. 2).

The SWE reward reads SEARCH/REPLACE edits, which Agentless repair prompts (the released
prompt's opening follows them) ask for; without rows this is unconfirmed, and tinker's
reader extracts a unified diff instead: check a real prompt's closing instructions.

Field list confirmed against the dataset card / viewer and public code that reads the rows
by key: ``thinking-machines-lab/tinker-cookbook``
(``tinker_cookbook/recipes/nemotron_cascade/rl/envs/swe_agentless.py``, which lists the
schema as the six fields above and reads ``prompt``, ``golden_patch``, ``original_prompt``,
``instance_id``, ``source``). Certainty: card plus one third-party reader;
``relevant_file_contents``' inner keys from the viewer. Torch-free.
"""

from __future__ import annotations

from typing import Any, Mapping

from cascade.data.adapters.base import MISSING, Adapter, Row


def looks_like_nemotron_swe(row: Mapping[str, Any]) -> bool:
    return "golden_patch" in row and "prompt" in row


def _files(row: Row) -> dict[str, str] | None:
    key = "relevant_file_contents"
    value = row.json_value(key)
    if value is MISSING:
        return None
    if not isinstance(value, list) or not value:
        row.bad(key, "must be a non-empty list of {file_path, content}")
        return None
    files: dict[str, str] = {}
    for index, item in enumerate(value):
        where = f"{key}[{index}]"
        if not isinstance(item, Mapping):
            row.bad(where, "must be an object with file_path and content")
            continue
        path, content = item.get("file_path"), item.get("content")
        if not isinstance(path, str) or not path.strip():
            row.bad(f"{where}.file_path", "must be a non-empty string")
        if not isinstance(content, str):
            row.bad(f"{where}.content", f"must be a string (got {type(content).__name__})")
        if isinstance(path, str) and isinstance(content, str):
            if path in files and files[path] != content:
                row.bad(f"{where}.file_path", f"'{path}' appears twice with different contents")
            files[path] = content
    return files


def _build(row: Row, kind: str) -> dict[str, Any] | None:
    prompt = row.text("prompt")
    patch = row.text("golden_patch")
    instance_id = row.text("instance_id")
    files = _files(row)
    if None in (prompt, patch, instance_id, files) or row.problems:
        return None
    meta: dict[str, Any] = {"instance_id": instance_id}
    if isinstance(row.get("source"), str):
        meta["source"] = row.get("source")
    if isinstance(row.get("original_prompt"), str):
        meta["issue"] = row.get("original_prompt")
    return {"id": instance_id, "prompt": prompt, "verifier": "swe",
            "ground_truth": {"files": files, "gold_patch": patch}, "meta": meta}


ADAPTER = Adapter(
    name="nemotron_swe",
    kinds=("prompt",),
    summary="Nemotron-Cascade-RL-SWE rows (prompt, golden_patch, relevant_file_contents, instance_id)",
    detect=looks_like_nemotron_swe,
    build=_build,
)
