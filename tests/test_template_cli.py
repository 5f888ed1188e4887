"""`cascade template render|show`, through the real CLI entry point."""

from __future__ import annotations

import json

import pytest
from test_chat_golden import GOLDEN, MULTI_TURN, SINGLE_TURN

from cascade.chat import chat_template, render, render_training
from cascade.cli import main


def _run(capsysbinary, *argv: str) -> tuple[int, bytes, str]:
    code = main(list(argv))
    captured = capsysbinary.readouterr()
    return code, captured.out, captured.err.decode("utf-8")


def _write(tmp_path, name: str, data) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


def test_render_prints_the_prompt_byte_for_byte(tmp_path, capsysbinary):
    path = _write(tmp_path, "chat.json", MULTI_TURN)
    assert _run(capsysbinary, "template", "render", "--messages", path) == (
        0,
        GOLDEN[("multi", True)].encode("utf-8"),
        "",
    )
    code, out, _ = _run(capsysbinary, "template", "render", "--messages", path, "--no-think")
    assert (code, out) == (0, GOLDEN[("multi", False)].encode("utf-8"))


def test_render_reads_one_jsonl_conversation_with_its_tools(tmp_path, capsysbinary):
    tools = [{"type": "function", "function": {"name": "add", "parameters": {}}}]
    record = {"messages": SINGLE_TURN, "tools": tools}
    path = _write(tmp_path, "chat.jsonl", "\n" + json.dumps(record) + "\n")
    code, out, _ = _run(capsysbinary, "template", "render", "--messages", path)
    assert code == 0
    assert out.decode("utf-8") == render(SINGLE_TURN, tools=tools)
    assert (
        '<tools>\n{"type": "function", "function": {"name": "add", "parameters": {}}}\n</tools>'
        in out.decode()
    )


def test_tools_file_and_no_generation_prompt(tmp_path, capsysbinary):
    tools = [{"name": "clock"}]
    messages = _write(tmp_path, "chat.json", {"messages": SINGLE_TURN})
    tools_file = _write(tmp_path, "tools.json", {"tools": tools})
    code, out, _ = _run(
        capsysbinary,
        "template",
        "render",
        "--messages",
        messages,
        "--tools",
        tools_file,
        "--no-generation-prompt",
    )
    assert code == 0
    assert out.decode() == render(SINGLE_TURN, tools=tools, add_generation_prompt=False)
    assert out.decode().endswith("/think<|im_end|>\n")


def test_render_training(tmp_path, capsysbinary):
    messages = SINGLE_TURN + [{"role": "assistant", "content": "<think>\n1 plus 1\n</think>\n\n2"}]
    path = _write(tmp_path, "sft.json", messages)
    code, out, _ = _run(capsysbinary, "template", "render", "--messages", path, "--training")
    assert code == 0
    assert out.decode() == render_training(messages, enable_thinking=True)[0]
    assert out.decode().endswith(
        "<|im_start|>assistant\n<think>\n1 plus 1\n</think>\n\n2<|im_end|>\n"
    )
    code, out, _ = _run(
        capsysbinary, "template", "render", "--messages", path, "--training", "--no-think"
    )
    # Instruct mode: the flag changes and the think block is not part of the target.
    assert out.decode().endswith("1+1? /no_think<|im_end|>\n<|im_start|>assistant\n2<|im_end|>\n")


@pytest.mark.parametrize(
    ("name", "content", "expected_error"),
    [
        (
            "bad_role.json",
            [{"role": "user", "content": "hi"}, {"role": "bot", "content": "x"}],
            "bad_role.json: field 'messages[1].role': unknown role 'bot'",
        ),
        (
            "no_content.json",
            {"messages": [{"role": "user"}]},
            "no_content.json: field 'messages[0].content': a user message needs string content",
        ),
        (
            "late_system.json",
            [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}],
            "late_system.json: field 'messages[1].role': only the first message may be a system",
        ),
        (
            "bad_call.json",
            [
                {"role": "user", "content": "a"},
                {"role": "assistant", "tool_calls": [{"function": {"arguments": {}}}]},
            ],
            "bad_call.json: field 'messages[1].tool_calls[0].function.name': a tool call needs",
        ),
        ("empty.json", [], "empty.json: field 'messages': expected a non-empty list"),
        ("object.json", {"chat": []}, "object.json: field 'messages': expected a list of messages"),
        ("broken.json", '[{"role": "user",\n "content": }]', "broken.json:2: not valid JSON"),
        (
            "two.jsonl",
            json.dumps(SINGLE_TURN) + "\n" + json.dumps(SINGLE_TURN) + "\n",
            "two.jsonl:2: holds 2 conversations",
        ),
    ],
)
def test_bad_files_name_the_file_and_field(tmp_path, capsysbinary, name, content, expected_error):
    path = _write(tmp_path, name, content)
    code, out, err = _run(capsysbinary, "template", "render", "--messages", path)
    assert code == 2 and out == b""
    assert err.startswith("error: " + str(tmp_path / expected_error.split(":")[0]))
    assert expected_error.split(":", 1)[1] in err
    assert len(err.strip().splitlines()) == 1


def test_training_needs_a_final_assistant_reply(tmp_path, capsysbinary):
    path = _write(tmp_path, "prompt.json", SINGLE_TURN)
    code, _, err = _run(capsysbinary, "template", "render", "--messages", path, "--training")
    assert code == 2
    assert "field 'messages[0].role'" in err and "ends with the assistant reply" in err


def test_bad_tools_file(tmp_path, capsysbinary):
    messages = _write(tmp_path, "chat.json", SINGLE_TURN)
    tools = _write(tmp_path, "tools.json", {"tools": ["clock"]})
    code, _, err = _run(
        capsysbinary, "template", "render", "--messages", messages, "--tools", tools
    )
    assert code == 2
    assert f"{tools}: field 'tools[0]': a tool signature must be a JSON object" in err


def test_missing_file(tmp_path, capsysbinary):
    code, _, err = _run(
        capsysbinary, "template", "render", "--messages", str(tmp_path / "nope.json")
    )
    assert (code, err.strip()) == (2, f"error: {tmp_path / 'nope.json'}: file not found")


def test_show_prints_the_template_sources(capsysbinary):
    assert _run(capsysbinary, "template", "show") == (0, chat_template().encode("utf-8"), "")
    code, out, _ = _run(capsysbinary, "template", "show", "--training")
    assert out.decode("utf-8") == chat_template(training=True)
    assert "{%- generation %}" in out.decode("utf-8")


def test_help_teaches_with_examples(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["template", "render", "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert "cascade template render --messages chat.json --no-think" in help_text
    assert "--training" in help_text and "byte for byte" in help_text
