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
    default_path: str  # relative to the data dir (--data-dir), e.g. aime25/test.jsonl
    k: int = 1  # samples per prompt (avg@k), from the paper's protocol
    max_tokens: int = 65536  # the paper's budget; CPU users pass --max-tokens
    mode: Mode = "think"  # unified models: IFEval runs in instruct mode
    hub_id: str | None = None  # where the data lives on a hub, for users who have one
    description: str = ""
    category_field: str | None = None  # meta key used for per-category metrics
    notes: list[str] = field(default_factory=list)
    expected_prompts: int | None = None  # the official set's size; fewer loaded = another window/subset
    metric: str = "avg@k (pass@1 averaged over k samples)"

    @property
    def layout(self) -> str:
        """The data layout the loader expects (its docstring's first paragraph)."""
        loader = getattr(self.loader, "func", self.loader)  # functools.partial
        doc = (loader.__doc__ or "").strip()
        return " ".join(doc.split("\n\n")[0].split())

    def data_path(self, data_dir: str | Path | None = None) -> Path:
        """Where ``load`` reads from: the default path under the data dir."""
        return resolve_data_dir(data_dir) / self.default_path

    def load(self, data_dir: str | Path | None = None, path: str | Path | None = None) -> list[dict[str, Any]]:
        target = Path(path) if path else self.data_path(data_dir)
        if not target.exists():
            hint = f" (hub id: {self.hub_id}; download it where a hub is reachable)" if self.hub_id else ""
            raise CascadeError(f"benchmark data for '{self.name}' not found at {target}{hint}; "
                               "pass --data-dir DIR holding it at that path")
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
    str.splitlines() would treat as a line break. Each line is decoded on its own, so a
    byte that is not UTF-8 is reported at its line.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:  # a directory, a damaged .gz
        raise CascadeError(f"cannot read: {exc}", file=str(path)) from None
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            row = json.loads(line)
        except UnicodeDecodeError as exc:
            raise CascadeError(f"not valid UTF-8 (byte {raw[exc.start]:#04x} at column {exc.start + 1})",
                               file=str(path), line=lineno) from None
        except json.JSONDecodeError as exc:
            raise CascadeError(f"invalid JSON: {exc.msg}", file=str(path), line=lineno) from None
        except RecursionError:
            raise CascadeError("JSON nested too deeply to read", file=str(path), line=lineno) from None
        if not isinstance(row, dict):
            raise CascadeError("expected a JSON object per line", file=str(path), line=lineno)
        yield lineno, row


_TYPE_NAMES = {str: "a string", int: "an integer", list: "a list", dict: "an object"}


def require(row: dict[str, Any], key: str, path: Path, lineno: int, kind: type | None = None) -> Any:
    """``row[key]``, which must exist (and be of ``kind`` when given): a file in another
    benchmark's format fails here, naming the field, instead of deep inside a loader."""
    if key not in row:
        raise CascadeError("missing field", file=str(path), line=lineno, field=key)
    value = row[key]
    if kind is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise CascadeError(f"must be {_TYPE_NAMES.get(kind, kind.__name__)}, got {type(value).__name__}",
                           file=str(path), line=lineno, field=key)
    return value


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]
