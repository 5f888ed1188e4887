"""The tool-call verifier against BFCL v3 rows, with hand-built right and wrong calls."""

from __future__ import annotations

import json

import pytest

from cascade.errors import CascadeError
from cascade.verifiers import get_verifier
from cascade.verifiers.tool_call import normalise_string


@pytest.fixture(scope="module")
def bfcl(shared_data):
    def load(category: str, row_id: str) -> dict:
        question = _find(shared_data / f"bfcl_v3/BFCL_v3_{category}.json", row_id)
        record = {"meta": {"functions": question["function"]}, "ground_truth": []}
        if category != "irrelevance":
            record["ground_truth"] = _find(shared_data / f"bfcl_v3/possible_answer/BFCL_v3_{category}.json", row_id)["ground_truth"]
        return record

    return load


def _find(path, row_id):
    for line in path.open():
        row = json.loads(line)
        if row["id"] == row_id:
            return row
    raise AssertionError(f"{row_id} not in {path}")


def calls(*pairs) -> str:
    return "\n".join(
        f'<tool_call>\n{json.dumps({"name": name, "arguments": args})}\n</tool_call>' for name, args in pairs
    )


def score(record, answer) -> float:
    return get_verifier("tool_call").verify(answer, record).score


def test_simple(bfcl) -> None:
    record = bfcl("simple", "simple_0")  # calculate_triangle_area(base=10, height=5, unit optional)
    name = "calculate_triangle_area"
    assert score(record, calls((name, {"base": 10, "height": 5}))) == 1.0
    assert score(record, calls((name, {"base": 10, "height": 5, "unit": "Units"}))) == 1.0  # normalised string
    assert score(record, calls((name, {"base": 10, "height": 6}))) == 0.0  # wrong value
    assert score(record, calls((name, {"base": 10}))) == 0.0  # required missing
    assert score(record, calls((name, {"base": 10.0, "height": 5}))) == 0.0  # float for integer
    assert score(record, calls((name, {"base": "10", "height": 5}))) == 0.0  # string for integer
    assert score(record, calls((name, {"base": 10, "height": 5, "color": "red"}))) == 0.0  # unexpected
    assert score(record, calls(("triangle_area", {"base": 10, "height": 5}))) == 0.0  # wrong name
    assert score(record, "The area is 25.") == 0.0  # no call


def test_tuple_of_floats_accepts_ints_where_floats_are_expected(bfcl) -> None:
    record = bfcl("simple", "simple_83")  # calculate_distance(coord1: tuple of float, ...)
    args = {"coord1": [33.4484, -112.074], "coord2": [34.0522, -118.2437], "unit": "miles"}
    assert score(record, calls(("calculate_distance", args))) == 1.0
    assert score(record, calls(("calculate_distance", {**args, "coord1": [33.4484, -112.075]}))) == 0.0
    assert score(record, calls(("calculate_distance", {**args, "coord2": ["34.0522", -118.2437]}))) == 0.0


def test_dict_argument(bfcl) -> None:
    record = bfcl("simple", "simple_89")  # conditions: {department, school}
    args = {"database_name": "StudentDB", "table_name": "students",
            "conditions": {"department": "Science", "school": "Bluebird HS"}}
    assert score(record, calls(("db_fetch_records", args))) == 1.0
    wrong = {**args, "conditions": {"department": "Arts", "school": "Bluebird HS"}}
    assert score(record, calls(("db_fetch_records", wrong))) == 0.0
    partial = {**args, "conditions": {"department": "Science"}}  # school is not optional
    assert score(record, calls(("db_fetch_records", partial))) == 0.0


def test_multiple_picks_the_right_function(bfcl) -> None:
    record = bfcl("multiple", "multiple_0")  # triangle_properties.get(5, 4, 3), flags optional
    right = {"side1": 5, "side2": 4, "side3": 3}
    assert score(record, calls(("triangle_properties.get", right))) == 1.0
    assert score(record, calls(("triangle_properties.get", {**right, "get_area": True}))) == 1.0
    assert score(record, calls(("triangle_properties.get", {**right, "get_area": 1}))) == 0.0  # int is not bool
    assert score(record, calls(("triangle_properties.get", {**right, "get_area": False}))) == 0.0
    other = record["meta"]["functions"][1]["name"]
    assert score(record, calls((other, right))) == 0.0


def test_parallel_is_order_insensitive_and_counts_calls(bfcl) -> None:
    record = bfcl("parallel", "parallel_0")  # spotify.play x2
    swift = ("spotify.play", {"artist": "Taylor Swift", "duration": 20})
    maroon = ("spotify.play", {"artist": "Maroon 5", "duration": 15})
    assert score(record, calls(swift, maroon)) == 1.0
    assert score(record, calls(maroon, swift)) == 1.0
    assert score(record, calls(swift)) == 0.0  # one call missing
    assert score(record, calls(swift, swift)) == 0.0  # each expected call needs its own call
    assert score(record, calls(swift, maroon, maroon)) == 0.0  # one call too many


def test_parallel_multiple(bfcl) -> None:
    record = bfcl("parallel_multiple", "parallel_multiple_0")
    sums = ("math_toolkit.sum_of_multiples", {"lower_limit": 1, "upper_limit": 1000, "multiples": [3, 5]})
    primes = ("math_toolkit.product_of_primes", {"count": 5})
    assert score(record, calls(primes, sums)) == 1.0
    swapped = ("math_toolkit.sum_of_multiples", {"lower_limit": 1, "upper_limit": 1000, "multiples": [5, 3]})
    assert score(record, calls(primes, swapped)) == 0.0  # list order matters, as in BFCL


def test_irrelevance_passes_only_without_a_call(bfcl) -> None:
    record = bfcl("irrelevance", "irrelevance_0")
    assert score(record, "None of the available functions computes a triangle's area.") == 1.0
    assert score(record, calls(("determine_body_mass_index", {"weight": 10.0, "height": 5.0}))) == 0.0


def test_malformed_call_fails_with_a_reason(bfcl) -> None:
    result = get_verifier("tool_call").verify("<tool_call>{not json}</tool_call>", bfcl("irrelevance", "irrelevance_0"))
    assert (result.score, result.error) == (0.0, "unparseable_tool_call")


def test_without_function_docs_names_and_values_are_checked() -> None:
    record = {"ground_truth": [{"f": {"x": [1], "y": ["", "a"]}}]}
    assert score(record, calls(("f", {"x": 1}))) == 1.0
    assert score(record, calls(("f", {"x": 1, "y": "A"}))) == 1.0
    assert score(record, calls(("f", {"x": 2}))) == 0.0


def test_bfcl_string_normalisation() -> None:
    assert normalise_string("New York, NY") == normalise_string("new-york ny") == "newyorkny"
    assert normalise_string("it's") == 'it"s'


@pytest.mark.parametrize("truth", ["f(x=1)", [{"f": {"x": 1}}], [{"f": {}, "g": {}}], None])
def test_bad_ground_truth(truth) -> None:
    with pytest.raises(CascadeError, match="ground_truth"):
        get_verifier("tool_call").verify("", {"ground_truth": truth})
