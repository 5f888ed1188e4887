"""Every error ``check_messages`` raises, pinned exactly: message, field, file and line.

A bad conversation in a data file must be reported as ``file:line: field '...': message``
before any training starts, so each rule is checked with the text and field a user sees."""

from __future__ import annotations

import pytest

from cascade.chat import check_messages
from cascade.errors import CascadeError

USER = {"role": "user", "content": "hi"}
REPLY = {"role": "assistant", "content": "hello"}

CASES = [
    ("a string", "hi", "messages", "expected a non-empty list of messages"),
    ("bytes", b"hi", "messages", "expected a non-empty list of messages"),
    ("not a sequence", {"role": "user"}, "messages", "expected a non-empty list of messages"),
    ("empty", [], "messages", "expected a non-empty list of messages"),
    ("not an object", [USER, "hello"], "messages[1]", "a message must be an object with 'role' and 'content'"),
    ("unknown role", [USER, {"role": "bot", "content": "x"}], "messages[1].role",
     "unknown role 'bot'; expected one of system, user, assistant, tool"),
    ("no role", [{"content": "x"}], "messages[0].role",
     "unknown role None; expected one of system, user, assistant, tool"),
    ("late system", [USER, {"role": "system", "content": "x"}], "messages[1].role",
     "only the first message may be a system message"),
    ("system without text", [{"role": "system", "content": None}], "messages[0].content",
     "a system message needs string content"),
    ("user without text", [USER, REPLY, {"role": "user", "content": ["x"]}], "messages[2].content",
     "a user message needs string content"),
    ("tool without result", [USER, {"role": "tool"}], "messages[1].content",
     "a tool message needs content (the tool's result)"),
    ("assistant content not text", [USER, {"role": "assistant", "content": 3}], "messages[1].content",
     "an assistant message needs string content"),
    ("reasoning not text", [USER, {"role": "assistant", "content": "a", "reasoning_content": 1}],
     "messages[1].reasoning_content", "reasoning must be a string"),
    ("empty assistant", [USER, {"role": "assistant"}], "messages[1].content",
     "an assistant message needs content or tool_calls"),
    ("tool_calls not a list", [USER, {"role": "assistant", "tool_calls": {}}], "messages[1].tool_calls",
     "tool_calls must be a list"),
    ("call not an object", [USER, {"role": "assistant", "tool_calls": ["f"]}], "messages[1].tool_calls[0]",
     "a tool call must be an object"),
    ("nested call without name", [USER, {"role": "assistant", "tool_calls": [{"function": {"arguments": {}}}]}],
     "messages[1].tool_calls[0].function.name", "a tool call needs a string 'name'"),
    ("flat call without name", [USER, {"role": "assistant", "tool_calls": [{"name": 3}]}],
     "messages[1].tool_calls[0].name", "a tool call needs a string 'name'"),
    ("arguments a list", [USER, {"role": "assistant", "tool_calls": [{"name": "f", "arguments": [1]}]}],
     "messages[1].tool_calls[0].arguments", "arguments must be an object or a JSON string"),
    ("arguments not JSON", [USER, {"role": "assistant", "tool_calls": [{"name": "f", "arguments": "[1]"}]}],
     "messages[1].tool_calls[0].arguments", "arguments is a string but not a JSON object"),
]


@pytest.mark.parametrize(("messages", "field", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_rule_names_its_field_file_and_line(messages, field, message):
    with pytest.raises(CascadeError) as caught:
        check_messages(messages, file="data.jsonl", line=7)
    error = caught.value
    assert (error.message, error.field, error.file, error.line) == (message, field, "data.jsonl", 7)


def test_the_training_render_needs_an_assistant_reply_last():
    with pytest.raises(CascadeError) as caught:
        check_messages([USER, REPLY, USER], training=True, file="sft.jsonl", line=2)
    error = caught.value
    assert (error.message, error.field, error.file, error.line) == (
        "the training render needs a conversation that ends with the assistant reply to train on",
        "messages[2].role", "sft.jsonl", 2)
    check_messages([USER, REPLY], training=True)  # ends with the reply: fine
    check_messages([USER, REPLY, USER])  # not for training: a prompt may end with the user


@pytest.mark.parametrize("messages", [
    [{"role": "system", "content": "be brief"}, USER, REPLY],
    [USER, {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f", "arguments": '{"a": 1}'}}]},
     {"role": "tool", "content": ""}, REPLY],
    [USER, {"role": "assistant", "content": "x", "reasoning_content": "why"}],
    # a call may leave out its arguments (rendered as an empty object)
    [USER, {"role": "assistant", "tool_calls": [{"name": "now"}]}, {"role": "tool", "content": "12:00"}, REPLY],
    [USER, {"role": "assistant", "tool_calls": [{"function": {"name": "now"}}]}, {"role": "tool", "content": "1"}, REPLY],
])
def test_well_formed_conversations_pass(messages):
    check_messages(messages, training=True)


def test_rendering_checks_the_conversation_first():
    from cascade.chat import render

    with pytest.raises(CascadeError) as caught:
        render([USER, REPLY, USER], training=True)
    assert (caught.value.message, caught.value.field) == (
        "the training render needs a conversation that ends with the assistant reply to train on",
        "messages[2].role")
    with pytest.raises(CascadeError) as caught:
        render([USER, {"role": "bot", "content": "x"}])
    assert caught.value.field == "messages[1].role"


@pytest.mark.parametrize("alias", ["reasoning", "thinking"])
def test_reasoning_under_an_older_name_renders_as_reasoning_content(alias):
    # transformers' apply_chat_template copies these names into reasoning_content; so does render
    from cascade.chat import render

    def reply(key):
        return [USER, {"role": "assistant", "content": "hello", key: "they greeted me"}]

    text = render(reply(alias), training=True)
    assert "<think>\nthey greeted me\n</think>" in text
    assert text == render(reply("reasoning_content"), training=True)
