"""decode_lcb_private_tests: both stored layouts, and hostile pickles refused unexecuted."""

from __future__ import annotations

import base64
import json
import pickle
import zlib

import pytest

from cascade.data.adapters import decode_lcb_private_tests
from cascade.data.adapters.lcb_tests import pickled_string
from cascade.errors import CascadeError

TESTS = [
    {"input": "3\n1 2 3\n", "output": "6\n", "testtype": "stdin"},
    {"input": "[1, 2]\n5", "output": "[0, 1]", "testtype": "functional"},
]


def lcb_encode(obj, protocol=pickle.DEFAULT_PROTOCOL):
    """The release layout: base64 of zlib of a pickled JSON string."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(obj), protocol=protocol))).decode()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_compressed_layout_every_pickle_protocol(protocol):
    assert decode_lcb_private_tests(lcb_encode(TESTS, protocol)) == TESTS


def test_plain_json_layout_and_empty():
    assert decode_lcb_private_tests(json.dumps(TESTS)) == TESTS
    assert decode_lcb_private_tests("") == []
    assert decode_lcb_private_tests("[]") == []


class _Boom:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path(__import__('os').environ['BOOM_FILE']).write_text('ran')",))


def test_pickle_with_code_is_refused_and_never_runs(tmp_path, monkeypatch):
    marker = tmp_path / "ran.txt"
    monkeypatch.setenv("BOOM_FILE", str(marker))
    payload = base64.b64encode(zlib.compress(pickle.dumps(_Boom()))).decode()
    with pytest.raises(CascadeError, match="refused unread") as info:
        decode_lcb_private_tests(payload)
    assert info.value.field == "private_test_cases"
    assert not marker.exists()
    # the same payload would run code under pickle.loads: the test is meaningful
    pickle.loads(zlib.decompress(base64.b64decode(payload)))
    assert marker.read_text() == "ran"


def test_pickle_of_a_list_or_two_strings_is_refused():
    with pytest.raises(CascadeError, match="more than one string"):
        pickled_string(pickle.dumps(["a"]))
    with pytest.raises(CascadeError, match="not exactly one string"):
        pickled_string(pickle.dumps("a") + pickle.dumps("b"))
    with pytest.raises(CascadeError, match="not a readable pickle"):
        pickled_string(b"\x80\x04garbage")


def test_zlib_bomb_is_bounded():
    payload = base64.b64encode(zlib.compress(b"0" * 200_000)).decode()
    with pytest.raises(CascadeError, match="more than 100000 bytes"):
        decode_lcb_private_tests(payload, max_bytes=100_000)


@pytest.mark.parametrize(
    "text, message",
    [
        ("not base64 !!", "neither JSON nor base64"),
        (base64.b64encode(b"not zlib").decode(), "not zlib data"),
        (lcb_encode({"input": "1"}), "must be a JSON list"),
        (json.dumps([{"input": 1, "output": "2", "testtype": "stdin"}, {"input": "", "output": "", "testtype": "x"}]),
         r"\[0\]\.input is not a string; \[1\]\.testtype is 'x'"),
    ],
)
def test_bad_values_name_the_problem(text, message):
    with pytest.raises(CascadeError, match=message) as info:
        decode_lcb_private_tests(text)
    assert info.value.field == "private_test_cases"
