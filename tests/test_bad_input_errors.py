"""Bad input to `cascade run`, `cascade verify` and `cascade eval` is a one-line error
before any work starts: no traceback, no model loaded, no row scored, nothing trained.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cascade.cli import main
from cascade.config import load_recipe
from cascade.errors import CascadeError

RECIPE = """\
name: bad-input
seed: 0
base_model: {init: {size: tiny}}
eval:
  quick:
    - {name: math, generator: toy/eval/math, k: 1, max_new_tokens: 8}
stages:
  - name: sft
    kind: sft
    data: {generator: toy/sft/math, limit: 4}
    lr: 1.0e-3
    batch_size: 2
    max_steps: 2
"""


def _one_line_error(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    return captured.err.strip()


# ---------------------------------------------------------------- recipes


def test_recipe_with_a_byte_that_is_not_utf8_names_its_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(RECIPE.replace("name: sft", "name: sft  # caf\xe9").encode("latin-1"))
    out = tmp_path / "out"
    err = _one_line_error(["run", str(bad), "--out", str(out)], capsys)
    assert f"{bad}:8:" in err and "0xe9" in err and "not UTF-8" in err
    assert not out.exists()  # nothing started


@pytest.mark.parametrize("old, new, field", [
    ("max_steps: 2", "max_steps: true", "stages.sft.max_steps"),
    ("batch_size: 2", "batch_size: true", "stages.sft.batch_size"),
    ("limit: 4", "limit: true", "stages.sft.data[0].limit"),
    ("k: 1", "k: true", "eval.quick[0].k"),
    ("max_new_tokens: 8", "max_new_tokens: false", "eval.quick[0].max_new_tokens"),
    ("seed: 0", "seed: false", "seed"),
    ("lr: 1.0e-3", "lr: true", "stages.sft.lr"),  # a float field takes no bool either
    ("max_steps: 2", "max_steps: '2'", "stages.sft.max_steps"),  # nor a string of digits
])
def test_a_bool_is_not_a_number_in_a_recipe(tmp_path, old, new, field):
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE.replace(old, new))
    with pytest.raises(CascadeError) as caught:
        load_recipe(path)
    assert caught.value.field == field and caught.value.line is not None
    assert "valid" in caught.value.message and "\n" not in caught.value.format()


def test_a_bool_override_is_not_a_number_either(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE)
    with pytest.raises(CascadeError) as caught:
        load_recipe(path, ["stages.sft.max_steps=true"])
    assert caught.value.field == "stages.sft.max_steps" and "from --set 'stages.sft.max_steps=true'" in caught.value.message
    # The numbers people write still load: ints, floats with or without a dot, an int for a float.
    recipe = load_recipe(path, ["stages.sft.max_steps=3", "stages.sft.lr=1e-4", "stages.sft.weight_decay=0"])
    sft = recipe.stages[0]
    assert (sft.max_steps, sft.lr, sft.weight_decay, sft.adam_betas) == (3, 1e-4, 0.0, (0.9, 0.95))


# ---------------------------------------------------------------- cascade verify


@pytest.fixture
def predictions(tmp_path) -> Path:
    path = tmp_path / "preds.jsonl"
    path.write_text(json.dumps({"id": 1, "prompt": "1+1?", "verifier": "math", "ground_truth": "2",
                                "completion": "\\boxed{2}"}) + "\n")
    return path


@pytest.fixture
def no_scoring(monkeypatch):
    """Scoring a row fails the test: the checks must come first."""
    import cascade.verifiers.batch

    def refuse(*args, **kwargs):
        raise AssertionError("rows were scored before the arguments were checked")

    monkeypatch.setattr(cascade.verifiers.batch, "score_batch", refuse)


@pytest.mark.parametrize("timeout", ["nan", "inf", "-inf", "-1", "0"])
def test_verify_timeout_must_be_a_positive_finite_number(predictions, tmp_path, capsys, no_scoring, timeout):
    err = _one_line_error(["verify", "--input", str(predictions), "--output", str(tmp_path / "o.jsonl"),
                           f"--timeout={timeout}"], capsys)
    assert "--timeout" in err and "positive number of seconds" in err


def test_verify_output_that_is_a_directory_fails_before_scoring(predictions, tmp_path, capsys, no_scoring):
    folder = tmp_path / "existing"
    folder.mkdir()
    err = _one_line_error(["verify", "--input", str(predictions), "--output", str(folder)], capsys)
    assert "--output" in err and f"{folder} is a directory" in err


def test_verify_output_below_a_file_fails_before_scoring(predictions, tmp_path, capsys, no_scoring):
    err = _one_line_error(["verify", "--input", str(predictions), "--output", str(predictions / "o.jsonl")], capsys)
    assert "--output" in err and f"{predictions} is a file" in err


def test_verify_still_writes_a_good_output(predictions, tmp_path, capsys):
    out = tmp_path / "new" / "scored.jsonl"
    assert main(["verify", "--input", str(predictions), "--output", str(out), "--workers", "1"]) == 0
    assert json.loads(out.read_text())["passed"] is True


# ---------------------------------------------------------------- cascade eval


@pytest.fixture
def no_model(monkeypatch):
    """Loading a model fails the test: the checks must come first."""
    import cascade.eval.backends

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(cascade.eval.backends, "make_backend", refuse)


def test_eval_out_that_is_a_file_fails_before_loading_the_model(tmp_path, capsys, no_model):
    existing = tmp_path / "results.txt"
    existing.write_text("keep me")
    err = _one_line_error(["eval", "--model", str(tmp_path / "model"), "--benchmarks", "toy_math",
                           "--out", str(existing)], capsys)
    assert "--out" in err and f"{existing} is a file" in err
    assert existing.read_text() == "keep me"


@pytest.mark.parametrize("flag, value", [("--request-timeout", "nan"), ("--request-timeout", "inf")])
def test_eval_request_timeout_must_be_finite(tmp_path, capsys, no_model, flag, value):
    err = _one_line_error(["eval", "--model", "m", "--benchmarks", "toy_math", "--backend", "openai",
                           "--base-url", "http://127.0.0.1:9/v1", flag, value, "--out", str(tmp_path / "o")], capsys)
    assert "--request-timeout" in err
