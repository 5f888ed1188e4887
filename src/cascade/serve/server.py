"""The HTTP server behind `cascade serve`.

Standard-library HTTP (one thread per connection) in front of one local engine, which
only the batcher's thread touches (``cascade.serve.batcher``): requests in flight at the
same time are decoded together. Streaming sends the reasoning and then the answer as
server-sent events once the completion is generated: the engine decodes a whole batch
before it returns text, so the deltas are per message part, not per token.

Nothing a client sends gets a 500 or no reply: the body's size, JSON nesting and Unicode
are checked before validation (``cascade.serve.schema``), and message text too long for the
context whatever it tokenises to is refused before tokenising. While a request waits or is
decoded, its handler checks every ``CLIENT_CHECK_S`` that the client is still connected; when
it has gone, the batcher drops the request or the engine stops its row.

Prompts are rendered by ``cascade.eval.backends.prompt.render_prompt``, the function the
local eval backend uses, and replies are split losslessly (``cascade.serve.reply``), so a
served sample equals the in-process one. ``logprobs``/``top_logprobs`` come back as the OpenAI
API defines them (``cascade.serve.logprobs``): one entry per generated token (reasoning
included, the stop token not), with the model's raw log-probabilities.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
import uuid
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from cascade.eval.backends.prompt import context_length, render_prompt, strip_stop
from cascade.serve.batcher import Batcher
from cascade.serve.logprobs import logprobs_object
from cascade.serve.reply import split_reply
from cascade.serve.schema import ChatRequest, parse_request

MAX_BODY_BYTES = 4 * 1024 * 1024
# How often a handler waiting for its completion checks that the client is still there.
CLIENT_CHECK_S = 0.1
# Prompt text bytes per token, at most, beyond the longest vocabulary entry: Unicode
# normalisation can merge up to three code points into one (Hangul jamo).
NORMALISATION_SLACK = 3
# Seconds a connection may sit idle mid-request before its thread gives up on it.
SOCKET_TIMEOUT_S = 60
CHAT_ROUTES = ("/v1/chat/completions", "/chat/completions")
MODEL_ROUTES = ("/v1/models", "/models")
HEALTH_ROUTES = ("/health", "/v1/health")


class BadRequest(Exception):
    """A request that validates but cannot be served (e.g. longer than the context)."""


class ClientGone(Exception):
    """The client hung up before its completion was ready; its generation was stopped."""


class ChatService:
    """Turns a validated request into an OpenAI ``chat.completion`` object."""

    def __init__(self, engine: Any, model_name: str, default_max_tokens: int = 512, *, max_batch: int = 64,
                 batch_window_s: float = 0.005) -> None:
        self.engine = engine
        self.model_name = model_name
        self.default_max_tokens = default_max_tokens
        self.context_limit = context_length(getattr(getattr(engine, "model", None), "config", None))
        self.max_prompt_bytes = _max_prompt_bytes(engine.tokenizer, self.context_limit)
        self.batcher = Batcher(engine, max_batch=max_batch, window_s=batch_window_s)

    def close(self) -> None:
        self.batcher.close()

    def complete(self, req: ChatRequest, client_gone: Callable[[], bool] | None = None) -> dict[str, Any]:
        """The completion object; ``client_gone`` is polled while it is generated, and when it
        turns True the generation stops and ClientGone is raised."""
        from cascade.engine.base import SamplingParams

        self._check_size(req)
        try:
            # Rendering only reads the tokenizer's template, so it may run on this thread.
            prompt = render_prompt(self.engine.tokenizer, req.template_messages(), enable_thinking=req.thinking(),
                                   tools=req.tools)
        except Exception as exc:  # the template's raise_exception and type errors: the client's fault
            raise BadRequest(f"messages: cannot render the chat template: {exc}") from None
        sampling = SamplingParams(temperature=req.temperature, top_p=req.top_p, top_k=req.top_k, seed=req.seed)
        logprobs_k = (req.top_logprobs or 0) if req.logprobs else None
        gone = threading.Event()
        future = self.batcher.submit(prompt, sampling, lambda n: self._budget(req, n),
                                     logprobs_k=logprobs_k, gone=gone)
        prompt_ids, gen = _wait(future, gone, client_gone)
        reply = split_reply(strip_stop(gen.text), tools_offered=bool(req.tools))
        finish = gen.finish_reason
        if reply.tool_calls and finish == "stop":
            finish = "tool_calls"
        logprobs = None
        if logprobs_k is not None:
            tokens = gen.token_ids[:len(gen.meta["token_logprobs"])]
            logprobs = logprobs_object(self.engine.tokenizer, tokens, gen.meta["token_logprobs"])
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": self.model_name,
            "choices": [{"index": 0, "message": reply.message(), "logprobs": logprobs, "finish_reason": finish}],
            "usage": {"prompt_tokens": len(prompt_ids), "completion_tokens": len(gen.token_ids),
                      "total_tokens": len(prompt_ids) + len(gen.token_ids)},
        }

    def _check_size(self, req: ChatRequest) -> None:
        """Refuse, before any tokenising, text that cannot fit the context whatever it
        tokenises to: tokenising megabytes only to count them costs seconds and memory the
        process keeps."""
        if self.max_prompt_bytes is None:
            return
        size = sum(len(_kept_text(m.role, m.for_template().get("content")).encode()) for m in req.messages)
        if size > self.max_prompt_bytes:
            raise BadRequest(f"messages: {size} bytes of text cannot fit the model's context of {self.context_limit} "
                             f"tokens (at most {self.max_prompt_bytes} bytes can)")

    def _budget(self, req: ChatRequest, prompt_tokens: int) -> int:
        limit = self.context_limit
        asked = req.max_completion_tokens or req.max_tokens
        if limit is None:
            return asked or self.default_max_tokens
        room = limit - prompt_tokens
        if asked is None:
            if room < 1:
                raise BadRequest(f"messages: the prompt has {prompt_tokens} tokens; the model's context is {limit}")
            return min(self.default_max_tokens, room)
        if asked > room:
            raise BadRequest(f"max_tokens: {prompt_tokens} prompt tokens + {asked} exceed the model's context "
                             f"of {limit} tokens")
        return asked


def _max_prompt_bytes(tokenizer: Any, context: int | None) -> int | None:
    """The most UTF-8 bytes of message text that can tokenise to ``context`` tokens or
    fewer: no token covers more text than the longest vocabulary entry (times the
    normalisation slack). None when the tokenizer does not list its vocabulary."""
    vocab = getattr(tokenizer, "get_vocab", None)
    if context is None or vocab is None:
        return None
    longest = max((len(token.encode("utf-8", "surrogatepass")) for token in vocab()), default=0)
    return context * max(longest, 1) * NORMALISATION_SLACK if longest else None


def _kept_text(role: str, content: Any) -> str:
    """The part of a message's text the chat template renders whatever the turn: an
    assistant reply keeps at least what follows its reasoning. (User text also loses
    trailing /think flags; megabytes of those are refused like any other text.)"""
    if not isinstance(content, str):
        return ""
    if role == "assistant" and "</think>" in content:
        return content.split("</think>", 1)[1].lstrip("\n")
    return content


def _wait(future: Future, gone: threading.Event, client_gone: Callable[[], bool] | None) -> Any:
    """The future's result; polls ``client_gone`` meanwhile and gives up when it says so."""
    while True:
        try:
            return future.result(timeout=CLIENT_CHECK_S if client_gone else None)
        except TimeoutError:
            if client_gone is not None and client_gone():
                gone.set()  # the batcher drops the job, or its row stops mid-decode
                raise ClientGone() from None


def make_handler(service: ChatService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "cascade-serve"
        timeout = SOCKET_TIMEOUT_S

        def log_message(self, fmt: str, *args: Any) -> None:  # quiet: one line per request is noise here
            pass

        def _json(self, status: int, obj: dict[str, Any]) -> None:
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
            self._json(status, {"error": {"message": message, "type": kind, "code": status}})

        def _route(self) -> str:
            return self.path.split("?", 1)[0].rstrip("/")

        def do_GET(self) -> None:
            route = self._route()
            if route in MODEL_ROUTES:
                self._json(200, {"object": "list", "data": [{"id": service.model_name, "object": "model",
                                                             "created": 0, "owned_by": "cascade"}]})
            elif route in HEALTH_ROUTES:
                self._json(200, {"status": "ok"})
            else:
                self._error(404, f"no route {self.path}", "not_found_error")

        def _not_allowed(self) -> None:
            self.close_connection = True  # the body, if any, was not read
            self._error(405, f"{self.command} is not supported here; use GET /v1/models or POST {CHAT_ROUTES[0]}")

        do_PUT = do_DELETE = do_PATCH = _not_allowed

        def do_POST(self) -> None:
            if self._route() not in CHAT_ROUTES:
                self.close_connection = True
                self._error(404, f"no route {self.path}", "not_found_error")
                return
            body = self._read_body()
            if body is None:
                return
            req, problem = parse_request(body)
            if req is None:
                self._error(400, problem or "invalid request")
                return
            if req.model and req.model != service.model_name:
                self._error(404, f"model: '{req.model}' is not served here; this server serves "
                                 f"'{service.model_name}'", "not_found_error")
                return
            try:
                result = service.complete(req, self._client_gone)
            except BadRequest as exc:
                self._error(400, str(exc))
                return
            except ClientGone:
                self.close_connection = True  # nobody to answer
                return
            except Exception as exc:  # a bug, not the client's fault; the server stays up
                self._error(500, f"{type(exc).__name__}: {exc}", "server_error")
                return
            if req.stream:
                self._stream(result, req.include_usage())
            else:
                self._json(200, result)

        def _client_gone(self) -> bool:
            """True once the client has closed its end: the socket reads as at its end."""
            try:
                readable, _, _ = select.select([self.connection], [], [], 0)
                return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
            except (OSError, ValueError):  # reset, or already closed
                return True

        def handle_one_request(self) -> None:
            try:
                super().handle_one_request()
            except (BrokenPipeError, ConnectionResetError):  # the client left while we answered
                self.close_connection = True

        def _read_body(self) -> Any:
            """The parsed JSON body, or None after answering with the error."""
            if "Content-Length" not in self.headers:
                self.close_connection = True
                self._error(411, "a Content-Length header is required")
                return None
            try:
                length = int(self.headers["Content-Length"])
            except ValueError:
                self.close_connection = True
                self._error(400, "Content-Length is not a number")
                return None
            if length < 0 or length > MAX_BODY_BYTES:
                self.close_connection = True  # the body stays unread, so the connection cannot be reused
                self._error(413, f"body of {length} bytes; the limit is {MAX_BODY_BYTES}")
                return None
            raw = self.rfile.read(length)
            try:
                return json.loads(raw, parse_constant=_not_json)
            except RecursionError:  # the C parser recurses once per level of nesting
                self._error(400, "body is nested too deeply")
                return None
            except ValueError as exc:  # bad JSON, bad UTF-8, NaN, an integer of thousands of digits
                self._error(400, f"body is not valid JSON: {exc}")
                return None

        def _stream(self, result: dict[str, Any], include_usage: bool) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True  # the stream's end is the connection's end
            msg = result["choices"][0]["message"]
            base = {"id": result["id"], "object": "chat.completion.chunk", "created": result["created"],
                    "model": result["model"]}
            deltas: list[dict[str, Any]] = [{"role": "assistant"}]
            if msg.get("reasoning_content") is not None:
                deltas.append({"reasoning_content": msg["reasoning_content"]})
            if msg.get("content"):
                deltas.append({"content": msg["content"]})
            if msg.get("tool_calls"):
                deltas.append({"tool_calls": [dict(c, index=i) for i, c in enumerate(msg["tool_calls"])]})
            logprobs = result["choices"][0].get("logprobs")
            for i, delta in enumerate(deltas):
                choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": None}
                if logprobs is not None and i == len(deltas) - 1:
                    choice["logprobs"] = logprobs  # every token's entry, with the last part
                self._event({**base, "choices": [choice]})
            self._event({**base, "choices": [{"index": 0, "delta": {},
                                              "finish_reason": result["choices"][0]["finish_reason"]}]})
            if include_usage:  # OpenAI's convention: a last chunk with no choices
                self._event({**base, "choices": [], "usage": result["usage"]})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

        def _event(self, obj: dict[str, Any]) -> None:
            self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")

    return Handler


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def make_server(service: ChatService, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), make_handler(service))
    # Handler threads may sit on an idle keep-alive connection; closing the server must not
    # wait for the client to hang up.
    server.daemon_threads = True
    server.block_on_close = False
    return server
