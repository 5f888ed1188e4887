"""``tool_call``: function calls checked the way BFCL's AST checker does (single turn).

Record:
- ``ground_truth``: the expected calls in BFCL's possible-answer format,
  ``[{"func_name": {"param": [acceptable values, ...]}}, ...]``; ``""`` among a
  parameter's values means it may be omitted. ``[]`` means no call should be made
  (BFCL's irrelevance categories).
- ``meta.functions`` (optional but recommended): the function documents offered to the
  model (JSON schema with BFCL's type names: ``dict``, ``integer``, ``float``,
  ``string``, ``array``, ``tuple``, ``boolean``, ``any``; plain JSON-schema ``object``
  and ``number`` too). They supply the required parameters and the types; without them
  only names and values are checked.

The answer's ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks, read by
``cascade.chat.parse.parse_completion``, are the produced calls; a malformed block fails
the item (a broken call is not "no call"). A produced call matches an expected one when the function name is
equal, every required parameter is present, no parameter is unexpected, every value has
the schema's type (an int is accepted for a float) and is among the acceptable values
(strings compared after BFCL's normalisation: lower case, spaces and ``,./-_*^``
removed, ``'`` read as ``"``), and every omitted parameter is optional. Calls match
order-insensitively, each expected call to a distinct produced call, and the counts
must be equal. Unlike BFCL's greedy pairing, the pairing here is an exact bipartite
matching, so an ambiguous order never fails a correct answer.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from cascade.errors import CascadeError
from cascade.verifiers.base import Verifier, VerifyResult, register
from cascade.chat.parse import parse_completion

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "float": (float, int),  # BFCL: Python accepts an int where a float is expected
    "number": (float, int),
    "boolean": (bool,),
    "array": (list,),
    "tuple": (list,),  # JSON has no tuples
    "dict": (dict,),
    "object": (dict,),
}


def normalise_string(text: str) -> str:
    return re.sub(r"[ ,./\-_*^]", "", text).lower().replace("'", '"')


def _type_ok(value: Any, schema: Mapping[str, Any] | None) -> bool:
    if not schema or schema.get("type") in (None, "any"):
        return True
    allowed = _TYPES.get(str(schema["type"]))
    if allowed is None:
        return True  # an unknown type name constrains nothing
    if isinstance(value, bool) and bool not in allowed:
        return False  # bool is an int subclass in Python, not in JSON schema
    if not isinstance(value, allowed):
        return False
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return all(_type_ok(item, schema["items"]) for item in value)
    if isinstance(value, dict) and isinstance(schema.get("properties"), Mapping):
        properties = schema["properties"]
        return all(_type_ok(v, properties.get(k)) for k, v in value.items())
    return True


def _canonical(value: Any) -> Any:
    """A form in which equal values compare equal: normalised strings, ints as floats."""
    if isinstance(value, str):
        return normalise_string(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return ("number", float(value))
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _dict_matches(value: Mapping[str, Any], allowed: Mapping[str, Any]) -> bool:
    """A dict argument against one acceptable dict ``{key: [acceptable values]}``."""
    for key, item in value.items():
        if key not in allowed or not _value_ok(item, allowed[key]):
            return False
    return all(key in value or "" in options for key, options in allowed.items())


def _value_ok(value: Any, acceptable: Sequence[Any]) -> bool:
    for option in acceptable:
        if isinstance(value, dict) and isinstance(option, dict):
            if _dict_matches(value, option):
                return True
        elif isinstance(value, list) and isinstance(option, list) and len(value) == len(option) and any(
            isinstance(o, dict) for o in option
        ):
            if all(
                _dict_matches(v, o) if isinstance(v, dict) and isinstance(o, dict) else _canonical(v) == _canonical(o)
                for v, o in zip(value, option)
            ):
                return True
        elif isinstance(value, bool) != isinstance(option, bool):
            continue
        elif _canonical(value) == _canonical(option):
            return True
    return False


def check_call(
    call: Mapping[str, Any],
    expected_name: str,
    expected_args: Mapping[str, Sequence[Any]],
    function: Mapping[str, Any] | None,
) -> str | None:
    """Why ``call`` does not match the expected call (None when it matches)."""
    arguments = call["arguments"]
    if call["name"] != expected_name:
        return f"called '{call['name']}', expected '{expected_name}'"
    parameters = (function or {}).get("parameters") or {}
    properties = parameters.get("properties") or {}
    for name in parameters.get("required") or []:
        if name not in arguments:
            return f"missing required argument '{name}'"
    for name, value in arguments.items():
        if name not in expected_args or (function is not None and name not in properties):
            return f"unexpected argument '{name}'"
        if not _type_ok(value, properties.get(name)):
            return f"argument '{name}' has the wrong type ({type(value).__name__})"
        if not _value_ok(value, expected_args[name]):
            return f"argument '{name}' = {value!r} is not an acceptable value"
    for name, options in expected_args.items():
        if name not in arguments and "" not in options:
            return f"missing argument '{name}'"
    return None


def _match_all(fits: list[list[bool]]) -> bool:
    """Whether every expected call (row) gets its own produced call (column)."""
    owner: dict[int, int] = {}

    def place(row: int, seen: set[int]) -> bool:
        for col, ok in enumerate(fits[row]):
            if ok and col not in seen:
                seen.add(col)
                if col not in owner or place(owner[col], seen):
                    owner[col] = row
                    return True
        return False

    return all(place(row, set()) for row in range(len(fits)))


def _parse_expected(record: Mapping[str, Any]) -> list[tuple[str, dict[str, list[Any]]]]:
    truth = record.get("ground_truth")
    problem = CascadeError(
        'expected a list of {"func_name": {"param": [acceptable values]}} (or [] for no call)',
        field="ground_truth",
    )
    if not isinstance(truth, list):
        raise problem
    expected = []
    for entry in truth:
        if not isinstance(entry, Mapping) or len(entry) != 1:
            raise problem
        ((name, args),) = entry.items()
        if not isinstance(args, Mapping) or not all(isinstance(v, list) for v in args.values()):
            raise problem
        expected.append((name, dict(args)))
    return expected


@register("tool_call")
class ToolCallVerifier(Verifier):
    def check(self, answer: str, record: Mapping[str, Any]) -> VerifyResult:
        expected = _parse_expected(record)
        functions = {
            f.get("name"): f for f in (record.get("meta") or {}).get("functions") or [] if isinstance(f, Mapping)
        }
        parsed = parse_completion(answer)
        calls = parsed.tool_calls
        details: dict[str, Any] = {"calls": calls}
        if parsed.errors:
            return VerifyResult(0.0, False, {**details, "reason": "; ".join(parsed.errors)}, error="unparseable_tool_call")
        if not expected:
            ok = not calls
            return VerifyResult(float(ok), ok, {**details, "reason": None if ok else "a call was made"})
        if len(calls) != len(expected):
            reason = f"made {len(calls)} calls, expected {len(expected)}"
            return VerifyResult(0.0, False, {**details, "reason": reason})
        problems = [
            [check_call(call, name, args, functions.get(name) if functions else None) for call in calls]
            for name, args in expected
        ]
        ok = _match_all([[p is None for p in row] for row in problems])
        if ok:
            return VerifyResult(1.0, True, details)
        # With one expected call the reason is precise; with several, report per row.
        reasons = [next((p for p in row if p), None) for row in problems]
        return VerifyResult(0.0, False, {**details, "reason": "; ".join(r for r in reasons if r) or "no one-to-one matching"})
