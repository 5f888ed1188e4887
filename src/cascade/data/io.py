"""Read and write record files: JSONL (optionally gzipped), JSON arrays and Parquet.

Every bad row becomes one CascadeError naming the file, the place (1-based line for JSONL
and JSON, 0-based row index for Parquet) and the field path. Writes are atomic: the data
goes to a temporary file in the target's folder, is fsynced, then renamed over the target,
so a crash or an exception mid-way never leaves a partial file. Torch-free.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping

from pydantic import BaseModel, ValidationError

from cascade.data.records import RecordKind, record_model
from cascade.data.validation import first_error, format_path, more_suffix
from cascade.errors import CascadeError

JSON_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz")
PARQUET_SUFFIXES = (".parquet",)
DATA_SUFFIXES = JSON_SUFFIXES + PARQUET_SUFFIXES

# Parquet schema metadata key listing the columns stored as JSON text (see write_parquet).
_JSON_COLUMNS_KEY = b"cascade:json_columns"
_PARQUET_BATCH_ROWS = 1024


@dataclass(frozen=True)
class RowPlace:
    """Where a row came from, for error messages."""

    file: str
    line: int | None = None  # 1-based text line (JSONL, JSON)
    row: int | None = None  # 0-based row index (Parquet, hub datasets)

    def error(self, message: str, field: str | None = None) -> CascadeError:
        file = self.file if self.row is None else f"{self.file} row {self.row}"
        return CascadeError(message, file=file, line=self.line, field=field)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in DATA_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def _open_text(path: Path) -> IO[str]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def iter_rows(path: str | Path) -> Iterator[tuple[RowPlace, dict[str, Any]]]:
    """Raw rows (plain dicts) with their place, before any validation."""
    path = Path(path)
    if not path.is_file():
        raise CascadeError("no such data file" if not path.exists() else "not a file", file=str(path))
    suffix = _suffix(path)
    if suffix in PARQUET_SUFFIXES:
        yield from _iter_parquet_rows(path)
    elif suffix in JSON_SUFFIXES:
        yield from _iter_json_rows(path, array_allowed=suffix.startswith(".json") and ".jsonl" not in suffix)
    else:
        allowed = ", ".join(DATA_SUFFIXES)
        raise CascadeError(f"unknown data file type '{suffix}'; allowed: {allowed}", file=str(path))


def _iter_json_rows(path: Path, array_allowed: bool) -> Iterator[tuple[RowPlace, dict[str, Any]]]:
    """JSONL; a ``.json`` file may instead hold one array (e.g. MBPP's sanitized set), but
    many ``.json`` files on the hub are JSONL, so the first character decides."""
    with _open_text(path) as fh:
        if array_allowed:
            first = fh.read(1)
            while first and first.isspace():
                first = fh.read(1)
            if first == "[":
                yield from _iter_json_array(path, "[" + fh.read())
                return
            fh.seek(0)
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            place = RowPlace(str(path), line=number)
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise place.error(f"malformed JSON: {exc.msg} (column {exc.colno})") from None
            yield place, _expect_object(row, place)


def _iter_json_array(path: Path, text: str) -> Iterator[tuple[RowPlace, dict[str, Any]]]:
    decoder = json.JSONDecoder()
    pos = _skip_space(text, 1)
    if text[pos : pos + 1] == "]":
        return
    while True:
        place = RowPlace(str(path), line=text.count("\n", 0, pos) + 1)
        try:
            row, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise RowPlace(str(path), line=exc.lineno).error(f"malformed JSON: {exc.msg} (column {exc.colno})") from None
        yield place, _expect_object(row, place)
        pos = _skip_space(text, pos)
        if text[pos : pos + 1] == ",":
            pos = _skip_space(text, pos + 1)
            continue
        if text[pos : pos + 1] == "]":
            return
        line = text.count("\n", 0, pos) + 1
        raise RowPlace(str(path), line=line).error("malformed JSON: expected ',' or ']' after an array item")


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _expect_object(row: Any, place: RowPlace) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise place.error(f"expected a JSON object, got {type(row).__name__}")
    return row


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        raise CascadeError("reading or writing Parquet needs pyarrow: pip install pyarrow") from None
    return pq


def _iter_parquet_rows(path: Path) -> Iterator[tuple[RowPlace, dict[str, Any]]]:
    pq = _pyarrow_parquet()
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise CascadeError(f"not a readable Parquet file: {exc}", file=str(path)) from None
    metadata = parquet.schema_arrow.metadata or {}
    json_columns = json.loads(metadata.get(_JSON_COLUMNS_KEY, b"[]"))
    index = 0
    for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
        for row in batch.to_pylist():
            for column in json_columns:
                if row.get(column) is not None:
                    row[column] = json.loads(row[column])
            yield RowPlace(str(path), row=index), row
            index += 1


def validate_row(model: type[BaseModel], row: Mapping[str, Any], place: RowPlace) -> BaseModel:
    """Validate one raw row, turning the first problem into a CascadeError at ``place``."""
    try:
        return model.model_validate(row)
    except ValidationError as exc:
        loc, message, _error, count = first_error(exc)
        raise place.error(message + more_suffix(count), field=format_path(loc) or None) from None


def iter_records(path: str | Path, kind: RecordKind | type[BaseModel]) -> Iterator[BaseModel]:
    """Stream validated records of ``kind`` (``sft``, ``preference``, ``prompt``,
    ``prediction``) from a .jsonl, .json or .parquet file; empty lines are skipped."""
    model = record_model(kind)
    for place, row in iter_rows(path):
        yield validate_row(model, row, place)


def read_records(path: str | Path, kind: RecordKind | type[BaseModel]) -> list[BaseModel]:
    return list(iter_records(path, kind))


def count_rows(path: str | Path) -> int:
    """Number of rows without validating them (JSONL: non-empty lines; Parquet: metadata)."""
    path = Path(path)
    if _suffix(path) in PARQUET_SUFFIXES and path.is_file():
        return _pyarrow_parquet().ParquetFile(path).metadata.num_rows
    return sum(1 for _ in iter_rows(path))


def _as_dict(record: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(record, BaseModel):
        # exclude_unset: write back what was given, so defaults never freeze into files.
        return record.model_dump(mode="json", exclude_unset=True)
    return dict(record)


def _json_line(record: BaseModel | Mapping[str, Any]) -> str:
    return json.dumps(_as_dict(record), ensure_ascii=False) + "\n"


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success fsync and rename it to ``path``,
    on any exception delete it and leave ``path`` as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    encoding = None if "b" in mode else "utf-8"
    try:
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            # mkstemp makes the file private (0600); give it the target's mode, or 0644.
            os.fchmod(fh.fileno(), stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible on every platform, hence best effort.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_jsonl(path: str | Path, records: Iterable[BaseModel | Mapping[str, Any]]) -> int:
    """Write records (models or dicts) as JSONL, atomically. Returns the number written."""
    count = 0
    with atomic_open(path, "w") as fh:
        for record in records:
            fh.write(_json_line(record))
            count += 1
    return count


def append_jsonl(path: str | Path, records: Iterable[BaseModel | Mapping[str, Any]]) -> int:
    """Append records to a JSONL file by rewriting it whole and atomically (old content
    plus the new lines), so readers never see a half-appended file. Returns the number
    appended. Cost grows with the file: for streams, collect and write once."""
    path = Path(path)
    count = 0
    with atomic_open(path, "w") as fh:
        if path.exists():
            with open(path, encoding="utf-8") as old:
                content = old.read()
            fh.write(content)
            if content and not content.endswith("\n"):
                fh.write("\n")
        for record in records:
            fh.write(_json_line(record))
            count += 1
    return count


def write_parquet(path: str | Path, records: Iterable[BaseModel | Mapping[str, Any]]) -> int:
    """Write records as Parquet, atomically. Returns the number written.

    Columns that Arrow cannot store losslessly (free-form JSON such as ``ground_truth`` of
    mixed types, ``meta`` dicts with different keys, empty dicts) are stored as JSON text
    and listed in the schema metadata, so ``iter_records`` gives back exactly what went in.
    """
    pq = _pyarrow_parquet()
    import pyarrow as pa

    rows = [_as_full_dict(record) for record in records]
    columns: dict[str, list[Any]] = {}
    for row in rows:
        for key in row:
            columns.setdefault(key, [])
    for key, values in columns.items():
        values.extend(row.get(key) for row in rows)
    arrays: dict[str, Any] = {}
    json_columns: list[str] = []
    for key, values in columns.items():
        native = _lossless_array(pa, values)
        if native is None:
            json_columns.append(key)
            native = pa.array([None if v is None else json.dumps(v, ensure_ascii=False) for v in values], pa.string())
        arrays[key] = native
    table = pa.table(arrays) if arrays else pa.table({})
    table = table.replace_schema_metadata({_JSON_COLUMNS_KEY: json.dumps(json_columns).encode()})
    with atomic_open(path, "wb") as fh:
        pq.write_table(table, fh)
    return len(rows)


def _as_full_dict(record: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    # Every field, defaults included: a Parquet column must exist in every row.
    return record.model_dump(mode="json") if isinstance(record, BaseModel) else dict(record)


def _lossless_array(pa: Any, values: list[Any]) -> Any:
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    if pa.types.is_null(array.type) or _has_empty_struct(pa, array.type):
        return None
    # Compare as JSON text: Python equality would accept 1 -> 1.0 or reordered dict keys.
    if json.dumps(array.to_pylist(), ensure_ascii=False) != json.dumps(values, ensure_ascii=False):
        return None
    return array


def _has_empty_struct(pa: Any, arrow_type: Any) -> bool:
    # Parquet cannot store a struct without fields (what `{}` becomes).
    if pa.types.is_struct(arrow_type):
        return arrow_type.num_fields == 0 or any(_has_empty_struct(pa, f.type) for f in arrow_type)
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return _has_empty_struct(pa, arrow_type.value_type)
    return False
