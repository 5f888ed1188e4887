"""What a benchmark is: a loader for its public file format, a prompt builder, a verifier
routing key and its protocol defaults (k samples, token budget, mode).

Loaders turn the benchmark's own files into RL/eval prompt records (docs/records.md): the
ground truth keeps the benchmark's official field names, and the verifier named in the
record is the same one that scores RL rollouts, so training rewards and eval numbers
cannot drift apart.
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

from cascade.errors import CascadeError

Mode = Literal["think", "no_think"]
Loader = Callable[[Path], list[dict[str, Any]]]


@dataclass(frozen=True)
class Benchmark:
    name: str
    verifier: str
    loader: Loader
    default_path: str  # relative to the data dir, in the layout of ../shared/data
    k: int = 1  # samples per prompt (avg@k), from the paper's protocol
    max_tokens: int = 65536  # the paper's budget; CPU users pass --max-tokens
    mode: Mode = "think"  # unified models: IFEval runs in instruct mode
    hub_id: str | None = None  # where the data lives on a hub, for users who have one
    description: str = ""
    category_field: str | None = None  # meta key used for per-category metrics
    notes: list[str] = field(default_factory=list)

    def load(self, data_dir: str | Path | None = None, path: str | Path | None = None) -> list[dict[str, Any]]:
        target = Path(path) if path else resolve_data_dir(data_dir) / self.default_path
        if not target.exists():
            hint = f" (hub id: {self.hub_id}; download it where a hub is reachable)" if self.hub_id else ""
            raise CascadeError(f"benchmark data for '{self.name}' not found at {target}{hint}; "
                               "pass --data-dir DIR with the layout of shared/data")
        records = self.loader(target)
        if not records:
            raise CascadeError(f"no prompts loaded for '{self.name}'", file=str(target))
        return records


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """--data-dir, else $CASCADE_DATA_DIR, else ./data."""
    return Path(data_dir or os.environ.get("CASCADE_DATA_DIR") or "data")


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, row) from a JSONL file (optionally .gz); errors name file:line.

    Lines are split on '\\n' only: some benchmark prompts contain U+2028, which
    str.splitlines() would treat as a line break.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        text = fh.read()
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CascadeError(f"invalid JSON: {exc.msg}", file=str(path), line=lineno) from None
        if not isinstance(row, dict):
            raise CascadeError("expected a JSON object per line", file=str(path), line=lineno)
        yield lineno, row


def require(row: dict[str, Any], key: str, path: Path, lineno: int) -> Any:
    if key not in row:
        raise CascadeError("missing field", file=str(path), line=lineno, field=key)
    return row[key]


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]
