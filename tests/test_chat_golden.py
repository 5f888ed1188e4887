"""The model card's four example prompts, byte for byte, through `render` and through a real
Hugging Face tokenizer's apply_chat_template with the shipped template attached.

The golden strings are written out below so the test runs anywhere; when ../shared/seed is
present, they are also read from the card itself and must agree.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from cascade.chat import SPECIAL_TOKENS, chat_template, render

SEED_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "seed"

SUMMARY = (
    "To calculate \\(1 + 1\\):\n\n1. **Identify the operation**: This is a basic addition problem "
    "involving two integers.\n2. **Perform the addition**: \n \\(1 + 1 = 2\\).\n\n"
    "**Result**: \\(\\boxed{2}\\)"
)
# The card writes the earlier reply's reasoning as the placeholder THINKING_CONTENT; a real
# reply holds a think block there, which the template must drop.
THINK_BLOCK = "<think>\nThe user asks for 1+1. That is 2.\n</think>"

SINGLE_TURN = [{"role": "user", "content": "calculate 1+1?"}]
MULTI_TURN = [
    {"role": "user", "content": "calculate 1+1?"},
    {"role": "assistant", "content": THINK_BLOCK + "\n" + SUMMARY},
    {"role": "user", "content": "what about 2+2"},
]

SYSTEM = "<|im_start|>system\nYou are a helpful and harmless assistant.<|im_end|>\n"
GOLDEN = {
    ("single", True): SYSTEM
    + "<|im_start|>user\ncalculate 1+1? /think<|im_end|>\n<|im_start|>assistant\n",
    ("single", False): SYSTEM
    + "<|im_start|>user\ncalculate 1+1? /no_think<|im_end|>\n<|im_start|>assistant\n",
    ("multi", True): SYSTEM
    + "<|im_start|>user\ncalculate 1+1? /no_think<|im_end|>\n<|im_start|>assistant\n"
    + SUMMARY
    + "<|im_end|>\n<|im_start|>user\nwhat about 2+2 /think<|im_end|>\n<|im_start|>assistant\n",
    ("multi", False): SYSTEM
    + "<|im_start|>user\ncalculate 1+1? /no_think<|im_end|>\n<|im_start|>assistant\n"
    + SUMMARY
    + "<|im_end|>\n<|im_start|>user\nwhat about 2+2 /no_think<|im_end|>\n<|im_start|>assistant\n",
}
# Qwen3's published chat template (the tokenizer_config.json of the Qwen3 models), word for
# word: the tools block of the system turn, around the signatures written one JSON per line.
QWEN3_TOOLS_INTRO = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
)
QWEN3_TOOLS_OUTRO = (
    "\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)
CONVERSATIONS = {"single": SINGLE_TURN, "multi": MULTI_TURN}
CASES = sorted(GOLDEN)


def tiny_hf_tokenizer(template: str):
    """A real transformers fast tokenizer: byte-level, no merges, the format's special tokens.

    One token per byte keeps every character boundary a token boundary, so the assistant mask
    can be compared with character spans exactly.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    backend = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(SPECIAL_TOKENS)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend)
    tokenizer.chat_template = template
    return tokenizer


@pytest.fixture(scope="module")
def hf_tokenizer():
    return tiny_hf_tokenizer(chat_template())


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{n}-{'think' if t else 'instruct'}" for n, t in CASES]
)
def test_render_matches_card(case):
    name, thinking = case
    assert render(CONVERSATIONS[name], enable_thinking=thinking) == GOLDEN[case]


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{n}-{'think' if t else 'instruct'}" for n, t in CASES]
)
def test_hf_apply_chat_template_matches_card(hf_tokenizer, case):
    name, thinking = case
    text = hf_tokenizer.apply_chat_template(
        CONVERSATIONS[name], tokenize=False, add_generation_prompt=True, enable_thinking=thinking
    )
    assert text == GOLDEN[case]


def test_hf_default_mode_is_thinking(hf_tokenizer):
    text = hf_tokenizer.apply_chat_template(SINGLE_TURN, tokenize=False, add_generation_prompt=True)
    assert text == GOLDEN[("single", True)]
    assert render(SINGLE_TURN) == GOLDEN[("single", True)]


def _card_text() -> str:
    cards = sorted(SEED_DIR.glob("000_*.txt"))
    if not cards:
        pytest.skip(f"the model card is not at {SEED_DIR} (shared/ absent); literal copies used")
    return cards[0].read_text(encoding="utf-8")


def _card_prompts() -> list[str]:
    """The card's expected prompts: single think, single instruct, multi think, multi instruct."""
    literals = re.findall(r"# prompt_(?:thinking|instruct) = ('(?:[^'\\]|\\.)*')", _card_text())
    assert len(literals) == 4, literals
    # The one normalisation: the card page Markdown-escapes braces, so its expected strings
    # read \boxed\{2\} where the message (and so the template's output) has \boxed{2}. The
    # escapes are undone in the source literal, before it is evaluated.
    return [ast.literal_eval(lit.replace("\\{", "{").replace("\\}", "}")) for lit in literals]


def _card_conversations() -> list[list[dict]]:
    lists = re.findall(r"messages = (\[.*?\]) # thinking mode", _card_text())
    assert len(lists) == 2, lists
    return [ast.literal_eval(found) for found in lists]


def test_literal_golden_strings_match_the_card():
    assert _card_prompts() == [GOLDEN[(n, t)] for n in ("single", "multi") for t in (True, False)]


def test_card_conversations_render_to_card_prompts(hf_tokenizer):
    single, multi = _card_conversations()
    assert single == SINGLE_TURN
    assert multi[1]["content"].startswith("THINKING_CONTENT\n")
    multi[1]["content"] = multi[1]["content"].replace("THINKING_CONTENT", THINK_BLOCK, 1)
    assert multi == MULTI_TURN
    expected = iter(_card_prompts())
    for conversation in (single, multi):
        for thinking in (True, False):
            want = next(expected)
            assert render(conversation, enable_thinking=thinking) == want
            assert (
                hf_tokenizer.apply_chat_template(
                    conversation,
                    tokenize=False,
                    add_generation_prompt=True,
                    enable_thinking=thinking,
                )
                == want
            )


def test_templates_reject_what_they_cannot_render(hf_tokenizer):
    from jinja2.exceptions import TemplateError

    with pytest.raises(TemplateError, match=r'messages\[1\]\.role: unknown role "bot"'):
        hf_tokenizer.apply_chat_template(
            SINGLE_TURN + [{"role": "bot", "content": "x"}], tokenize=False
        )
    with pytest.raises(TemplateError, match=r"messages\[1\]\.role: only the first message"):
        hf_tokenizer.apply_chat_template(
            SINGLE_TURN + [{"role": "system", "content": "x"}], tokenize=False
        )
    training = tiny_hf_tokenizer(chat_template(training=True))
    with pytest.raises(TemplateError, match="ends with the assistant reply"):
        training.apply_chat_template(SINGLE_TURN, tokenize=False)


def test_written_flag_gives_way_to_enable_thinking():
    # Decision (template.py docstring): a flag the user wrote as the last word is replaced by
    # the flag of enable_thinking, never doubled.
    said_no_think = [{"role": "user", "content": "calculate 1+1? /no_think"}]
    assert render(said_no_think) == GOLDEN[("single", True)]
    said_think = [{"role": "user", "content": "calculate 1+1?\n/think  "}]
    assert render(said_think, enable_thinking=False) == GOLDEN[("single", False)]


def test_tool_conversation_by_hand():
    tools = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "1+1 and 2+2?"},
        {
            "role": "assistant",
            "content": "<think>\nuse the tool twice\n</think>\nChecking.",
            "tool_calls": [
                {"type": "function", "function": {"name": "add", "arguments": {"a": 1, "b": 1}}},
                {"type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 2}'}},
            ],
        },
        {"role": "tool", "content": "2"},
        {"role": "tool", "content": "4"},
    ]
    expected = (
        "<|im_start|>system\nBe brief.\n\n"
        + QWEN3_TOOLS_INTRO
        + '{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}'
        + QWEN3_TOOLS_OUTRO
        + "<|im_end|>\n"
        "<|im_start|>user\n1+1 and 2+2? /think<|im_end|>\n"
        "<|im_start|>assistant\n<think>\nuse the tool twice\n</think>\n\nChecking.\n"
        '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 1}}\n</tool_call>\n'
        '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 2}}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n<tool_response>\n2\n</tool_response>\n"
        "<tool_response>\n4\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert render(messages, tools=tools) == expected
    # In instruct mode the turn in progress loses its think block; the rest is unchanged.
    instruct = expected.replace(" /think", " /no_think").replace(
        "<think>\nuse the tool twice\n</think>\n\n", ""
    )
    assert render(messages, tools=tools, enable_thinking=False) == instruct


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
TOOL_CONVERSATION = [
    {"role": "user", "content": "Is it raining in Paris?"},
    {
        "role": "assistant",
        "content": "",
        "reasoning_content": "I should look the weather up.",
        "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
        ],
    },
    {"role": "tool", "content": '{"rain": true}'},
    {
        "role": "assistant",
        "content": "<think>\nThe tool says rain.\n</think>\n\nYes, it is raining in Paris.",
    },
]
TOOL_SIGNATURE = (
    '{"type": "function", "function": {"name": "get_weather", "description": "Current weather in '
    'a city.", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}'
)
# No system message: the card's default system prompt, then Qwen3's tools block after a blank
# line, as Qwen3 writes it after a given system prompt.
TOOL_GOLDEN = {
    True: "<|im_start|>system\nYou are a helpful and harmless assistant.\n\n"
    + QWEN3_TOOLS_INTRO
    + TOOL_SIGNATURE
    + QWEN3_TOOLS_OUTRO
    + "<|im_end|>\n"
    "<|im_start|>user\nIs it raining in Paris? /think<|im_end|>\n"
    "<|im_start|>assistant\n<think>\nI should look the weather up.\n</think>\n\n"
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n'
    '<|im_start|>user\n<tool_response>\n{"rain": true}\n</tool_response><|im_end|>\n'
    "<|im_start|>assistant\n<think>\nThe tool says rain.\n</think>\n\n"
    "Yes, it is raining in Paris.<|im_end|>\n",
    False: "<|im_start|>system\nYou are a helpful and harmless assistant.\n\n"
    + QWEN3_TOOLS_INTRO
    + TOOL_SIGNATURE
    + QWEN3_TOOLS_OUTRO
    + "<|im_end|>\n"
    "<|im_start|>user\nIs it raining in Paris? /no_think<|im_end|>\n"
    "<|im_start|>assistant\n"
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n'
    '<|im_start|>user\n<tool_response>\n{"rain": true}\n</tool_response><|im_end|>\n'
    "<|im_start|>assistant\nYes, it is raining in Paris.<|im_end|>\n",
}


@pytest.mark.parametrize("thinking", [True, False], ids=["think", "instruct"])
def test_tool_conversation_golden(hf_tokenizer, thinking):
    """Tools in the system turn, a tool call, a tool response and a final answer."""
    want = TOOL_GOLDEN[thinking]
    kwargs = dict(tools=[WEATHER_TOOL], enable_thinking=thinking)
    assert render(TOOL_CONVERSATION, add_generation_prompt=False, **kwargs) == want
    assert (
        hf_tokenizer.apply_chat_template(
            TOOL_CONVERSATION, tokenize=False, add_generation_prompt=False, **kwargs
        )
        == want
    )
    # The prompt for the last step is the conversation up to the tool response.
    prompt = render(TOOL_CONVERSATION[:-1], **kwargs)
    assert want.startswith(prompt) and prompt.endswith("<|im_start|>assistant\n")


def test_default_system_prompt_rule():
    """The card's examples: no system message gives the default system prompt; a given one
    replaces it (with or without tools), never both."""
    user = [{"role": "user", "content": "hi"}]
    assert render(user).startswith(SYSTEM)
    own = [{"role": "system", "content": "Be brief."}] + user
    assert render(own).startswith("<|im_start|>system\nBe brief.<|im_end|>\n")
    with_tools = render(own, tools=[WEATHER_TOOL])
    assert with_tools.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n")
    assert "helpful and harmless" not in with_tools
