"""The openai backend: any OpenAI-compatible chat-completions server (vLLM serve, SGLang,
`cascade serve`, a hosted API).

The official ``openai`` client does the HTTP work: retries with exponential backoff on 429,
5xx and connection errors, and per-request timeouts. On top of it this backend bounds
concurrency, passes the thinking flag as ``chat_template_kwargs`` (the vLLM/SGLang
convention), and reads reasoning whether the server splits it into ``reasoning_content``
or leaves ``<think>`` in the text.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from cascade.errors import CascadeError
from cascade.eval.backends.base import GenOutput, GenRequest


class OpenAIBackend:
    name = "openai"

    def __init__(self, model: str, *, base_url: str, api_key_env: str | None = None, concurrency: int = 8,
                 timeout: float = 600.0, max_retries: int = 5, client: Any = None) -> None:
        if client is None:
            import openai

            key = os.environ.get(api_key_env, "") if api_key_env else ""
            if api_key_env and not key:
                raise CascadeError(f"environment variable {api_key_env} (--api-key-env) is not set")
            client = openai.OpenAI(base_url=base_url, api_key=key or "EMPTY", timeout=timeout, max_retries=max_retries)
        self.client = client
        self.model = model
        self.pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="cascade-openai")

    def _one(self, req: GenRequest) -> GenOutput:
        kwargs: dict[str, Any] = {
            "model": self.model, "messages": req.messages, "max_tokens": req.max_tokens,
            "temperature": req.temperature, "top_p": req.top_p, "seed": req.seed,
            "extra_body": {"chat_template_kwargs": {"enable_thinking": req.enable_thinking}},
        }
        if req.tools:
            kwargs["tools"] = req.tools
        resp = self.client.chat.completions.create(**kwargs)
        choice = resp.choices[0]
        return GenOutput(text=merge_reasoning(choice.message), tokens=_completion_tokens(resp),
                         finish_reason="length" if choice.finish_reason == "length" else "stop")

    def generate(self, requests: Sequence[GenRequest]) -> list[GenOutput]:
        return list(self.pool.map(self._one, requests))

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def merge_reasoning(message: Any) -> str:
    """Rebuild the model's text: ``<think>reasoning</think>`` + content when the server split
    the reasoning out (``reasoning_content``, or ``reasoning`` on some servers); the content
    as is when the ``<think>`` block is still inside it."""
    content = message.content or ""
    extra = getattr(message, "model_extra", None) or {}
    reasoning = getattr(message, "reasoning_content", None) or extra.get("reasoning_content") or extra.get("reasoning")
    if reasoning and "</think>" not in content:
        content = f"<think>\n{reasoning}\n</think>\n{content}"
    for call in getattr(message, "tool_calls", None) or []:
        fn = call.function
        content += f'\n<tool_call>\n{{"name": "{fn.name}", "arguments": {fn.arguments}}}\n</tool_call>'
    return content


def _completion_tokens(resp: Any) -> int:
    usage = getattr(resp, "usage", None)
    return int(getattr(usage, "completion_tokens", 0) or 0)
