"""A judge model behind an OpenAI-compatible server, read out as P("YES"). Torch-free.

The paper's SWE reward (Eq. 2) scores a patch that is neither exact nor empty with the
probability that a judge model (Kimi-Dev-72B in the paper) answers YES to "does this patch
resolve the issue as the reference does?", its verdict written as ``<judgement>YES</judgement>``
or ``<judgement>NO</judgement>``. Any server with the chat-completions API and token
log-probabilities serves the judge: `cascade serve` (a local checkpoint), vLLM, or a hosted one.

Read-out: the judge answers with ``logprobs`` and ``top_logprobs`` on; the verdict position is
the first generated token after the text ``<judgement>`` (the judge may reason before it, within
``max_tokens``). P(YES) is the summed probability of the alternatives at that position that begin
the word YES (``YES``, `` YES``, or a first piece of it such as ``Y`` when the tokenizer splits
the word), read from ``top_logprobs``: alternatives the server did not list count 0.

A call that fails (connection refused, HTTP error, timeout, a reply without a verdict or without
log-probabilities) is retried ``retries`` times with a growing pause, then reported as an error
for that item: the caller decides the fallback and counts it; nothing here falls back silently.
Calls run ``concurrency`` at a time.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Sequence

from cascade.errors import CascadeError

VERDICT_TAG = "<judgement>"
YES = "YES"
_LETTERS = re.compile(r"[A-Za-z]")


@dataclass(frozen=True)
class JudgeVerdict:
    """One judged item: ``p_yes`` in [0, 1], or ``error`` (then ``p_yes`` is None)."""

    p_yes: float | None
    error: str | None = None
    attempts: int = 1


class JudgeError(RuntimeError):
    """A judge reply that cannot be read out (retried like a network failure)."""


def verdict_p_yes(content: Sequence[dict[str, Any]], tag: str = VERDICT_TAG, yes: str = YES) -> float:
    """P(``yes``) at the first token after ``tag`` in a chat completion's ``logprobs.content``.

    Raises JudgeError when the tag never appears, nothing follows it, or that position has no
    ``top_logprobs``.
    """
    text = ""
    for index, entry in enumerate(content):
        before = len(text)
        text += entry.get("token", "")
        end = text.find(tag)
        if end < 0 or end + len(tag) > len(text):
            continue
        end += len(tag)
        if end < len(text):
            # The tag ends inside this token (">YES" after "<judgement"): its alternatives
            # share the part up to the tag's end.
            return _sum_yes(entry, lead=text[before:end], yes=yes)
        if index + 1 >= len(content):
            raise JudgeError(f"the judge stopped right after {tag} (no verdict token)")
        return _sum_yes(content[index + 1], lead="", yes=yes)
    raise JudgeError(f"the judge wrote no {tag} verdict")


def _sum_yes(entry: dict[str, Any], *, lead: str, yes: str) -> float:
    alternatives = entry.get("top_logprobs")
    if not alternatives:
        raise JudgeError("the verdict token came back without top_logprobs (does the server return them?)")
    total = 0.0
    for alt in alternatives:
        token = alt.get("token", "")
        if not token.startswith(lead):
            continue
        if _begins(token[len(lead):], yes):
            total += math.exp(float(alt["logprob"]))
    return min(total, 1.0)


def _begins(piece: str, word: str) -> bool:
    """Whether ``piece`` starts the word: ``word`` then no letter, or a non-empty prefix of it."""
    piece = piece.lstrip()
    if not piece:
        return False
    if piece.startswith(word):
        return _LETTERS.match(piece[len(word):len(word) + 1] or " ") is None
    return word.startswith(piece)


class JudgeClient:
    """Asks one judge model many questions through ``POST {base_url}/chat/completions``."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 60.0,
        retries: int = 2,
        max_tokens: int = 1024,
        temperature: float = 0.0,
        top_logprobs: int = 20,
        enable_thinking: bool | None = None,
    ) -> None:
        if concurrency < 1 or retries < 0 or timeout_s <= 0 or max_tokens < 1 or not 1 <= top_logprobs <= 20:
            raise CascadeError("judge: concurrency >= 1, retries >= 0, timeout_s > 0, max_tokens >= 1 and "
                               "top_logprobs in 1..20", field="judge")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = os.environ.get(api_key_env, "") if api_key_env else ""
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.retries = retries
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.top_logprobs = top_logprobs
        self.enable_thinking = enable_thinking

    def ask(self, prompts: Sequence[str]) -> list[JudgeVerdict]:
        """P(YES) for each prompt (a user message), in order; failures are per item."""
        if not prompts:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts)), thread_name_prefix="judge") as pool:
            return list(pool.map(self._ask_one, prompts))

    def _ask_one(self, prompt: str) -> JudgeVerdict:
        last = ""
        for attempt in range(1, self.retries + 2):
            try:
                return JudgeVerdict(verdict_p_yes(self._post(prompt)), None, attempt)
            except (JudgeError, OSError, ValueError, KeyError, TypeError) as exc:
                # OSError covers refused connections, timeouts and HTTP errors (urllib's).
                last = f"{type(exc).__name__}: {exc}"
            if attempt <= self.retries:
                time.sleep(min(0.2 * 2 ** (attempt - 1), 5.0))
        return JudgeVerdict(None, last, self.retries + 1)

    def _post(self, prompt: str) -> list[dict[str, Any]]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "logprobs": True,
            "top_logprobs": self.top_logprobs,
        }
        if self.enable_thinking is not None:
            body["chat_template_kwargs"] = {"enable_thinking": self.enable_thinking}
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                reply = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise JudgeError(f"HTTP {exc.code} from {self.url}: {detail}") from None
        logprobs = (reply.get("choices") or [{}])[0].get("logprobs")
        if not logprobs or not isinstance(logprobs.get("content"), list):
            raise JudgeError("the reply has no logprobs.content (does the server return logprobs?)")
        return logprobs["content"]
