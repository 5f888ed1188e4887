"""`cascade init-model` end to end, through the real CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("cascade.chat.template")

from cascade.cli import main  # noqa: E402


def test_init_model_writes_a_loadable_model_and_prints_one_line(tmp_path: Path, capsys):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    out = tmp_path / "models" / "tiny"
    assert main(["init-model", "--size", "tiny", "--out", str(out), "--layers", "1",
                 "--seed", "3"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1
    # tiny defaults with one layer: 1024*128 embeddings + one 147,776-parameter block + norm.
    assert "278,976 parameters" in lines[0]
    assert "1 layers" in lines[0] and lines[0].endswith(str(out))
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.num_hidden_layers == 1
    assert sum(p.numel() for p in model.parameters()) == 278_976
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                           add_generation_prompt=True, enable_thinking=False)
    assert prompt.endswith("hi /no_think<|im_end|>\n<|im_start|>assistant\n")


def test_bad_dimension_is_one_line_error(tmp_path: Path, capsys):
    out = tmp_path / "m"
    assert main(["init-model", "--out", str(out), "--hidden-size", "7", "--heads", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("error: field '--hidden-size': hidden_size 7 is not divisible by heads 4")
    assert "Traceback" not in err
    assert not out.exists()


def test_non_empty_out_needs_force(tmp_path: Path, capsys):
    out = tmp_path / "m"
    out.mkdir()
    (out / "old.txt").write_text("old")
    assert main(["init-model", "--out", str(out), "--layers", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {out}: directory is not empty; pass --force (force=True) to replace it"
    assert main(["init-model", "--out", str(out), "--layers", "1", "--force"]) == 0
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 1
    assert not (out / "old.txt").exists()


def test_help_teaches_sizes_and_examples(capsys):
    with pytest.raises(SystemExit) as info:
        main(["init-model", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "cascade init-model --size tiny --out models/tiny" in text
    assert "722,304" in text and "5,246,592" in text
    assert "--hidden-size" in text


def test_command_module_imports_without_torch():
    code = ("import sys, cascade.commands.init_model; "
            "print(sorted(m for m in ('torch', 'transformers', 'tokenizers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
