"""parse_completion on hand-written completions, each with a hand-worked expectation."""

from __future__ import annotations

import json
import subprocess
import sys

from cascade.chat import ParsedCompletion, final_answer, parse_completion, split_reasoning


def test_thinking_reply():
    parsed = parse_completion("<think>\nadd 1 and 1\n</think>\n\nThe answer is 2.")
    assert parsed == ParsedCompletion("add 1 and 1", "The answer is 2.", [], True, [])


def test_no_think_block():
    assert parse_completion("Just 2.") == ParsedCompletion(None, "Just 2.", [], True, [])


def test_unfinished_think_has_no_answer():
    parsed = parse_completion("<think>\nlet me count: 1, 2, 3")
    assert parsed == ParsedCompletion("let me count: 1, 2, 3", "", [], False, [])


def test_trailing_end_of_turn_is_dropped():
    parsed = parse_completion("<think>\nx\n</think>\n\n4<|im_end|>\n<|im_start|>user\nmore")
    assert (parsed.reasoning, parsed.answer, parsed.finished) == ("x", "4", True)


def test_generation_prompt_may_prefill_the_opener():
    # Some engines put "<think>\n" in the prompt, so the completion starts inside the block.
    parsed = parse_completion("weighing options\n</think>\nDone")
    assert (parsed.reasoning, parsed.answer) == ("weighing options", "Done")


def test_multiple_tool_calls():
    text = (
        "<think>\nneed weather and time\n</think>\n\nLet me check.\n"
        '<tool_call>\n{"name": "weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "clock", "arguments": {}}\n</tool_call><|im_end|>'
    )
    parsed = parse_completion(text)
    assert parsed.reasoning == "need weather and time"
    assert parsed.answer == "Let me check."
    assert parsed.tool_calls == [
        {"name": "weather", "arguments": {"city": "Paris"}},
        {"name": "clock", "arguments": {}},
    ]
    assert parsed.finished and parsed.errors == []


def test_tool_call_without_answer_and_string_arguments():
    text = '<tool_call>\n{"name": "f", "arguments": "{\\"x\\": 1}"}\n</tool_call>'
    parsed = parse_completion(text)
    assert parsed.answer == ""
    assert parsed.tool_calls == [{"name": "f", "arguments": {"x": 1}}]


def test_missing_arguments_mean_no_arguments():
    parsed = parse_completion('<tool_call>{"name": "now"}</tool_call>')
    assert parsed.tool_calls == [{"name": "now", "arguments": {}}]


def test_malformed_tool_json_is_reported_and_skipped():
    text = (
        '<tool_call>\n{"name": "a", "arguments": {"x": 1,}}\n</tool_call>\n'
        '<tool_call>\n{"name": "b", "arguments": {}}\n</tool_call>'
    )
    parsed = parse_completion(text)
    assert parsed.tool_calls == [{"name": "b", "arguments": {}}]
    assert len(parsed.errors) == 1
    assert parsed.errors[0].startswith("tool call 1: invalid JSON")
    assert parsed.finished


def test_tool_call_shapes_that_are_not_calls():
    text = (
        '<tool_call>["a"]</tool_call>\n'
        '<tool_call>{"name": "b", "arguments": [1]}</tool_call>\n'
        '<tool_call>{"name": "c", "arguments": "not json"}</tool_call>'
    )
    parsed = parse_completion(text)
    assert parsed.tool_calls == []
    assert [e.split(":")[0] for e in parsed.errors] == ["tool call 1", "tool call 2", "tool call 3"]
    assert "string 'name'" in parsed.errors[0]
    assert "must be an object" in parsed.errors[1]
    assert "not JSON" in parsed.errors[2]


def test_cut_off_tool_call_is_unfinished():
    parsed = parse_completion('Checking.\n<tool_call>\n{"name": "weather", "argu')
    assert parsed.answer == "Checking."
    assert parsed.tool_calls == []
    assert parsed.finished is False
    assert parsed.errors == ["tool call 1 has no </tool_call> (cut off?)"]


def test_text_after_tool_calls_is_reported():
    parsed = parse_completion('<tool_call>{"name": "f", "arguments": {}}</tool_call>\nand then')
    assert parsed.tool_calls == [{"name": "f", "arguments": {}}]
    assert parsed.errors == ["text after tool call 1 ignored: 'and then'"]


def test_split_reasoning_and_final_answer_keep_their_contract():
    assert split_reasoning("<think>\nr\n</think>\n\na") == ("r", "a", True)
    assert split_reasoning("<think>\nr") == ("r", "", False)
    assert split_reasoning("plain") == (None, "plain", True)
    assert final_answer("<think>\nr\n</think>\nx<|im_end|>junk") == "x"


def test_chat_package_imports_no_torch_or_transformers():
    code = (
        "import sys, cascade.chat, cascade.chat.parse, cascade.chat.template;"
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- edges of the contract (cases written against `make mutation` survivors) --------------

def test_only_the_first_end_of_turn_counts():
    assert split_reasoning("a<|im_end|>b<|im_end|>c") == (None, "a", True)


def test_a_second_opener_inside_the_reasoning_is_reasoning_text():
    assert split_reasoning("<think>a<think>b</think>answer") == ("a<think>b", "answer", True)


def test_only_newlines_are_trimmed_around_reasoning_and_answer():
    # Spaces and other characters at the edges are the model's text and stay.
    assert split_reasoning("<think>\n  indented  \n</think>\n\n  XY") == ("  indented  ", "  XY", True)
    assert split_reasoning("<think>\nX marks\n</think>\nXYZ") == ("X marks", "XYZ", True)
    assert split_reasoning("<think>\n  still thinking  ") == ("  still thinking  ", "", False)
    assert split_reasoning("<think>Xr") == ("Xr", "", False)


def test_an_unfinished_think_after_leading_whitespace():
    assert split_reasoning("  \n<think>unfinished") == ("unfinished", "", False)


def _nested(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_tool_arguments_nest_up_to_64_levels():
    # The limit counts the arguments object as its first level, as an object or as JSON text.
    for arguments in (_nested(64), json.dumps(_nested(64))):
        call = json.dumps({"name": "f", "arguments": arguments})
        parsed = parse_completion(f"<tool_call>\n{call}\n</tool_call>")
        assert parsed.tool_calls == [{"name": "f", "arguments": _nested(64)}] and parsed.errors == []
    for arguments in (_nested(65), json.dumps(_nested(65))):
        call = json.dumps({"name": "f", "arguments": arguments})
        parsed = parse_completion(f"<tool_call>\n{call}\n</tool_call>")
        assert parsed.tool_calls == [] and parsed.errors == ["tool call 1: JSON nested deeper than 64 levels"]


def test_error_previews_show_80_characters():
    exactly = '"' + "a" * 78 + '"'    # 80 characters of JSON that is not a call object
    longer = '"' + "b" * 79 + '"'     # 81
    parsed = parse_completion(f"<tool_call>\n{exactly}\n</tool_call>\n<tool_call>\n{longer}\n</tool_call>")
    assert parsed.errors == [
        "tool call 1: expected an object with a string 'name': '\"" + "a" * 78 + "\"'",
        "tool call 2: expected an object with a string 'name': '\"" + "b" * 79 + "...'",
    ]


def test_bad_tool_lists_name_the_file_and_entry():
    import pytest

    from cascade.chat import check_tools
    from cascade.errors import CascadeError

    cases = [
        ({"name": "f"}, "tools.json: field 'tools': expected a list of tool (function) signatures"),
        ([{"name": "f"}, "g"], "tools.json: field 'tools[1]': a tool signature must be a JSON object"),
        ([{"name": "f", "x": {1, 2}}], "tools.json: field 'tools[0]': not JSON-serialisable: "
                                       "Object of type set is not JSON serializable"),
    ]
    for tools, error in cases:
        with pytest.raises(CascadeError) as info:
            check_tools(tools, file="tools.json")
        assert str(info.value) == error


def test_bad_assistant_messages_name_the_field():
    import pytest

    from cascade.chat import check_messages
    from cascade.errors import CascadeError

    user = {"role": "user", "content": "hi"}
    call = {"name": "f", "arguments": {}}
    check_messages([user, {"role": "assistant", "content": None, "tool_calls": [call]}])  # content may be absent
    cases = [
        ({"role": "assistant", "content": 5}, "field 'messages[1].content': an assistant message needs string content"),
        ({"role": "assistant", "content": "a", "reasoning_content": 5},
         "field 'messages[1].reasoning_content': reasoning must be a string"),
        ({"role": "assistant", "content": "a", "thinking": ["x"]},
         "field 'messages[1].thinking': reasoning must be a string"),
        ({"role": "assistant", "content": "a", "reasoning": 1.5}, "field 'messages[1].reasoning': reasoning must be a string"),
        ({"role": "assistant"}, "field 'messages[1].content': an assistant message needs content or tool_calls"),
        ({"role": "assistant", "content": "a", "tool_calls": call}, "field 'messages[1].tool_calls': tool_calls must be a list"),
        ({"role": "assistant", "content": "a", "tool_calls": ["f"]},
         "field 'messages[1].tool_calls[0]': a tool call must be an object"),
        ({"role": "assistant", "content": "a", "tool_calls": [call, {"function": {"arguments": {}}}]},
         "field 'messages[1].tool_calls[1].function.name': a tool call needs a string 'name'"),
        ({"role": "assistant", "content": "a", "tool_calls": [{"name": "f", "arguments": [1]}]},
         "field 'messages[1].tool_calls[0].arguments': arguments must be an object or a JSON string"),
        ({"role": "assistant", "content": "a", "tool_calls": [{"name": "f", "arguments": "[1]"}]},
         "field 'messages[1].tool_calls[0].arguments': arguments is a string but not a JSON object"),
    ]
    for message, error in cases:
        with pytest.raises(CascadeError) as info:
            check_messages([user, message])
        assert str(info.value) == error
