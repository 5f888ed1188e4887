"""Decode LiveCodeBench's ``private_test_cases`` field without unpickling anything.

In ``livecodebench/code_generation_lite`` the hidden tests of a problem are stored either
as JSON text (a list of ``{"input", "output", "testtype"}``) or, for most rows, as
``base64(zlib(pickle(json_text)))``: the JSON text is pickled as one Python string, that
pickle is zlib-compressed and the bytes are base64-encoded. The layout was confirmed in
LiveCodeBench's own loader (``lcb_runner/benchmarks/code_generation.py``, the
``CodeGenerationProblem`` dataclass), which tries ``json.loads`` first and falls back to
``json.loads(pickle.loads(zlib.decompress(base64.b64decode(...))))``.

Why not ``pickle.loads``: a pickle is a small program, and loading an untrusted one can run
any code (``__reduce__``). Dataset files are untrusted input, so the pickle is never
executed here. ``pickletools.genops`` only *parses* the opcode stream; the decoder accepts
exactly the opcodes a pickled ``str`` consists of (protocol header, framing, one string
opcode, memo bookkeeping, STOP) and takes the string from the parsed argument. Anything
else (a global lookup, a call, a second object) is refused with an error. The zlib step is
bounded too (``max_bytes``), so a small compressed bomb cannot exhaust memory. Torch-free.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import pickletools
import zlib
from typing import Any

from cascade.errors import CascadeError

# Decompressed size allowed for one problem's tests. The largest real rows hold tens of
# megabytes of test data; a bound far above that still stops a zlib bomb.
MAX_DECODED_BYTES = 1 << 30

# The opcodes of a pickled str, for every protocol (0-5): a header, framing, the string
# itself, the memo write that pickle adds after it, and STOP.
_HEADER_OPS = {"PROTO", "FRAME"}
_STRING_OPS = {"UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}
_MEMO_OPS = {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}

_FIELD = "private_test_cases"
_TEST_TYPES = ("stdin", "functional")


def decode_lcb_private_tests(text: str, *, max_bytes: int = MAX_DECODED_BYTES) -> list[dict[str, Any]]:
    """The tests in a ``private_test_cases`` value: ``[{"input", "output", "testtype"}, ...]``.

    Accepts both stored layouts (plain JSON text, or base64 of zlib of a pickled JSON
    string). Raises ``CascadeError`` (field ``private_test_cases``) when the value is in
    neither layout, the pickle holds anything but one string, the data would decompress
    past ``max_bytes``, or a test lacks a string ``input``/``output`` or a known
    ``testtype``. An empty string means no private tests (``[]``).
    """
    if not isinstance(text, str):
        raise CascadeError(f"must be a string (got {type(text).__name__})", field=_FIELD)
    stripped = text.strip()
    if not stripped:
        return []
    if stripped.startswith("["):
        json_text = stripped
    else:
        json_text = _unpack_compressed(stripped, max_bytes)
    try:
        tests = json.loads(json_text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise CascadeError(f"decoded tests are not valid JSON: {exc}", field=_FIELD) from None
    return _checked_tests(tests)


def _unpack_compressed(text: str, max_bytes: int) -> str:
    try:
        compressed = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise CascadeError("neither JSON nor base64 text", field=_FIELD) from None
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(compressed, max_bytes)
    except zlib.error as exc:
        raise CascadeError(f"base64 text is not zlib data ({exc})", field=_FIELD) from None
    if inflater.unconsumed_tail:
        raise CascadeError(f"decompresses to more than {max_bytes} bytes", field=_FIELD)
    return pickled_string(raw)


def pickled_string(data: bytes) -> str:
    """The ``str`` that the pickle ``data`` encodes, read by parsing its opcodes only.

    Raises ``CascadeError`` unless ``data`` is exactly a pickled string (see the module
    docstring); nothing in ``data`` is executed.
    """
    value: str | None = None
    stopped = False
    stream = io.BytesIO(data)
    try:
        for opcode, arg, _pos in pickletools.genops(stream):
            name = opcode.name
            if name in _HEADER_OPS or name in _MEMO_OPS:
                continue
            if name in _STRING_OPS and value is None:
                value = arg
                continue
            if name == "STOP" and value is not None:
                stopped = True
                break
            raise CascadeError(f"the pickle holds more than one string (opcode {name}); refused unread", field=_FIELD)
    except CascadeError:
        raise
    except Exception as exc:  # pickletools raises ValueError and others on a damaged stream
        raise CascadeError(f"not a readable pickle ({exc})", field=_FIELD) from None
    if not stopped or value is None or stream.read(1):
        raise CascadeError("the pickle is not exactly one string", field=_FIELD)
    return value


def _checked_tests(tests: Any) -> list[dict[str, Any]]:
    if not isinstance(tests, list):
        raise CascadeError(f"decoded tests must be a JSON list (got {type(tests).__name__})", field=_FIELD)
    problems = []
    for index, test in enumerate(tests):
        if not isinstance(test, dict):
            problems.append(f"[{index}] is not an object")
            continue
        for key in ("input", "output"):
            if not isinstance(test.get(key), str):
                problems.append(f"[{index}].{key} is not a string")
        if test.get("testtype") not in _TEST_TYPES:
            problems.append(f"[{index}].testtype is {test.get('testtype')!r}, not 'stdin' or 'functional'")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise CascadeError(f"bad decoded tests: {shown}", field=_FIELD)
    return tests
