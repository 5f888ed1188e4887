"""Read and write record files: JSONL (optionally gzipped), JSON arrays and Parquet.

Every bad row becomes one CascadeError naming the file, the place (1-based line for JSONL
and JSON, 0-based row index for Parquet) and the field path. Writes are atomic: the data
goes to a temporary file in the target's folder, is fsynced, then renamed over the target,
so a crash or an exception mid-way never leaves a partial file. Torch-free.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import itertools
import json
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping

from pydantic import BaseModel, ValidationError

from cascade.data.records import RecordKind, record_model
from cascade.data.validation import every_error, format_path
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
    # 0-based item index in a JSON array: a whole array can sit on one line, so the line
    # alone does not tell its rows apart.
    item: int | None = None

    def error(self, message: str, field: str | None = None) -> CascadeError:
        file = self.file if self.row is None else f"{self.file} row {self.row}"
        return CascadeError(message, file=file, line=self.line, field=field)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in DATA_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def _open_binary(path: Path) -> IO[bytes]:
    # Bytes, not text: lines are split on b"\n" only (a U+2028 inside a string is not a
    # line break) and each line is decoded on its own, so bad UTF-8 names its line.
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


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
    with _open_binary(path) as fh:
        if array_allowed and _starts_with_array(fh):
            data = fh.read()
            text = _decode(data.removeprefix(_UTF8_BOM), RowPlace(str(path), line=1), whole_file=True)
            yield from _iter_json_array(path, text)
            return
        for number, raw in enumerate(fh, start=1):
            place = RowPlace(str(path), line=number)
            if number == 1:
                raw = raw.removeprefix(_UTF8_BOM)  # written by some Windows tools
            if not raw.strip():
                continue
            yield place, _expect_object(_loads(_decode(raw, place), place), place)


def _starts_with_array(fh: IO[bytes]) -> bool:
    """Whether the first non-blank character is ``[``; rewinds ``fh``."""
    head = fh.read(64).removeprefix(_UTF8_BOM)
    while head and not head.strip():
        head = fh.read(64)
    fh.seek(0)
    return head.lstrip().startswith(b"[")


_JSON_SPACE = re.compile(r"[ \t\n\r]*")  # the only whitespace JSON allows between tokens

# A file may start with a UTF-8 byte order mark; it is not part of the first row.
_UTF8_BOM = b"\xef\xbb\xbf"


def _decode(data: bytes, place: RowPlace, *, whole_file: bool = False) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if whole_file:
            place = RowPlace(place.file, line=data.count(b"\n", 0, exc.start) + 1)
            column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        else:
            column = exc.start + 1
        raise place.error(f"not valid UTF-8 (byte {data[exc.start]:#04x} at column {column})") from None


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json's default is "last one wins", which would silently drop e.g. the first of two
    # `completion` keys; a repeated key is an error instead (as in recipes).
    row = dict(pairs)
    if len(row) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return row


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259); Python would accept them and write them
    # back out, and other tools then cannot read the file.
    raise ValueError(f"{name} is not valid JSON (RFC 8259 has no NaN or Infinity)")


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicate_keys, parse_constant=_reject_constant)


def _loads(text: str, place: RowPlace) -> Any:
    """One JSON value (a JSONL line), every failure turned into an error at ``place``."""
    value, end = _raw_decode(text, 0, place, whole_text=False)
    if _skip_space(text, end) < len(text):
        raise place.error(f"malformed JSON: Extra data (column {end + 1})")
    return value


def _raw_decode(text: str, pos: int, place: RowPlace, *, whole_text: bool) -> tuple[Any, int]:
    """The JSON value at ``pos``; ``whole_text``: ``text`` is the whole file, so a syntax
    error's own line number is the file's line."""
    try:
        return _DECODER.raw_decode(text, _skip_space(text, pos))
    except json.JSONDecodeError as exc:
        where = RowPlace(place.file, line=exc.lineno) if whole_text else place
        raise where.error(f"malformed JSON: {exc.msg} (column {exc.colno})") from None
    except _DuplicateKey as exc:
        raise place.error("key appears twice in one JSON object", field=exc.key) from None
    except RecursionError:
        raise place.error("JSON nested too deeply to read") from None
    except ValueError as exc:  # NaN / Infinity
        raise place.error(f"malformed JSON: {exc}") from None


def _iter_json_array(path: Path, text: str) -> Iterator[tuple[RowPlace, dict[str, Any]]]:
    pos = _skip_space(text, 1)
    if text[pos : pos + 1] == "]":
        return
    for item in itertools.count():
        place = RowPlace(str(path), line=text.count("\n", 0, pos) + 1, item=item)
        row, pos = _raw_decode(text, pos, place, whole_text=True)
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
    return _JSON_SPACE.match(text, pos).end()  # type: ignore[union-attr]


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
    json_columns = _loads(metadata.get(_JSON_COLUMNS_KEY, b"[]").decode("utf-8", "replace"), RowPlace(str(path)))
    index = 0
    for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
        for row in batch.to_pylist():
            place = RowPlace(str(path), row=index)
            for column in json_columns:
                if isinstance(row.get(column), str):
                    row[column] = _loads(row[column], place)
            yield place, row
            index += 1


def validate_row(model: type[BaseModel], row: Mapping[str, Any], place: RowPlace) -> BaseModel:
    """Validate one raw row; a bad row is one CascadeError at ``place`` naming every bad field
    (the first as the error's field, the others in the message)."""
    try:
        return model.model_validate(row)
    except ValidationError as exc:
        loc, message = every_error(exc)
        raise place.error(message, field=format_path(loc) or None) from None


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


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically: readers see the old file or the new one."""
    with atomic_open(path) as fh:
        fh.write(text)


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON (non-ASCII kept as is) to ``path`` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False))


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
