"""End to end: `cascade eval` on a tiny model with the local backend, and with the openai
backend against a real `cascade serve` process on loopback; the two must agree sample by
sample at temperature 0. Also the openai backend's retries and concurrency bound, against
a scripted HTTP server.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import openai
import pytest
import torch

from cascade.cli import main
from cascade.errors import CascadeError
from cascade.eval.backends.base import GenRequest
from cascade.eval.backends.openai_http import OpenAIBackend
from cascade.eval.backends.vllm_offline import engine_kwargs
from cascade.serve.process import ServerProcess

SERVED_NAME = "tiny-sharp"
ROW_FIELDS = ("completion", "reasoning", "answer", "score", "passed", "details", "tokens", "finish_reason",
              "extracted")


@pytest.fixture(scope="module")
def sharp_model(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with its weights scaled up. The fixture's own model is so flat that greedy
    decoding writes only newlines for every prompt, which would make equal outputs prove
    nothing; scaled, its greedy text depends on the prompt and the mode, and now and then
    contains <think>, </think> or <tool_call>, which exercises the reasoning round trip."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" not in name:
                param.mul_(10.0)
    out = tmp_path_factory.mktemp("sharp") / "model"
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cascade.toyworld import build_toy_world, write_toy_world

    root = tmp_path_factory.mktemp("data")
    write_toy_world(root / "toy", build_toy_world(seed=0, sizes={"math": 40, "if": 20}))
    return root


@pytest.fixture(scope="module")
def served(sharp_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real `cascade serve` child on a free port; started early (it takes seconds to import
    torch), waited for by the tests that need it, always terminated and reaped."""
    log = open(tmp_path_factory.mktemp("serve") / "serve.log", "w")
    # One torch thread: the machine's cores are shared with the test process and other suites.
    server = ServerProcess(sharp_model, name=SERVED_NAME, extra_args=["--device", "cpu"], log=log,
                           env={"OMP_NUM_THREADS": "1"})
    server.start()
    try:
        yield server
    finally:
        server.stop()
        log.close()
    assert server.proc is not None and server.proc.poll() is not None


def eval_args(data: Path, out: Path, *backend: str) -> list[str]:
    # Each benchmark in its protocol mode: toy_math thinks, toy_if answers in instruct mode.
    return ["eval", "--benchmarks", "toy_math:2,toy_if:1", "--limit", "3", "--max-tokens", "20",
            "--temperature", "0", "--data-dir", str(data), "--out", str(out), "--workers", "1", "--no-progress",
            *backend]


def read_rows(out: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    rows = {}
    for path in sorted(out.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            rows[(path.name, row["id"], row["seed"])] = row
    return rows


def test_local_and_served_evals_agree_sample_by_sample(served, sharp_model, toy_data, tmp_path):
    torch.set_num_threads(1)
    local_out, remote_out = tmp_path / "local", tmp_path / "openai"
    assert main(eval_args(toy_data, local_out, "--model", str(sharp_model), "--backend", "local",
                          "--device", "cpu")) == 0
    served.wait_ready()
    assert served.model_name == SERVED_NAME and served.base_url.startswith("http://127.0.0.1:")
    assert main(eval_args(toy_data, remote_out, "--model", SERVED_NAME, "--backend", "openai",
                          "--base-url", served.base_url, "--concurrency", "3")) == 0

    local, remote = read_rows(local_out), read_rows(remote_out)
    # 3 prompts x (2 seeds of toy_math + 1 of toy_if)
    assert len(local) == 9 and local.keys() == remote.keys()
    assert {k[0] for k in local} == {"toy_math.think.jsonl", "toy_if.no_think.jsonl"}
    for key, row in local.items():
        assert {f: remote[key][f] for f in ROW_FIELDS} == {f: row[f] for f in ROW_FIELDS}, key
    assert json.loads((local_out / "metrics.json").read_text())["results"] == \
        json.loads((remote_out / "metrics.json").read_text())["results"]

    # The comparison means something: greedy text differs from prompt to prompt, and no
    # sample is empty (the other test shows it also differs between the modes).
    completions = [row["completion"] for row in local.values()]
    assert all(completions) and len(set(completions)) == 6
    # Temperature 0 is greedy: both seeds of a prompt give the same text.
    math = {k[1:]: r["completion"] for k, r in local.items() if k[0] == "toy_math.think.jsonl"}
    assert all(math[(pid, 0)] == math[(pid, 1)] for pid, _ in math)


def test_served_prompt_follows_the_thinking_flag(served, sharp_model):
    """The server's no_think reply is the engine's greedy reply to the ' /no_think' prompt."""
    from cascade.chat.template import render
    from cascade.engine.base import SamplingParams
    from cascade.engine.local import LocalEngine

    torch.set_num_threads(1)
    messages = [{"role": "user", "content": "Name a fruit."}]
    engine = LocalEngine(str(sharp_model), device="cpu")
    greedy = SamplingParams(max_new_tokens=12, temperature=0.0)
    expected = {flag: engine.generate([render(messages, enable_thinking=flag)], greedy)[0].text
                for flag in (True, False)}
    assert render(messages, enable_thinking=False).endswith(" /no_think<|im_end|>\n<|im_start|>assistant\n")
    assert expected[True] != expected[False]

    api = openai.OpenAI(base_url=served.wait_ready().base_url, api_key="unused", max_retries=0, timeout=60)
    backend = OpenAIBackend(SERVED_NAME, base_url=served.base_url, client=api)
    try:
        for flag in (True, False):
            out = backend.generate([GenRequest(messages=messages, enable_thinking=flag, max_tokens=12,
                                               temperature=0.0)])[0]
            assert out.text == expected[flag].removesuffix("<|im_end|>")
        # A bad request is refused and the process keeps serving.
        with pytest.raises(openai.BadRequestError):
            api.chat.completions.create(model=SERVED_NAME, messages=[{"role": "user", "content": "x"}],
                                        temperature=7)
        assert [m.id for m in api.models.list()] == [SERVED_NAME]
    finally:
        backend.close()


# ---------------------------------------------------------------- the openai backend's HTTP behaviour


class Scripted(BaseHTTPRequestHandler):
    """Answers chat requests with statuses from ``server.script`` (then 200s); counts requests
    and the most that were in flight at once."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        srv: Any = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with srv.lock:
            srv.requests.append(body)
            srv.in_flight += 1
            srv.peak = max(srv.peak, srv.in_flight)
            status = srv.script.pop(0) if srv.script else 200
        time.sleep(srv.delay)
        with srv.lock:
            srv.in_flight -= 1
        if status == 200:
            thinking = body["chat_template_kwargs"]["enable_thinking"]
            payload: dict[str, Any] = {
                "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "length" if thinking else "stop", "message": {
                    "role": "assistant", "content": None if thinking else "answer",
                    "reasoning_content": "mulling" if thinking else None}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 9, "total_tokens": 12}}
        else:
            payload = {"error": {"message": f"scripted {status}", "type": "x", "code": status}}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("retry-after-ms", "10")  # the client's backoff honours it: keeps the test fast
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def scripted() -> Iterator[Any]:
    srv: Any = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    srv.daemon_threads = True
    srv.lock, srv.requests, srv.script, srv.in_flight, srv.peak, srv.delay = threading.Lock(), [], [], 0, 0, 0.0
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=10)


def url(srv: Any) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/v1"


def request(thinking: bool = True) -> GenRequest:
    return GenRequest(messages=[{"role": "user", "content": "q"}], enable_thinking=thinking, max_tokens=9, seed=4)


def test_openai_backend_retries_429_and_5xx(scripted):
    scripted.script = [429, 503, 500]
    backend = OpenAIBackend("m", base_url=url(scripted), max_retries=3, concurrency=1)
    try:
        out = backend.generate([request(thinking=False)])[0]
    finally:
        backend.close()
    assert len(scripted.requests) == 4
    assert (out.text, out.tokens, out.finish_reason) == ("answer", 9, "stop")
    sent = scripted.requests[-1]
    assert sent["chat_template_kwargs"] == {"enable_thinking": False}
    assert (sent["max_tokens"], sent["seed"], sent["temperature"], sent["top_p"]) == (9, 4, 0.6, 0.95)


def test_openai_backend_gives_up_with_a_clear_error(scripted):
    scripted.script = [503, 503, 503]
    backend = OpenAIBackend("m", base_url=url(scripted), max_retries=1, concurrency=1)
    try:
        with pytest.raises(CascadeError, match="answered 503.*scripted 503"):
            backend.generate([request()])
    finally:
        backend.close()
    assert len(scripted.requests) == 2


def test_openai_backend_bounds_concurrency_and_keeps_order(scripted):
    scripted.delay = 0.1
    backend = OpenAIBackend("m", base_url=url(scripted), concurrency=2, max_retries=0)
    try:
        outs = backend.generate([request(thinking=i % 2 == 0) for i in range(6)])
    finally:
        backend.close()
    assert scripted.peak == 2
    # Unclosed reasoning (content null, budget hit) comes back as an open think block.
    assert [o.text for o in outs] == ["<think>mulling", "answer"] * 3
    assert [o.finish_reason for o in outs] == ["length", "stop"] * 3


def test_vllm_arguments_follow_the_model_card_yarn_setting():
    plain = engine_kwargs("m", yarn_factor=1.0, max_model_len=None, tensor_parallel_size=1, gpu_memory_utilization=0.9)
    assert plain == {"model": "m", "tensor_parallel_size": 1, "gpu_memory_utilization": 0.9}
    yarn = engine_kwargs("m", yarn_factor=2.0, max_model_len=None, tensor_parallel_size=1, gpu_memory_utilization=0.9)
    assert yarn["hf_overrides"] == {"rope_scaling": {"rope_type": "yarn", "factor": 2.0,
                                                     "original_max_position_embeddings": 32768}}
    assert yarn["max_model_len"] == 65536
    with pytest.raises(CascadeError):
        engine_kwargs("m", yarn_factor=0.5, max_model_len=None, tensor_parallel_size=1, gpu_memory_utilization=0.9)


def test_context_length_follows_yarn_scaling():
    from types import SimpleNamespace

    from cascade.eval.backends.prompt import context_length

    assert context_length(SimpleNamespace(max_position_embeddings=4096)) == 4096
    yarn = {"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 32768}
    assert context_length(SimpleNamespace(max_position_embeddings=40960, rope_scaling=yarn)) == 65536
    plain = {"rope_type": "default"}
    assert context_length(SimpleNamespace(max_position_embeddings=40960, rope_parameters=plain)) == 40960
    assert context_length(SimpleNamespace()) is None


def test_local_backend_skips_a_prompt_whose_budget_passes_the_context():
    """The engine would allocate a KV cache past the trained context: such a request is not
    generated; it comes back as a "context" skip with the reason, and the others run."""
    from types import SimpleNamespace

    from cascade.chat.template import render
    from cascade.eval.backends.local import LocalBackend

    class CharTokenizer:
        def apply_chat_template(self, messages, *, tools, tokenize, add_generation_prompt, enable_thinking):
            return render(messages, tools=tools, enable_thinking=enable_thinking)

        def __call__(self, texts, add_special_tokens=False):
            return {"input_ids": [[ord(c) for c in t] for t in texts]}

    generated = []

    def generate(prompts, sampling):
        generated.extend(prompts)
        return [SimpleNamespace(text="ok", token_ids=[1], finish_reason="stop") for _ in prompts]

    engine = SimpleNamespace(tokenizer=CharTokenizer(), model=SimpleNamespace(config=SimpleNamespace(
        max_position_embeddings=200)), generate=generate)
    backend = LocalBackend("", engine=engine)
    prompt_chars = len(backend.render(request()))
    long_request = GenRequest(messages=[{"role": "user", "content": "x" * 300}], enable_thinking=True,
                              max_tokens=200 - prompt_chars)
    fitting = GenRequest(messages=request().messages, enable_thinking=True, max_tokens=200 - prompt_chars)
    outs = backend.generate([long_request, fitting])
    assert outs[0].finish_reason == "context" and outs[0].text == "" and "budget" in outs[0].extra["error"]
    assert outs[1].text == "ok" and len(generated) == 1
    never = backend.generate([GenRequest(messages=request().messages, enable_thinking=True,
                                         max_tokens=201 - prompt_chars)])
    assert never[0].finish_reason == "context" and len(generated) == 1
