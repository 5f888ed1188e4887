"""`cascade serve` returns logprobs / top_logprobs as the OpenAI API defines them, read by the
official client, and they are the model's own log-probabilities (checked against transformers)."""

from __future__ import annotations

import threading
from typing import Iterator

import openai
import pytest
import torch

from cascade.engine.local import LocalEngine
from cascade.serve.schema import parse_request
from cascade.serve.server import ChatService, make_server

torch.set_num_threads(1)

MESSAGES = [{"role": "user", "content": "Name a colour."}]


@pytest.fixture(scope="module")
def served(tiny_model_dir) -> Iterator[tuple[openai.OpenAI, LocalEngine]]:
    engine = LocalEngine(str(tiny_model_dir), device="cpu", dtype="float32", seed=0)
    service = ChatService(engine, "tiny")
    httpd = make_server(service, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    api = openai.OpenAI(base_url=f"http://127.0.0.1:{httpd.server_address[1]}/v1", api_key="unused",
                        max_retries=0, timeout=60)
    try:
        yield api, engine
    finally:
        httpd.shutdown()
        httpd.server_close()
        service.close()
        thread.join(timeout=10)


def test_logprobs_and_top_logprobs_are_the_models(served, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    api, engine = served
    out = api.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=8, temperature=0, logprobs=True,
                                      top_logprobs=3, extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    choice = out.choices[0]
    entries = choice.logprobs.content
    assert len(entries) == out.usage.completion_tokens - (choice.finish_reason == "stop")
    # The tokens' bytes join to exactly the message text.
    assert b"".join(bytes(e.bytes) for e in entries).decode("utf-8") == choice.message.content
    # Against transformers: log_softmax of the model's logits at each completion position, on
    # the tokens greedy decoding picks (the server's, as the engine decodes them here).
    from cascade.chat.template import render
    from cascade.engine.base import SamplingParams
    from cascade.serve.logprobs import token_bytes

    prompt_ids = engine.tokenizer(render(MESSAGES, enable_thinking=False), add_special_tokens=False)["input_ids"]
    (gen,) = engine.generate_ids([prompt_ids], SamplingParams(max_new_tokens=8, temperature=0))
    tokens = gen.token_ids[:len(entries)]
    assert [bytes(e.bytes) for e in entries] == [token_bytes(engine.tokenizer, t) for t in tokens]
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([prompt_ids + tokens])).logits[0].float(), dim=-1)
    for i, entry in enumerate(entries):
        position = len(prompt_ids) - 1 + i
        assert entry.logprob == pytest.approx(float(logp[position, tokens[i]]), abs=1e-4)
        best = torch.topk(logp[position], 3)
        assert [t.logprob for t in entry.top_logprobs] == pytest.approx(best.values.tolist(), abs=1e-4)
        assert [bytes(t.bytes) for t in entry.top_logprobs] == [token_bytes(engine.tokenizer, b)
                                                               for b in best.indices.tolist()]
        assert bytes(entry.top_logprobs[0].bytes) == bytes(entry.bytes)  # greedy: the top token


def test_no_logprobs_unless_asked_and_top_logprobs_alone_is_a_400(served):
    api, _ = served
    out = api.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=3, temperature=0)
    assert out.choices[0].logprobs is None
    out = api.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=3, temperature=0, logprobs=True)
    assert all(e.top_logprobs == [] for e in out.choices[0].logprobs.content)
    with pytest.raises(openai.BadRequestError, match="top_logprobs"):
        api.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=3, top_logprobs=2)
    _, problem = parse_request({"messages": MESSAGES, "logprobs": True, "top_logprobs": 21})
    assert problem.startswith("top_logprobs")


def test_streamed_reply_carries_the_logprobs(served):
    api, _ = served
    stream = api.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=4, temperature=0, logprobs=True,
                                         top_logprobs=1, stream=True,
                                         extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    entries = [e for chunk in stream for c in chunk.choices if c.logprobs for e in c.logprobs.content]
    assert entries and all(len(e.top_logprobs) == 1 for e in entries)
