"""`cascade verify` end to end, in-process."""

from __future__ import annotations

import json

from cascade.cli import main


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def rows_of(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


PREDICTIONS = [
    {"id": 1, "prompt": "1/2?", "verifier": "math", "ground_truth": "0.5", "completion": r"<think>ok</think>\boxed{\frac12}", "extra": "kept"},
    {"id": 2, "prompt": "Pick", "verifier": "mcq", "ground_truth": "B", "meta": {"options": ["a", "b"]}, "completion": "Answer: A"},
    {"id": 3, "prompt": "2+2", "verifier": "math", "ground_truth": "4", "completion": "four"},
]


def test_scores_a_mixed_file(tmp_path, capsys) -> None:
    source, target = tmp_path / "preds.jsonl", tmp_path / "out" / "scored.jsonl"
    write_jsonl(source, PREDICTIONS)
    assert main(["verify", "--input", str(source), "--output", str(target), "--workers", "2"]) == 0
    scored = rows_of(target)
    assert [r["id"] for r in scored] == [1, 2, 3]
    assert [(r["score"], r["passed"], r["error"]) for r in scored] == [
        (1.0, True, None),
        (0.0, False, None),
        (0.0, False, "no_boxed_answer"),
    ]
    assert scored[0]["extra"] == "kept" and scored[0]["details"]["extracted"] == r"\frac12"
    assert all(r["seconds"] >= 0 for r in scored)
    summary = capsys.readouterr().out
    assert "records" in summary and "3" in summary and "33.3%" in summary and "no_boxed_answer" in summary
    # Only the final file exists: no temporary left behind.
    assert [p.name for p in target.parent.iterdir()] == ["scored.jsonl"]


def test_strict_fails_only_on_rows_that_were_not_scored(tmp_path) -> None:
    source, target = tmp_path / "preds.jsonl", tmp_path / "scored.jsonl"
    no_verifier = {k: v for k, v in PREDICTIONS[2].items() if k != "verifier"}
    write_jsonl(source, [no_verifier])  # scored 0 for want of a box: an answer problem
    args = ["verify", "--input", str(source), "--output", str(target), "--workers", "2", "--verifier", "math"]
    assert main(args + ["--strict"]) == 0
    assert rows_of(target)[0]["verifier"] == "math"  # --verifier fills in / overrides
    write_jsonl(source, [{**no_verifier, "ground_truth": {"bad": 1}}])  # cannot be scored
    assert main(args) == 0
    assert main(args + ["--strict"]) == 1
    assert rows_of(target)[0]["error"].startswith("bad_record")


def test_bad_input_names_file_line_and_field(tmp_path, capsys) -> None:
    source = tmp_path / "preds.jsonl"
    bad = dict(PREDICTIONS[0])
    del bad["completion"]
    write_jsonl(source, [PREDICTIONS[1], bad])
    assert main(["verify", "--input", str(source), "--output", str(tmp_path / "o.jsonl")]) == 2
    err = capsys.readouterr().err
    assert f"{source}:2" in err and "completion" in err
    assert not (tmp_path / "o.jsonl").exists()


def test_unknown_verifier_flag_and_missing_file(tmp_path, capsys) -> None:
    source = tmp_path / "preds.jsonl"
    write_jsonl(source, PREDICTIONS)
    assert main(["verify", "--input", str(source), "--output", str(tmp_path / "o"), "--verifier", "nope"]) == 2
    assert "unknown verifier 'nope'" in capsys.readouterr().err
    assert main(["verify", "--input", str(tmp_path / "missing.jsonl"), "--output", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err


def test_help_teaches(capsys) -> None:
    try:
        main(["verify", "--help"])
    except SystemExit as exc:
        assert exc.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "ground_truth" in text and "--strict" in text
