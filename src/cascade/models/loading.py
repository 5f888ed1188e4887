"""Load any Hugging Face causal LM and make it speak the cascade chat format.

A base model (Qwen3-8B-Base, Llama, ...) ships its own chat template, or none. Cascade
trains and evaluates with one template (the model card's), so loading installs it, and adds
the chat markers as unsplittable tokens when the vocabulary lacks them. Every change is
logged as one warning line, because it alters what the model sees.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cascade.chat.template import SPECIAL_TOKENS, chat_template
from cascade.errors import CascadeError
from cascade.models.tokenizer_factory import FRAMING_TOKENS, PAD_TOKEN

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

DTYPES = ("auto", "float32", "bfloat16", "float16")
_TRUTHY = {"1", "ON", "YES", "TRUE"}


def hide_transformers_progress_bars() -> None:
    """Hide transformers' own per-load and per-save bars ("Loading weights", "Writing model
    shards"): a cascade run loads and saves a checkpoint per stage and shows its own progress.
    Hub download bars stay on, because a first download of a real model takes minutes."""
    from huggingface_hub.utils import enable_progress_bars
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # also turns off the hub's bars ...
    enable_progress_bars()  # ... which downloads still want


def install_chat_template(tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """Give ``tokenizer`` the cascade chat template and chat markers; return what changed.

    The vocabulary may grow: a caller holding a model must resize its embeddings to
    ``len(tokenizer)`` (``load_model_and_tokenizer`` does).
    """
    from tokenizers import AddedToken

    changes: list[str] = []
    template = chat_template()
    if tokenizer.chat_template != template:
        previous = "replacing the model's own" if tokenizer.chat_template else "the model had none"
        tokenizer.chat_template = template
        changes.append(f"installed cascade chat template ({previous})")

    # A marker only counts as present when it is an added token: a plain vocabulary entry
    # with the same text could still be split when it touches neighbouring characters.
    added = tokenizer.get_added_vocab()
    missing = [token for token in SPECIAL_TOKENS if token not in added]
    if missing:
        before = len(tokenizer)
        framing = [token for token in missing if token in FRAMING_TOKENS]
        if framing:
            tokenizer.add_special_tokens({"extra_special_tokens": framing},
                                         replace_extra_special_tokens=False)
        # Reasoning and tool markers stay non-special, as in Qwen3: decoding with
        # skip_special_tokens=True must keep them for the reasoning/tool-call parser.
        content = [AddedToken(t, special=False, normalized=False)
                   for t in missing if t not in FRAMING_TOKENS]
        if content:
            tokenizer.add_tokens(content)
        changes.append(f"added {len(tokenizer) - before} special tokens ({', '.join(missing)})")
    return changes


def load_model_and_tokenizer(path_or_id: str | os.PathLike[str], *, device: str = "cpu",
                             dtype: str | torch.dtype | None = None,
                             ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer from a local directory or a hub id.

    ``dtype`` None keeps the checkpoint's own dtype ("auto"); otherwise one of ``DTYPES``
    or a ``torch.dtype``. The tokenizer gets the cascade chat template (see
    ``install_chat_template``) and a pad token if it has none; the model's embeddings grow
    to match any added tokens. Changes are logged as a warning.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = _resolve_source(str(path_or_id))
    target = _resolve_device(device)
    kwargs: dict[str, Any] = {} if dtype is None else {"dtype": _resolve_dtype(dtype)}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        # transformers explains itself in several lines; the first one names the problem.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CascadeError(f"cannot load a causal language model: {reason}",
                           file=source) from exc

    changes = install_chat_template(tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = PAD_TOKEN
        changes.append(f"set pad token to {PAD_TOKEN}")
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > rows:
        model.resize_token_embeddings(len(tokenizer))
        changes.append(f"resized embeddings from {rows} to {len(tokenizer)} rows")
    model.to(target)
    if changes:
        log.warning("%s: %s", source, "; ".join(changes))
    return model, tokenizer


def _resolve_source(path_or_id: str) -> str:
    """A local directory as is; otherwise a hub id, but only when a hub can be reached."""
    from huggingface_hub import constants
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    path = Path(path_or_id).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CascadeError("is a file; expected a model directory (config.json, weights, "
                               "tokenizer)", file=path_or_id)
        return str(path)
    try:
        validate_repo_id(path_or_id)
    except HFValidationError:
        raise CascadeError("no such model directory (and not a valid hub id either)",
                           file=path_or_id) from None
    offline = os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUTHY or constants.HF_HUB_OFFLINE
    if offline:
        raise CascadeError(
            "not a local directory, and no model hub is reachable to look it up as a hub id "
            "(HF_HUB_OFFLINE is set); pass a local model directory, e.g. one made with "
            "`cascade init-model --out DIR`",
            file=path_or_id,
        )
    return path_or_id


def _resolve_dtype(dtype: str | torch.dtype) -> str | torch.dtype:
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise CascadeError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}",
                           field="dtype")
    return dtype if dtype == "auto" else getattr(torch, dtype)


def _resolve_device(device: str) -> torch.device:
    import torch

    try:
        target = torch.device(device)
    except RuntimeError as exc:
        raise CascadeError(f"unknown device {device!r}: {exc}", field="device") from None
    if target.type == "cuda" and not torch.cuda.is_available():
        raise CascadeError(f"device {device!r} requested but CUDA is not available here",
                           field="device")
    return target
