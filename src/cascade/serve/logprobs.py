"""The OpenAI ``logprobs`` object of a chat completion, from token ids and log-probabilities.

Shape (OpenAI chat completions API): ``{"content": [{"token", "logprob", "bytes",
"top_logprobs": [{"token", "logprob", "bytes"}, ...]}, ...], "refusal": null}``, one entry per
generated token, ``top_logprobs`` empty unless asked for. ``token`` is the token's text (a
token that holds part of a multi-byte character decodes with a replacement character, as on
OpenAI's API); ``bytes`` are its exact UTF-8 bytes, so clients can join partial characters.
"""

from __future__ import annotations

from functools import lru_cache
from collections.abc import Collection
from typing import Any, Sequence

TokenLogprobs = Sequence[tuple[float, Sequence[tuple[int, float]]]]


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet, reversed: which byte each printable stand-in character is."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def _added_vocab(tokenizer: Any) -> Collection[str]:
    return getattr(tokenizer, "get_added_vocab", dict)()


def token_bytes(tokenizer: Any, token_id: int, added: Collection[str] | None = None) -> bytes:
    """The exact bytes a token stands for: byte-level BPE pieces mapped back to bytes; added
    (special) tokens and other tokenizers' pieces as their UTF-8 text. ``added``: the
    tokenizer's added vocabulary, when the caller already has it (it is rebuilt per call)."""
    piece = tokenizer.convert_ids_to_tokens(int(token_id))
    if piece is None:
        return b""
    if piece in (_added_vocab(tokenizer) if added is None else added):
        return piece.encode("utf-8")
    decoder = _byte_decoder()
    if all(char in decoder for char in piece):
        return bytes(decoder[char] for char in piece)
    return tokenizer.decode([int(token_id)], skip_special_tokens=False).encode("utf-8")


def _entry(tokenizer: Any, token_id: int, logprob: float, added: Collection[str]) -> dict[str, Any]:
    raw = token_bytes(tokenizer, token_id, added)
    return {"token": raw.decode("utf-8", errors="replace"), "logprob": float(logprob), "bytes": list(raw)}


def logprobs_object(tokenizer: Any, token_ids: Sequence[int], logprobs: TokenLogprobs) -> dict[str, Any]:
    """The ``choices[i].logprobs`` object for the completion ``token_ids``."""
    content = []
    added = _added_vocab(tokenizer)
    for token_id, (logprob, top) in zip(token_ids, logprobs):
        entry = _entry(tokenizer, token_id, logprob, added)
        entry["top_logprobs"] = [_entry(tokenizer, alt, alt_logprob, added) for alt, alt_logprob in top]
        content.append(entry)
    return {"content": content, "refusal": None}
