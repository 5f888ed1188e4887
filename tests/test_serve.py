"""`cascade serve`: request validation, the lossless reply split, and the HTTP server.

The HTTP tests run the real server code in a thread in front of a scripted engine (fast,
no torch); tests/test_eval_e2e.py runs the real `cascade serve` process on a real model.
"""

from __future__ import annotations

import http.client
import json
import threading
from types import SimpleNamespace
from typing import Any, Iterator

import openai
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from cascade.chat.parse import split_reasoning
from cascade.chat.template import render
from cascade.engine.base import Generation
from cascade.eval.backends.openai_http import merge_reasoning
from cascade.serve.reply import split_reply
from cascade.serve.schema import parse_request
from cascade.serve.server import BadRequest, ChatService, make_server

NO_THINK_TAIL = " /no_think<|im_end|>\n<|im_start|>assistant\n"
THINK_TAIL = " /think<|im_end|>\n<|im_start|>assistant\n"


def as_message(reply_message: dict[str, Any]) -> Any:
    """What the official client hands a caller for this JSON message."""
    return openai.types.chat.ChatCompletionMessage.model_validate(reply_message)


# ---------------------------------------------------------------- split and merge


@pytest.mark.parametrize(("text", "reasoning", "content"), [
    ("<think>\nstep\n</think>\n\nThe answer is 4.", "\nstep\n", "\n\nThe answer is 4."),
    ("<think>still thinking", "still thinking", None),  # budget ran out inside the think block
    ("<think></think>", "", ""),
    ("plain answer", None, "plain answer"),
    ("no opener</think>tail", None, "no opener</think>tail"),  # not a think block: kept as text
    ("", None, ""),
])
def test_split_reply_is_verbatim(text, reasoning, content):
    reply = split_reply(text, tools_offered=False)
    assert (reply.reasoning, reply.content, reply.tool_calls) == (reasoning, content, [])
    assert merge_reasoning(as_message(reply.message())) == text


FRAGMENTS = ["<think>", "</think>", "<tool_call>", "</tool_call>", "\n", " ", "a", "{", '"name": "f"}', "é"]


@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join), st.booleans())
@example('<tool_call>{"name": "f"}</tool_call>', False)
def test_merge_inverts_split_for_any_text(text, tools_offered):
    # Without a well-formed tool call, tools_offered changes nothing: the text round-trips. The
    # fragments can form a well-formed call (`<tool_call>{"name": "f"}</tool_call>`); offered
    # tools then make it a structured call, which the test above covers, so such texts are left out.
    reply = split_reply(text, tools_offered=tools_offered)
    if reply.tool_calls:
        assert tools_offered and "<tool_call>" in text
    assume(not reply.tool_calls)
    assert merge_reasoning(as_message(reply.message())) == text


def test_tool_calls_are_structured_when_offered_and_round_trip():
    text = ('<think>\nlook up\n</think>\n\nChecking.\n<tool_call>\n{"name": "get_weather", "arguments": '
            '{"city": "Zürich", "days": 2}}\n</tool_call>\n'
            '<tool_call>\n{"name": "now", "arguments": {}}\n</tool_call>')
    reply = split_reply(text, tools_offered=True)
    assert reply.content == "\n\nChecking."
    assert [c["function"]["name"] for c in reply.tool_calls] == ["get_weather", "now"]
    assert json.loads(reply.tool_calls[0]["function"]["arguments"]) == {"city": "Zürich", "days": 2}
    assert merge_reasoning(as_message(reply.message())) == text
    # Not offered: the same text stays text.
    assert split_reply(text, tools_offered=False).tool_calls == []


def test_broken_tool_call_stays_text():
    text = 'Sure.\n<tool_call>\n{"name": "f", "arguments": {oops}\n</tool_call>'
    reply = split_reply(text, tools_offered=True)
    assert reply.tool_calls == [] and reply.content == text


def test_merge_of_a_trimming_server_reads_the_same():
    # Some servers strip the reasoning; the text differs in whitespace only, and the parse agrees.
    message = as_message({"role": "assistant", "content": "The answer is 4.", "reasoning_content": "step"})
    original = "<think>\nstep\n</think>\n\nThe answer is 4."
    assert split_reasoning(merge_reasoning(message)) == split_reasoning(original)
    inline = as_message({"role": "assistant", "content": original})  # server did not split at all
    assert merge_reasoning(inline) == original
    vllm_style = as_message({"role": "assistant", "content": "x", "reasoning": "r"})  # newer vLLM field name
    assert merge_reasoning(vllm_style) == "<think>r</think>x"


# ---------------------------------------------------------------- request validation

GOOD = {"messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(("body", "field"), [
    ([1, 2], "body"),
    ({}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
    ({**GOOD, "temperature": "0.5"}, "temperature"),
    ({**GOOD, "temperature": 2.5}, "temperature"),
    ({**GOOD, "temperature": -0.1}, "temperature"),
    ({**GOOD, "top_p": 0}, "top_p"),
    ({**GOOD, "max_tokens": 0}, "max_tokens"),
    ({**GOOD, "max_tokens": True}, "max_tokens"),
    ({**GOOD, "stream": "yes"}, "stream"),
    ({**GOOD, "n": 2}, "n"),
    ({**GOOD, "chat_template_kwargs": {"enable_thinking": "no"}}, "enable_thinking"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}, "last message"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "system", "content": "x"}]}, "messages[1].role"),
    ({**GOOD, "tools": "get_weather"}, "tools"),
])
def test_bad_requests_name_the_field(body, field):
    req, problem = parse_request(body)
    assert req is None and field in problem


def test_good_request_defaults_and_flags():
    req, problem = parse_request({**GOOD, "temperature": 0, "max_tokens": 7})
    assert problem is None and req.temperature == 0.0 and req.thinking() is True and req.budget(512) == 7
    off, _ = parse_request({**GOOD, "chat_template_kwargs": {"enable_thinking": False}})
    assert off.thinking() is False
    parts, _ = parse_request({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                                        {"type": "text", "text": "b"}]}]})
    assert parts.template_messages() == [{"role": "user", "content": "ab"}]


# ---------------------------------------------------------------- the service and the HTTP server


class FakeTokenizer:
    """The cascade template (``render`` is byte-identical to apply_chat_template) and
    one token per character."""

    def apply_chat_template(self, messages, *, tools=None, tokenize=False, add_generation_prompt=True,
                            enable_thinking=True):
        return render(messages, tools=tools, add_generation_prompt=add_generation_prompt,
                      enable_thinking=enable_thinking)

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) for c in text]}


class ScriptedEngine:
    """Answers every prompt with ``reply``; remembers the prompts and sampling it got."""

    def __init__(self, reply: str, context: int = 4096) -> None:
        self.tokenizer = FakeTokenizer()
        self.model = SimpleNamespace(config=SimpleNamespace(max_position_embeddings=context))
        self.reply = reply
        self.prompts: list[str] = []
        self.sampling: list[Any] = []
        self.batches: list[int] = []
        self.fail = False

    def generate_ids(self, prompt_ids, sampling, cancelled=None):
        if self.fail:
            raise RuntimeError("engine fell over")
        self.prompts += ["".join(map(chr, ids)) for ids in prompt_ids]
        self.sampling.append(sampling)
        self.batches.append(len(prompt_ids))
        return [Generation(prompt_ids=list(ids), token_ids=[1] * 5, text=self.reply + "<|im_end|>", logprobs=[0.0] * 5,
                           finish_reason="stop") for ids in prompt_ids]


REPLY = "<think>\nadd them\n</think>\n\nThe answer is 4."


def test_service_renders_the_thinking_flag_and_checks_the_budget():
    engine = ScriptedEngine(REPLY, context=200)
    service = ChatService(engine, "m", default_max_tokens=64)
    off, _ = parse_request({**GOOD, "chat_template_kwargs": {"enable_thinking": False}, "temperature": 0})
    on, _ = parse_request(GOOD)
    try:
        out = service.complete(off)
        service.complete(on)
        room = 200 - len(engine.prompts[1])
        too_long, _ = parse_request({**GOOD, "max_tokens": room + 1})
        with pytest.raises(BadRequest, match="max_tokens"):
            service.complete(too_long)
    finally:
        service.close()
    assert engine.prompts[0].endswith("hi" + NO_THINK_TAIL)
    assert engine.prompts[1].endswith("hi" + THINK_TAIL)
    assert engine.sampling[0].temperature == 0.0 and engine.sampling[0].max_new_tokens == 64
    message = out["choices"][0]["message"]
    assert message["reasoning_content"] == "\nadd them\n" and message["content"] == "\n\nThe answer is 4."
    assert out["usage"]["prompt_tokens"] == len(engine.prompts[0]) and out["usage"]["completion_tokens"] == 5
    # The default budget shrinks to what the context has left; an explicit one that does not fit
    # is refused (above) without reaching the engine.
    assert engine.sampling[1].max_new_tokens == min(64, room) and len(engine.sampling) == 2


def test_requests_in_flight_together_share_a_batch_per_sampling_setting():
    engine = ScriptedEngine(REPLY)
    # A wide window and a batch of exactly the requests sent make the grouping deterministic.
    service = ChatService(engine, "m", max_batch=4, batch_window_s=5.0)
    requests = [parse_request({**GOOD, "seed": seed, "temperature": 0.5})[0] for seed in (1, 2, 1, 2)]
    results: list[Any] = [None] * 4
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, service.complete(requests[i])))
               for i in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    finally:
        service.close()
    assert sorted(engine.batches) == [2, 2]  # one decode call per seed, two requests each
    assert sorted(s.seed for s in engine.sampling) == [1, 2]
    assert all(r["choices"][0]["message"]["content"] == "\n\nThe answer is 4." for r in results)


@pytest.fixture
def server() -> Iterator[tuple[str, ScriptedEngine]]:
    engine = ScriptedEngine(REPLY)
    service = ChatService(engine, "tiny")
    httpd = make_server(service, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}", engine
    finally:
        httpd.shutdown()
        httpd.server_close()
        service.close()
        thread.join(timeout=10)


def client(address: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"http://{address}/v1", api_key="unused", max_retries=0, timeout=30)


def test_openai_client_reads_replies_streamed_and_not(server):
    address, engine = server
    api = client(address)
    assert [m.id for m in api.models.list()] == ["tiny"]
    resp = api.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=8,
                                       temperature=0, extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    message = resp.choices[0].message
    assert message.content == "\n\nThe answer is 4." and message.reasoning_content == "\nadd them\n"
    assert resp.choices[0].finish_reason == "stop" and resp.usage.completion_tokens == 5
    assert merge_reasoning(message) == REPLY
    assert engine.prompts[-1].endswith(NO_THINK_TAIL)

    chunks = list(api.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}],
                                              max_tokens=8, stream=True, stream_options={"include_usage": True}))
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert (reasoning, content) == ("\nadd them\n", "\n\nThe answer is 4.")
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == 5
    assert engine.prompts[-1].endswith(THINK_TAIL)


def raw(address: str, method: str, path: str, body: bytes | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection(address, timeout=30)
    try:
        conn.putrequest(method, path)
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        if body is not None and "Content-Length" not in (headers or {}):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def chat_body(**fields: Any) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, **fields}).encode()


@pytest.mark.parametrize(("method", "path", "body", "headers", "status", "needle"), [
    ("POST", "/v1/chat/completions", b"{not json", None, 400, "not valid JSON"),
    ("POST", "/v1/chat/completions", b'{"max_tokens": 4}', None, 400, "messages"),
    ("POST", "/v1/chat/completions", chat_body(temperature="hot"), None, 400, "temperature"),
    ("POST", "/v1/chat/completions", chat_body(temperature=9), None, 400, "temperature"),
    ("POST", "/v1/chat/completions", json.dumps({"messages": [{"role": "assistant", "content": "x"}]}).encode(),
     None, 400, "last message"),
    ("POST", "/v1/chat/completions", chat_body(model="gpt-9"), None, 404, "gpt-9"),
    ("POST", "/v1/chat/completions", b"{}", {"Content-Length": str(10**9)}, 413, "limit"),
    ("POST", "/v1/embeddings", chat_body(), None, 404, "no route"),
    ("GET", "/v2/nothing", None, None, 404, "no route"),
    ("DELETE", "/v1/models", None, None, 405, "not supported"),
])
def test_bad_requests_get_4xx_and_the_server_keeps_answering(server, method, path, body, headers, status, needle):
    address, _ = server
    got, payload = raw(address, method, path, body, headers)
    assert got == status and needle in payload["error"]["message"]
    assert raw(address, "GET", "/health")[0] == 200
    ok, reply = raw(address, "POST", "/v1/chat/completions", chat_body())
    assert ok == 200 and reply["choices"][0]["message"]["content"] == "\n\nThe answer is 4."


def test_engine_failure_is_a_500_not_a_crash(server):
    address, engine = server
    engine.fail = True
    status, payload = raw(address, "POST", "/v1/chat/completions", chat_body())
    assert status == 500 and "engine fell over" in payload["error"]["message"]
    engine.fail = False
    assert raw(address, "POST", "/v1/chat/completions", chat_body())[0] == 200
