"""Request validation for the chat-completions endpoint (torch-free).

Every malformed request becomes a 400 whose message names the field; nothing a client
sends can crash the server. Types are strict (JSON ``"0.5"`` is not a temperature, ``"yes"``
is not a boolean), because a silently coerced parameter changes the output unnoticed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cascade.chat.template import check_messages, check_tools
from cascade.errors import CascadeError

MAX_TOKENS_CAP = 1 << 20  # the model's context is the real limit; this only rejects nonsense early
SEED_MAX = 2**63 - 1  # torch seeds a generator with a 64-bit signed integer
# No OpenAI request nests more than a few levels (tool schemas the most); a deeper body is
# an attack on the recursive code behind validation and the chat template.
MAX_JSON_DEPTH = 64


class TextPart(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    # Extra keys (name, tool_call_id, reasoning_content, ...) go to the chat template as is.
    model_config = ConfigDict(strict=True, extra="allow")
    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    tool_calls: list[dict[str, Any]] | None = None

    def for_template(self) -> dict[str, Any]:
        message = self.model_dump(exclude_none=True)
        if isinstance(self.content, list):  # OpenAI content parts; only text ones exist here
            message["content"] = "".join(part.text for part in self.content)
        return message


class StreamOptions(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")
    include_usage: bool = False


class ChatRequest(BaseModel):
    # Unknown OpenAI fields (user, response_format, ...) are accepted and ignored so
    # stock clients work; the ones that change the output are validated.
    model_config = ConfigDict(strict=True, extra="ignore")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float = Field(default=0.6, ge=0.0, le=2.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=0)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_CAP)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_CAP)
    n: int = Field(default=1, ge=1, le=1)
    seed: int | None = Field(default=None, ge=0, le=SEED_MAX)
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[dict[str, Any]] | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    enable_thinking: bool | None = None  # shorthand accepted at the top level too
    # OpenAI's token log-probabilities: `logprobs` asks for them, `top_logprobs` (0-20) for the
    # most likely alternatives at each position too.
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)

    @model_validator(mode="after")
    def _top_logprobs_needs_logprobs(self) -> "ChatRequest":
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs: true")
        return self

    @model_validator(mode="after")
    def _last_turn_is_not_assistant(self) -> "ChatRequest":
        if self.messages[-1].role == "assistant":
            raise ValueError("the last message must not be from the assistant (nothing to continue from)")
        return self

    def thinking(self) -> bool:
        """The thinking flag: chat_template_kwargs.enable_thinking, else enable_thinking, else on."""
        flag = (self.chat_template_kwargs or {}).get("enable_thinking", self.enable_thinking)
        return True if flag is None else bool(flag)

    def template_messages(self) -> list[dict[str, Any]]:
        return [m.for_template() for m in self.messages]

    def budget(self, default: int) -> int:
        return self.max_completion_tokens or self.max_tokens or default

    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


def parse_request(body: Any) -> tuple[ChatRequest | None, str | None]:
    """(request, None) or (None, a one-line error naming the field)."""
    if not isinstance(body, dict):
        return None, "request body must be a JSON object"
    problem = check_json_shape(body)
    if problem is not None:
        return None, problem
    try:
        req = ChatRequest.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        return None, f"{where}: {err['msg']}"
    flag = (req.chat_template_kwargs or {}).get("enable_thinking")
    if flag is not None and not isinstance(flag, bool):
        return None, "chat_template_kwargs.enable_thinking: Input should be a valid boolean"
    try:
        # The template's own rules (system first, user text a string, ...), with its field names.
        check_messages(req.template_messages())
        if req.tools is not None:
            check_tools(req.tools)
    except CascadeError as exc:
        return None, exc.format()
    return req, None


def check_json_shape(body: Any) -> str | None:
    """What no validator downstream should meet, found without recursion: nesting deeper
    than ``MAX_JSON_DEPTH``, and text that is not Unicode (a lone surrogate such as
    ``"\\ud800"`` is valid JSON, but no tokenizer can encode it). A one-line error naming
    the place, or None."""
    stack: list[tuple[Any, str, int]] = [(body, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"{where.split('.', 1)[0] or 'body'}: nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(value, dict):
            for key, item in value.items():
                place = f"{where}.{key}" if where else str(key)
                if not _is_unicode(key):
                    return f"{where or 'body'}: a key is not valid Unicode text (a lone surrogate?)"
                stack.append((item, place, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{where}.{i}" if where else str(i), depth + 1) for i, item in enumerate(value))
        elif isinstance(value, str) and not _is_unicode(value):
            return f"{where or 'body'}: text is not valid Unicode (a lone surrogate such as \\ud800?)"
    return None


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
