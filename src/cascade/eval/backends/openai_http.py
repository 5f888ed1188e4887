"""The openai backend: any OpenAI-compatible chat-completions server (vLLM serve, SGLang,
`cascade serve`, a hosted API).

The official ``openai`` client does the HTTP work: retries with exponential backoff on 408,
409, 429, 5xx and connection errors (honouring ``Retry-After``), and per-request timeouts.
On top of it this backend bounds concurrency, passes the thinking flag as
``chat_template_kwargs`` (the vLLM/SGLang convention), and reads reasoning whether the
server splits it into ``reasoning_content`` (or ``reasoning``) or leaves ``<think>`` in
the text.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from cascade.chat.parse import THINK_CLOSE, THINK_OPEN, TOOL_CALL_CLOSE, TOOL_CALL_OPEN
from cascade.errors import CascadeError
from cascade.eval.backends.base import CONTEXT_SKIP, GenOutput, GenRequest


class OpenAIBackend:
    name = "openai"

    def __init__(self, model: str, *, base_url: str, api_key_env: str | None = None, concurrency: int = 8,
                 timeout: float = 600.0, max_retries: int = 5, client: Any = None,
                 thinking_flag: bool = True) -> None:
        if concurrency < 1:
            raise CascadeError("must be at least 1", field="concurrency")
        if client is None:
            import openai

            key = os.environ.get(api_key_env, "") if api_key_env else ""
            if api_key_env and not key:
                raise CascadeError(f"environment variable {api_key_env} (--api-key-env) is not set")
            # Local servers ignore the key, but the client refuses to start without one.
            client = openai.OpenAI(base_url=base_url, api_key=key or "EMPTY", timeout=timeout, max_retries=max_retries)
        self.client = client
        self.model = model
        self.base_url = base_url
        # Hosted APIs (a judge such as GPT-4) refuse the vLLM/SGLang chat_template_kwargs field.
        self.thinking_flag = thinking_flag
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="cascade-openai")

    def _one(self, req: GenRequest) -> GenOutput:
        import openai

        kwargs: dict[str, Any] = {
            "model": self.model, "messages": req.messages, "max_tokens": req.max_tokens,
            "temperature": req.temperature, "top_p": req.top_p, "seed": req.seed,
        }
        if self.thinking_flag:
            kwargs["extra_body"] = {"chat_template_kwargs": {"enable_thinking": req.enable_thinking}}
        if req.tools:
            kwargs["tools"] = req.tools
        try:
            resp = self.client.chat.completions.create(**kwargs)
        except openai.BadRequestError as exc:
            message = _error_text(exc)
            if "context" in message.lower():  # vLLM, SGLang and cascade serve name the context
                return GenOutput(text="", tokens=0, finish_reason=CONTEXT_SKIP, extra={"error": message})
            raise CascadeError(f"{self.base_url} answered 400: {message}") from None
        except openai.APIStatusError as exc:
            raise CascadeError(f"{self.base_url} answered {exc.status_code} (after retries): "
                               f"{_error_text(exc)}") from None
        except openai.APIConnectionError as exc:
            raise CascadeError(f"cannot reach {self.base_url} (after retries): {exc}") from None
        choice = resp.choices[0]
        return GenOutput(text=merge_reasoning(choice.message), tokens=_completion_tokens(resp),
                         finish_reason="length" if choice.finish_reason == "length" else "stop")

    def generate(self, requests: Sequence[GenRequest]) -> list[GenOutput]:
        return list(self.pool.map(self._one, requests))

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def merge_reasoning(message: Any) -> str:
    """Rebuild the model's text from an assistant message.

    The inverse of a verbatim split (``cascade.serve.reply``, vLLM's reasoning parsers):
    ``<think>`` + reasoning + ``</think>`` + content, with no ``</think>`` when content is
    null (the think block never closed); content as is when there is no reasoning field (the
    server left any think block inside the text); tool calls appended the way the chat
    template writes them. A server that trims whitespace around the reasoning gives back a text that differs only in that
    whitespace, which ``split_reasoning`` (and so every verifier) reads the same way.
    """
    content = message.content
    reasoning = _reasoning_field(message)
    if reasoning is None:
        text = content or ""
    elif content is None:
        text = THINK_OPEN + reasoning
    else:
        text = THINK_OPEN + reasoning + THINK_CLOSE + content
    calls = [_tool_call_text(call) for call in getattr(message, "tool_calls", None) or []]
    if calls:
        text = (text + "\n" if text else "") + "\n".join(calls)
    return text


def _reasoning_field(message: Any) -> str | None:
    for name in ("reasoning_content", "reasoning"):
        value = getattr(message, name, None)
        if value is None:
            value = (getattr(message, "model_extra", None) or {}).get(name)
        if isinstance(value, str):
            return value
    return None


def _tool_call_text(call: Any) -> str:
    fn = call.function
    arguments = fn.arguments if isinstance(fn.arguments, str) else json.dumps(fn.arguments, ensure_ascii=False)
    name = json.dumps(fn.name, ensure_ascii=False)
    return f'{TOOL_CALL_OPEN}\n{{"name": {name}, "arguments": {arguments}}}\n{TOOL_CALL_CLOSE}'


def _error_text(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(exc)


def _completion_tokens(resp: Any) -> int:
    usage = getattr(resp, "usage", None)
    return int(getattr(usage, "completion_tokens", 0) or 0)
