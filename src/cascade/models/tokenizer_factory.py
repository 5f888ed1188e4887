"""Train the local byte-level BPE tokenizer that the tiny models use.

Byte-level BPE (the Qwen/GPT family's scheme) can encode any text, so a small vocabulary
trained on the generated corpus never meets an unknown character. Digits are split one per
token, as Qwen does, so arithmetic stays learnable for a tiny model instead of depending on
which numbers happened to be frequent in the corpus.

The chat-format markers are added after training as unsplittable tokens at the end of the
vocabulary (also like Qwen). The ChatML framing tokens are *special* (dropped by
``skip_special_tokens=True``); the reasoning and tool-call markers are not, so a decoded
completion keeps the ``<think>`` and ``<tool_call>`` markup the parser needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cascade.chat.template import SPECIAL_TOKENS, chat_template
from cascade.errors import CascadeError
from cascade.models.corpus import generate_corpus

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|endoftext|>"
# Markers of the conversation frame; everything else in SPECIAL_TOKENS is content markup.
FRAMING_TOKENS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>")

# Pre-tokenizer: English contractions; a letter run with at most one leading non-letter
# (usually the space); single digits; punctuation runs with an optional leading space and
# trailing newlines; newline runs; and whitespace runs that leave the last space to the word
# that follows (so indentation "    return" becomes "   " + " return").
SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)"
    r"|[^\r\n\p{L}\p{N}]?\p{L}+"
    r"|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+"
    r"|\s+(?!\S)"
    r"|\s+"
)
BYTE_ALPHABET_SIZE = 256
# The corpus grows with the requested vocabulary so larger vocabularies still find merges,
# up to the point where the generators stop producing new words (about 3K tokens).
CHARS_PER_VOCAB_ENTRY = 100
MIN_CORPUS_CHARS = 150_000
MAX_CORPUS_CHARS = 400_000


def minimum_vocab_size() -> int:
    """The 256 byte tokens plus the chat markers: a vocabulary cannot be smaller."""
    return BYTE_ALPHABET_SIZE + len(SPECIAL_TOKENS)


def build_tokenizer(vocab_size: int, *, seed: int = 0) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer of exactly ``vocab_size`` entries on the built-in corpus.

    The result has eos ``<|im_end|>``, pad ``<|endoftext|>``, every chat marker as a single
    token, and the cascade chat template attached. Same ``vocab_size`` and ``seed``, same
    vocabulary.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    floor = minimum_vocab_size()
    if vocab_size < floor:
        raise CascadeError(
            f"vocab size {vocab_size} is too small: the 256 byte tokens and "
            f"{len(SPECIAL_TOKENS)} chat markers alone need {floor}",
            field="vocab_size",
        )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus_chars = min(MAX_CORPUS_CHARS,
                       max(MIN_CORPUS_CHARS, CHARS_PER_VOCAB_ENTRY * vocab_size))
    corpus = generate_corpus(seed, corpus_chars)
    tokenizer.train_from_iterator(corpus, trainer=trainer)

    learned = tokenizer.get_vocab_size()
    if learned + len(SPECIAL_TOKENS) < vocab_size:
        raise CascadeError(
            f"vocab size {vocab_size} is too large for the built-in corpus, which supports at "
            f"most {learned + len(SPECIAL_TOKENS)} tokens; pick a smaller --vocab-size",
            field="vocab_size",
        )
    markers = [
        AddedToken(token, special=token in FRAMING_TOKENS, normalized=False)
        for token in SPECIAL_TOKENS
    ]
    tokenizer.add_tokens(markers)

    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        # Qwen has no BOS; the chat template opens every prompt with <|im_start|> instead.
        bos_token=None,
        clean_up_tokenization_spaces=False,
    )
    wrapped.chat_template = chat_template()
    return wrapped
