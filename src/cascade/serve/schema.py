"""Request validation for the chat-completions endpoint (torch-free).

Every malformed request becomes a 4xx with a message that names the field; nothing a client
sends can crash the server.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

MAX_TOKENS_CAP = 32768


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    # Unknown OpenAI fields (logprobs, n, user, ...) are accepted and ignored rather than
    # rejected, so stock clients work; the ones that would change the output are validated.
    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float = Field(default=0.6, ge=0.0, le=2.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=0)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_CAP)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_CAP)
    seed: int | None = None
    stream: bool = False
    tools: list[dict[str, Any]] | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    enable_thinking: bool | None = None  # shorthand accepted at the top level too

    @model_validator(mode="after")
    def _last_turn_is_not_assistant(self) -> "ChatRequest":
        if self.messages[-1].role == "assistant":
            raise ValueError("the last message must not be from the assistant")
        return self

    def thinking(self) -> bool:
        if self.chat_template_kwargs and "enable_thinking" in self.chat_template_kwargs:
            return bool(self.chat_template_kwargs["enable_thinking"])
        return True if self.enable_thinking is None else self.enable_thinking

    def budget(self, default: int) -> int:
        return self.max_completion_tokens or self.max_tokens or default


def parse_request(body: Any) -> tuple[ChatRequest | None, str | None]:
    """(request, None) or (None, a one-line error naming the field)."""
    if not isinstance(body, dict):
        return None, "request body must be a JSON object"
    try:
        return ChatRequest.model_validate(body), None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        return None, f"{where}: {err['msg']}"
