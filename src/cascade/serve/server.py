"""The HTTP server behind `cascade serve`.

Standard library HTTP (one thread per connection) in front of one local engine; a lock
serialises generation because the engine batches internally and holds one model copy.
Streaming sends the reasoning and then the answer as server-sent events once the
completion is generated: the local engine decodes a whole batch at once, so deltas are not
token-by-token.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cascade.chat.parse import parse_completion
from cascade.serve.schema import parse_request

MAX_BODY_BYTES = 4 * 1024 * 1024


class ChatService:
    """Turns a validated request into an OpenAI chat.completion object."""

    def __init__(self, engine: Any, model_name: str, default_max_tokens: int = 512) -> None:
        self.engine = engine
        self.model_name = model_name
        self.default_max_tokens = default_max_tokens
        self.lock = threading.Lock()

    def complete(self, req: Any) -> dict[str, Any]:
        from cascade.engine.base import SamplingParams

        messages = [m.model_dump(exclude_none=True) for m in req.messages]
        prompt = self.engine.tokenizer.apply_chat_template(
            messages, tools=req.tools, tokenize=False, add_generation_prompt=True, enable_thinking=req.thinking())
        sampling = SamplingParams(max_new_tokens=req.budget(self.default_max_tokens), temperature=req.temperature,
                                  top_p=req.top_p, top_k=req.top_k, seed=req.seed)
        with self.lock:
            gen = self.engine.generate([prompt], sampling)[0]
        text = gen.text
        for stop in ("<|im_end|>", "<|endoftext|>"):
            text = text.removesuffix(stop)
        parsed = parse_completion(text)
        message: dict[str, Any] = {"role": "assistant", "content": _strip_tool_calls(parsed.answer),
                                   "reasoning_content": parsed.reasoning}
        finish = gen.finish_reason
        if parsed.tool_calls:
            message["tool_calls"] = [
                {"id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
                 "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}))}}
                for c in parsed.tool_calls]
            finish = "tool_calls" if finish == "stop" else finish
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": self.model_name,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": len(gen.prompt_ids), "completion_tokens": len(gen.token_ids),
                      "total_tokens": len(gen.prompt_ids) + len(gen.token_ids)},
        }


def _strip_tool_calls(answer: str) -> str:
    head = answer.split("<tool_call>", 1)[0]
    return head.rstrip("\n") if "<tool_call>" in answer else answer


def make_handler(service: ChatService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "cascade-serve"

        def log_message(self, fmt: str, *args: Any) -> None:  # quiet by default
            pass

        def _json(self, status: int, obj: dict[str, Any]) -> None:
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
            self._json(status, {"error": {"message": message, "type": kind, "code": status}})

        def do_GET(self) -> None:
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self._json(200, {"object": "list", "data": [{"id": service.model_name, "object": "model",
                                                             "owned_by": "cascade"}]})
            elif self.path.rstrip("/") in ("/health", "/v1/health"):
                self._json(200, {"status": "ok"})
            else:
                self._error(404, f"no route {self.path}", "not_found_error")

        def do_POST(self) -> None:
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                self._error(404, f"no route {self.path}", "not_found_error")
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                self._error(400, "bad Content-Length")
                return
            if length <= 0:
                self._error(400, "empty body")
                return
            if length > MAX_BODY_BYTES:
                self._error(413, f"body larger than {MAX_BODY_BYTES} bytes")
                self.close_connection = True
                return
            try:
                body = json.loads(self.rfile.read(length))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                self._error(400, f"body is not valid JSON: {exc}")
                return
            req, problem = parse_request(body)
            if req is None:
                self._error(400, problem or "invalid request")
                return
            if req.model and req.model != service.model_name:
                self._error(404, f"model '{req.model}' is not served here; this server serves '{service.model_name}'",
                            "not_found_error")
                return
            try:
                result = service.complete(req)
            except Exception as exc:  # a bad template argument etc.: the server stays up
                self._error(400 if isinstance(exc, (ValueError, TypeError, KeyError)) else 500, str(exc),
                            "server_error")
                return
            if req.stream:
                self._stream(result)
            else:
                self._json(200, result)

        def _stream(self, result: dict[str, Any]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            msg = result["choices"][0]["message"]
            base = {"id": result["id"], "object": "chat.completion.chunk", "created": result["created"],
                    "model": result["model"]}
            deltas: list[dict[str, Any]] = [{"role": "assistant"}]
            if msg.get("reasoning_content"):
                deltas.append({"reasoning_content": msg["reasoning_content"]})
            if msg.get("content"):
                deltas.append({"content": msg["content"]})
            if msg.get("tool_calls"):
                deltas.append({"tool_calls": [dict(c, index=i) for i, c in enumerate(msg["tool_calls"])]})
            for d in deltas:
                self._event({**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]})
            self._event({**base, "choices": [{"index": 0, "delta": {},
                                              "finish_reason": result["choices"][0]["finish_reason"]}],
                         "usage": result["usage"]})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

        def _event(self, obj: dict[str, Any]) -> None:
            self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")

    return Handler


def make_server(service: ChatService, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), make_handler(service))
    server.daemon_threads = True
    return server
