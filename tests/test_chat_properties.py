"""Properties of the chat format, checked on generated conversations.

- the generation prompt for messages[:-1] is a prefix of the training text for messages;
- the training variant renders the same text as the inference template;
- parsing the rendered final reply gives back its reasoning, answer and tool calls;
- appending turns changes earlier turns only by the documented folding;
- every user turn carries exactly one flag, and only the last one follows enable_thinking;
- `render` equals transformers' apply_chat_template, and the assistant mask covers exactly
  the final reply.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_chat_golden import tiny_hf_tokenizer

from cascade.chat import (
    NO_THINK_FLAG,
    THINK_FLAG,
    chat_template,
    parse_completion,
    render,
    render_training,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# No '<' or '>': generated text must not spell a control tag by accident. '/' and braces stay
# in, to exercise flag handling and JSON escaping.
ALPHABET = st.sampled_from(list('abcxyz019 .,?!/\\{}[]":\n\t') + ["é", "中", "🙂"])
text = st.text(ALPHABET, max_size=30)


def _last_word_is_flag(value: str) -> bool:
    words = value.split()
    return bool(words) and words[-1] in ("/think", "/no_think")


plain_text = text.filter(lambda t: not _last_word_is_flag(t))
user_flag = st.sampled_from(["", " /think", " /no_think", "\n/think", " /no_think \n"])
users = st.builds(lambda t, f: {"role": "user", "content": t + f}, plain_text, user_flag)
# Reasoning and answer in the canonical form the renderer writes (no line breaks at the seams),
# so that what is parsed back can be compared with what went in.
reasoning = text.map(lambda t: t.strip("\n"))
answer = text.map(lambda t: t.lstrip("\n"))
arguments = st.dictionaries(
    st.text("abcxyz_", min_size=1, max_size=5),
    st.one_of(st.integers(-5, 5), st.booleans(), text, st.lists(st.integers(0, 3), max_size=2)),
    max_size=3,
)
tool_calls = st.lists(
    st.builds(
        lambda name, args, nested: {
            "type": "function",
            "function": {"name": name, "arguments": args},
        }
        if nested
        else {"name": name, "arguments": args},
        st.text("abcdefg_", min_size=1, max_size=6),
        arguments,
        st.booleans(),
    ),
    max_size=2,
)


@st.composite
def assistants(draw, with_tool_calls: bool = True) -> dict:
    """An assistant message with reasoning given inline, as a field, or not at all."""
    thought = draw(st.none() | reasoning)
    reply = draw(answer)
    calls = draw(tool_calls) if with_tool_calls else []
    message: dict = {"role": "assistant"}
    style = draw(st.sampled_from(["inline", "field"]))
    if thought is not None and style == "inline":
        message["content"] = f"<think>\n{thought}\n</think>\n{reply}"
    else:
        message["content"] = reply
        if thought is not None:
            message["reasoning_content"] = thought
    if calls:
        message["tool_calls"] = calls
    return message


@st.composite
def exchanges(draw) -> list[dict]:
    """A user turn and its reply; tool-call steps are answered by tool messages."""
    messages = [draw(users)]
    for _ in range(draw(st.integers(1, 2))):
        reply = draw(assistants())
        messages.append(reply)
        if reply.get("tool_calls"):
            for _ in reply["tool_calls"]:
                messages.append({"role": "tool", "content": draw(text | arguments)})
    return messages


@st.composite
def conversations(draw) -> list[dict]:
    """A conversation that ends with an assistant reply (a training example)."""
    messages: list[dict] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(text)})
    for _ in range(draw(st.integers(1, 3))):
        messages.extend(draw(exchanges()))
    if messages[-1]["role"] != "assistant":
        messages.append(draw(assistants()))
    return messages


tool_lists = st.none() | st.lists(
    st.builds(lambda n: {"type": "function", "function": {"name": n, "parameters": {}}}, text),
    max_size=2,
)


@SETTINGS
@given(conversations(), st.booleans(), tool_lists)
def test_generation_prompt_is_prefix_of_training_text(messages, thinking, tools):
    prompt = render(messages[:-1], enable_thinking=thinking, tools=tools)
    full, spans = render_training(messages, enable_thinking=thinking, tools=tools)
    assert full.startswith(prompt)
    # ... and the trained span starts exactly where the model starts to write.
    assert spans == [(len(prompt), len(full) - 1)]
    assert full.endswith("<|im_end|>\n")


@SETTINGS
@given(conversations(), st.booleans(), tool_lists)
def test_training_variant_renders_the_same_text(messages, thinking, tools):
    inference = render(messages, enable_thinking=thinking, add_generation_prompt=False, tools=tools)
    assert render_training(messages, enable_thinking=thinking, tools=tools)[0] == inference


@SETTINGS
@given(conversations(), st.booleans())
def test_parse_round_trips_the_final_reply(messages, thinking):
    full, [(start, end)] = render_training(messages, enable_thinking=thinking)
    final = messages[-1]
    thought, reply = final.get("reasoning_content"), final["content"]
    if "</think>" in reply:
        thought, reply = reply.split("</think>\n", 1)
        thought = thought.removeprefix("<think>\n").removesuffix("\n")
    expected_calls = [
        {"name": f["name"], "arguments": f["arguments"]}
        for f in (c.get("function", c) for c in final.get("tool_calls", []))
    ]
    for segment in (full[start:end], full[start:]):  # with and without the trailing "\n"
        parsed = parse_completion(segment)
        assert parsed.reasoning == (thought if thinking else None)
        assert parsed.answer == reply
        assert parsed.tool_calls == expected_calls
        assert parsed.finished and parsed.errors == []


@SETTINGS
@given(conversations(), exchanges(), st.booleans(), st.booleans())
def test_appending_turns_only_folds_earlier_ones(messages, more, thinking, generation_prompt):
    # Folding turns every earlier reply into its instruct form and every earlier flag into
    # /no_think, which is exactly the earlier conversation rendered in instruct mode.
    folded = render(messages, enable_thinking=False, add_generation_prompt=False)
    longer = render(
        messages + more, enable_thinking=thinking, add_generation_prompt=generation_prompt
    )
    assert longer.startswith(folded)
    # Folding never leaves a think block behind from the earlier turns.
    assert "<think>" not in folded


USER_TURN = re.compile(r"<\|im_start\|>user\n(?!<tool_response>)(.*?)<\|im_end\|>", re.S)


@SETTINGS
@given(conversations(), st.booleans())
def test_every_user_turn_has_exactly_one_flag(messages, thinking):
    text = render(messages, enable_thinking=thinking)
    turns = USER_TURN.findall(text)
    assert len(turns) == sum(m["role"] == "user" for m in messages)
    for index, turn in enumerate(turns):
        want = (
            (THINK_FLAG if thinking else NO_THINK_FLAG)
            if index == len(turns) - 1
            else NO_THINK_FLAG
        )
        assert turn.endswith(want)
        assert not _last_word_is_flag(turn[: -len(want)])


@pytest.fixture(scope="module")
def hf_tokenizers():
    return {training: tiny_hf_tokenizer(chat_template(training)) for training in (False, True)}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(conversations(), st.booleans(), tool_lists, st.booleans())
def test_render_equals_transformers(hf_tokenizers, messages, thinking, tools, generation_prompt):
    hf_text = hf_tokenizers[False].apply_chat_template(
        messages,
        tools=tools,
        tokenize=False,
        add_generation_prompt=generation_prompt,
        enable_thinking=thinking,
    )
    ours = render(
        messages, enable_thinking=thinking, add_generation_prompt=generation_prompt, tools=tools
    )
    assert hf_text == ours


def _masked(tokenizer, messages, **kwargs) -> tuple[list[int], list[int], list[int]]:
    """(input ids, assistant mask, the masked ids) from apply_chat_template."""
    encoded = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True, **kwargs
    )
    ids, mask = encoded["input_ids"], encoded["assistant_masks"]
    return ids, mask, [token for token, keep in zip(ids, mask, strict=True) if keep]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(conversations(), st.booleans(), tool_lists)
def test_assistant_mask_covers_exactly_the_final_reply(hf_tokenizers, messages, thinking, tools):
    tokenizer = hf_tokenizers[True]
    ids, mask, trained = _masked(tokenizer, messages, tools=tools, enable_thinking=thinking)
    full, [(start, end)] = render_training(messages, enable_thinking=thinking, tools=tools)
    assert tokenizer.decode(ids) == full
    assert tokenizer.decode(trained) == full[start:end]
    # The mask is one contiguous run: nothing before the final reply is trained.
    first = mask.index(1)
    assert mask[first : first + len(trained)] == [1] * len(trained)
    assert tokenizer.decode(ids[:first]) == full[:start]


def test_assistant_mask_of_a_two_turn_conversation(hf_tokenizers):
    messages = [
        {"role": "user", "content": "calculate 1+1?"},
        {"role": "assistant", "content": "<think>\nadd them\n</think>\n1+1 = 2"},
        {"role": "user", "content": "what about 2+2"},
        {"role": "assistant", "content": "<think>\n2+2 is 4\n</think>\n\n4"},
    ]
    tokenizer = hf_tokenizers[True]
    _, _, trained = _masked(tokenizer, messages)
    assert tokenizer.decode(trained) == "<think>\n2+2 is 4\n</think>\n\n4<|im_end|>"
    _, _, trained = _masked(tokenizer, messages, enable_thinking=False)
    assert tokenizer.decode(trained) == "4<|im_end|>"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(conversations(), st.booleans(), tool_lists)
def test_every_turn_mask_covers_each_assistant_reply(hf_tokenizers, messages, thinking, tools):
    tokenizer = hf_tokenizers[True]
    encoded = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True,
        tools=tools, enable_thinking=thinking, train_every_turn=True,
    )
    ids, mask = encoded["input_ids"], encoded["assistant_masks"]
    full, spans = render_training(messages, enable_thinking=thinking, tools=tools, every_turn=True)
    assert tokenizer.decode(ids) == full
    assert len(spans) == sum(m["role"] == "assistant" for m in messages)
    runs, current = [], []
    for token, keep in zip(ids, mask, strict=True):
        if keep:
            current.append(token)
        elif current:
            runs, current = runs + [current], []
    runs += [current] if current else []
    assert [tokenizer.decode(run) for run in runs] == [full[s:e] for s, e in spans]
    # Every span is one assistant turn: it follows the assistant header and ends its turn.
    for start, end in spans:
        assert full[:start].endswith("<|im_start|>assistant\n") and full[:end].endswith("<|im_end|>")
