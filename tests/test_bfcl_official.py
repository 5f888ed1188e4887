"""The tool-call verifier against BFCL's own AST checker as the oracle.

The oracle is the official ``bfcl-eval`` package, release 2025.7.17 (the BFCL v3 data the
tests read is gorilla tag v1.3, of the same day). Its dependencies pin numpy and a dozen API
clients that conflict with the project's, so it is installed with ``--no-deps`` (the
Makefile does this for the test venv); the AST checker itself needs only the standard
library, plus the model-config table it consults for function names with dots, which is
stood in for below (no dot-to-underscore renaming: cascade's calls keep the names as
offered).

For the first rows of every Python AST category, right answers built from the possible
answers and mutated ones (wrong types, missing and extra arguments, wrong values,
reordered parallel calls, a call where none is wanted) must get the same verdict from
both. Each known disagreement is listed in ``KNOWN`` with its reason.
"""

from __future__ import annotations

import copy
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from cascade.verifiers import get_verifier

PYTHON_CATEGORIES = ("simple", "multiple", "parallel", "parallel_multiple", "live_simple", "live_multiple",
                     "live_parallel", "live_parallel_multiple")
ROWS_PER_CATEGORY = 12
MODEL_NAME = "cascade"

# (row id, variant) -> why the verdicts differ. None so far: the table is here so that a
# disagreement found later is written down with its reason rather than hidden.
KNOWN: dict[tuple[str, str], str] = {}


def _oracle():
    """BFCL's ``ast_checker`` (skipped with a reason when the package is not installed)."""
    pytest.importorskip("bfcl_eval", reason="the official bfcl-eval package (pip install --no-deps bfcl-eval==2025.7.17)")
    import bfcl_eval.constants  # noqa: F401  (the parent package must exist before the stand-in)

    class _Configs(dict):
        def __missing__(self, key: str) -> Any:
            return types.SimpleNamespace(underscore_to_dot=False)

    stand_in = types.ModuleType("bfcl_eval.constants.model_config")
    stand_in.MODEL_CONFIG_MAPPING = _Configs()  # type: ignore[attr-defined]
    saved = sys.modules.get("bfcl_eval.constants.model_config")
    sys.modules["bfcl_eval.constants.model_config"] = stand_in
    try:
        sys.modules.pop("bfcl_eval.eval_checker.ast_eval.ast_checker", None)
        from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
    finally:
        if saved is not None:
            sys.modules["bfcl_eval.constants.model_config"] = saved
        else:
            sys.modules.pop("bfcl_eval.constants.model_config", None)
    return ast_checker


def _rows(path: Path, n: int) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            rows.append(json.loads(line))
            if len(rows) == n:
                break
    return rows


def _pick(acceptable: list[Any]) -> Any:
    return _realise(acceptable[0])


def _realise(value: Any) -> Any:
    """A concrete argument from a possible-answer value (dicts hold lists of options)."""
    if isinstance(value, dict):
        return {k: _pick(v) for k, v in value.items() if isinstance(v, list) and v and v[0] != ""}
    if isinstance(value, list):
        return [_realise(v) for v in value]
    return value


def right_calls(truth: list[dict[str, Any]]) -> list[dict[str, Any]]:
    calls = []
    for entry in truth:
        ((name, params),) = entry.items()
        calls.append({name: {p: _pick(options) for p, options in params.items() if options[0] != ""}})
    return calls


def _required(functions: list[dict[str, Any]], name: str) -> list[str]:
    doc = next((f for f in functions if f["name"] == name), {})
    return list((doc.get("parameters") or {}).get("required") or [])


def variants(calls: list[dict[str, Any]], functions: list[dict[str, Any]], category: str) -> dict[str, Any]:
    """Right and mutated outputs of one row, by name (a mutation that does not apply is left out)."""
    out: dict[str, Any] = {"right": calls}
    first_name, first_args = next(iter(calls[0].items()))
    out["extra_argument"] = _with(calls, 0, {**first_args, "unexpected_argument": 1})
    required = [p for p in _required(functions, first_name) if p in first_args]
    if required:
        out["missing_required"] = _with(calls, 0, {k: v for k, v in first_args.items() if k != required[0]})
    ints = [k for k, v in first_args.items() if isinstance(v, int) and not isinstance(v, bool)]
    if ints:
        out["int_as_string"] = _with(calls, 0, {**first_args, ints[0]: str(first_args[ints[0]])})
        out["int_off_by_one"] = _with(calls, 0, {**first_args, ints[0]: first_args[ints[0]] + 1})
    floats = [k for k, v in first_args.items() if isinstance(v, float) and v.is_integer()]
    if floats:
        out["float_as_int"] = _with(calls, 0, {**first_args, floats[0]: int(first_args[floats[0]])})
    strings = [k for k, v in first_args.items() if isinstance(v, str) and v]
    if strings:
        out["string_as_list"] = _with(calls, 0, {**first_args, strings[0]: [first_args[strings[0]]]})
    out["wrong_function"] = [{first_name + "_x": first_args}] + calls[1:]
    if len(calls) > 1:
        out["reordered"] = list(reversed(calls))
        out["one_call_dropped"] = calls[:-1]
    else:
        out["called_twice"] = calls + calls
    return out


def _with(calls: list[dict[str, Any]], index: int, args: dict[str, Any]) -> list[dict[str, Any]]:
    changed = copy.deepcopy(calls)
    name = next(iter(changed[index]))
    changed[index] = {name: args}
    return changed


def as_completion(calls: list[dict[str, Any]]) -> str:
    return "\n".join(f"<tool_call>\n{json.dumps({'name': n, 'arguments': a})}\n</tool_call>"
                     for call in calls for n, a in call.items())


def test_tool_call_verdicts_agree_with_bfcl_ast_checker(shared_data):
    ast_checker = _oracle()
    ours = get_verifier("tool_call")
    compared, disagreements = 0, {}
    for category in PYTHON_CATEGORIES:
        questions = _rows(shared_data / "bfcl_v3" / f"BFCL_v3_{category}.json", ROWS_PER_CATEGORY)
        answers = {r["id"]: r["ground_truth"] for r in
                   _rows(shared_data / "bfcl_v3" / "possible_answer" / f"BFCL_v3_{category}.json", 10 ** 6)}
        for q in questions:
            truth, functions = answers[q["id"]], q["function"]
            record = {"ground_truth": truth, "meta": {"functions": functions}}
            for variant, calls in variants(right_calls(truth), functions, category).items():
                official = ast_checker(functions, calls, truth, "Python", category, MODEL_NAME)["valid"]
                mine = ours.verify(as_completion(calls), record).passed
                compared += 1
                if variant == "right":
                    assert official, (q["id"], calls)  # the built answer is right by the oracle's own rule
                if official != mine:
                    disagreements[(q["id"], variant)] = (official, mine)
    unexplained = {k: v for k, v in disagreements.items() if k not in KNOWN}
    assert not unexplained, unexplained
    assert not set(KNOWN) - set(disagreements), "a listed disagreement no longer happens; remove it"
    assert compared > 500


def test_irrelevance_rows_agree_with_bfcl(shared_data):
    """BFCL scores irrelevance by abstention: any decoded call fails (no AST check)."""
    ours = get_verifier("tool_call")
    for q in _rows(shared_data / "bfcl_v3" / "BFCL_v3_irrelevance.json", 20):
        record = {"ground_truth": [], "meta": {"functions": q["function"]}}
        assert ours.verify("I cannot help with that using these tools.", record).passed
        name = q["function"][0]["name"]
        assert not ours.verify(as_completion([{name: {}}]), record).passed


def test_listed_disagreement_greedy_pairing_of_parallel_calls():
    """BFCL pairs each expected call with the FIRST produced call that fits it and never
    revisits the choice; cascade finds a one-to-one matching when one exists. So a right
    answer whose calls come in an order the greedy pass gets wrong fails BFCL and passes here.
    Reason for keeping ours: the order of parallel calls carries no meaning (BFCL's own
    "no_order" checker says so), and RL must not punish a correct answer for it."""
    ast_checker = _oracle()
    functions = [{"name": "f", "description": "", "parameters": {"type": "dict", "required": ["x"],
                                                                  "properties": {"x": {"type": "integer"}}}}]
    truth = [{"f": {"x": [1, 2]}}, {"f": {"x": [1]}}]
    calls = [{"f": {"x": 1}}, {"f": {"x": 2}}]
    assert not ast_checker(functions, calls, truth, "Python", "parallel", MODEL_NAME)["valid"]
    record = {"ground_truth": truth, "meta": {"functions": functions}}
    assert get_verifier("tool_call").verify(as_completion(calls), record).passed
    # In the other order both accept it.
    assert ast_checker(functions, list(reversed(calls)), truth, "Python", "parallel", MODEL_NAME)["valid"]
