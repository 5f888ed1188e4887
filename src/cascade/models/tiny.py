"""Randomly initialised Qwen3 models, small enough to train on a laptop CPU.

``init_model`` builds the tokenizer and the model and saves both in Hugging Face format, so
the rest of cascade (and any other tool) loads them like any downloaded checkpoint. The
model is the real ``Qwen3ForCausalLM`` architecture, only shrunk: what works here works on
Qwen3-8B-Base.

torch and transformers are imported inside the functions that need them, so that reading
``SIZES`` (e.g. for ``cascade init-model --help``) stays instant.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cascade.chat.template import chat_template
from cascade.errors import CascadeError
from cascade.models.tokenizer_factory import (
    EOS_TOKEN,
    PAD_TOKEN,
    build_tokenizer,
    minimum_vocab_size,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

# Per-size defaults. head_dim is listed for reference: unless given explicitly it follows
# hidden_size / heads. Embeddings are tied (as in Qwen3-0.6B), which keeps most of a tiny
# parameter budget in the transformer blocks rather than in two copies of the vocabulary.
SIZES: dict[str, dict[str, int]] = {
    "tiny": {  # 722,304 parameters (count_parameters); builds in about a second
        "vocab_size": 1024,
        "hidden_size": 128,
        "layers": 4,
        "heads": 4,
        "kv_heads": 2,
        "head_dim": 32,
        "intermediate_size": 256,
        "max_position": 4096,
    },
    "small": {  # 5,246,592 parameters
        "vocab_size": 2048,
        "hidden_size": 256,
        "layers": 6,
        "heads": 8,
        "kv_heads": 4,
        "head_dim": 32,
        "intermediate_size": 768,
        "max_position": 8192,
    },
}
DIMENSIONS = tuple(SIZES["tiny"])
TRAINING_TEMPLATE_FILE = "chat_template_training.jinja"


@dataclass(frozen=True)
class InitResult:
    """What ``create_model`` built and where it put it."""

    path: Path
    size: str
    dims: dict[str, int]
    parameters: int

    def summary(self) -> str:
        d = self.dims
        return (
            f"{self.size} Qwen3 model, {self.parameters:,} parameters: vocab {d['vocab_size']}, "
            f"hidden {d['hidden_size']}, {d['layers']} layers, {d['heads']} heads "
            f"({d['kv_heads']} kv) x {d['head_dim']}, ffn {d['intermediate_size']}, "
            f"max position {d['max_position']} -> {self.path}"
        )


def resolve_dims(size: str, overrides: dict[str, Any]) -> dict[str, int]:
    """The size's defaults with ``overrides`` applied, checked for a buildable model."""
    if size not in SIZES:
        raise CascadeError(f"unknown size '{size}'; choose one of {', '.join(SIZES)}",
                           field="size")
    unknown = sorted(set(overrides) - set(DIMENSIONS))
    if unknown:
        raise CascadeError(f"unknown model dimension(s) {', '.join(unknown)}; "
                           f"known: {', '.join(DIMENSIONS)}", field=unknown[0])
    given = {name: value for name, value in overrides.items() if value is not None}
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CascadeError(f"must be a positive integer, got {value!r}", field=name)
    dims = {**SIZES[size], **given}

    if "head_dim" not in given:
        if dims["hidden_size"] % dims["heads"]:
            raise CascadeError(
                f"hidden_size {dims['hidden_size']} is not divisible by heads {dims['heads']}; "
                "change one of them or set head_dim explicitly",
                field="hidden_size",
            )
        dims["head_dim"] = dims["hidden_size"] // dims["heads"]
    if dims["head_dim"] % 2:
        # Rotary embeddings rotate dimensions in pairs.
        raise CascadeError(f"head_dim must be even for rotary embeddings, got {dims['head_dim']}",
                           field="head_dim")
    if dims["heads"] % dims["kv_heads"]:
        raise CascadeError(
            f"heads {dims['heads']} is not a multiple of kv_heads {dims['kv_heads']} "
            "(grouped-query attention shares each kv head among a whole group)",
            field="kv_heads",
        )
    if dims["vocab_size"] < minimum_vocab_size():
        raise CascadeError(f"must be at least {minimum_vocab_size()} (256 byte tokens plus the "
                           f"chat markers), got {dims['vocab_size']}", field="vocab_size")
    return dims


def count_parameters(dims: dict[str, int]) -> int:
    """Parameters of a Qwen3ForCausalLM with ``dims`` and tied embeddings, without building it.

    Per layer: q/k/v/o projections (no biases), the gated MLP's three matrices, two RMSNorms
    over the hidden size, and Qwen3's per-head RMSNorms on queries and keys.
    """
    hidden, head_dim = dims["hidden_size"], dims["head_dim"]
    q_width, kv_width = dims["heads"] * head_dim, dims["kv_heads"] * head_dim
    attention = 2 * hidden * q_width + 2 * hidden * kv_width
    mlp = 3 * hidden * dims["intermediate_size"]
    norms = 2 * hidden + 2 * head_dim
    return (dims["vocab_size"] * hidden + dims["layers"] * (attention + mlp + norms)
            + hidden)  # + the final norm


def build_model(dims: dict[str, int], tokenizer: PreTrainedTokenizerFast,
                *, seed: int = 0) -> PreTrainedModel:
    """A randomly initialised ``Qwen3ForCausalLM`` with ``dims``, seeded, in float32."""
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=dims["hidden_size"],
        num_hidden_layers=dims["layers"],
        num_attention_heads=dims["heads"],
        num_key_value_heads=dims["kv_heads"],
        head_dim=dims["head_dim"],
        intermediate_size=dims["intermediate_size"],
        max_position_embeddings=dims["max_position"],
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="float32",
    )
    # Seed a private copy of the RNG so building a model does not disturb the caller's.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.convert_tokens_to_ids(EOS_TOKEN),
        pad_token_id=tokenizer.convert_tokens_to_ids(PAD_TOKEN),
    )
    return model


def write_training_template(directory: str | os.PathLike[str]) -> Path:
    """Save the training variant of the chat template next to a saved tokenizer.

    Tools outside cascade (e.g. a cluster trainer) find it there; cascade itself reads
    ``chat_template(training=True)`` directly.
    """
    path = Path(directory) / TRAINING_TEMPLATE_FILE
    path.write_text(chat_template(training=True), encoding="utf-8")
    return path


def create_model(out_dir: str | os.PathLike[str], size: str = "tiny", *, seed: int = 0,
                 force: bool = False, **overrides: Any) -> InitResult:
    """Build tokenizer + model and save them atomically to ``out_dir``; see ``init_model``."""
    out = Path(out_dir).expanduser()
    dims = resolve_dims(size, overrides)
    _check_destination(out, force)

    tokenizer = build_tokenizer(dims["vocab_size"], seed=seed)
    tokenizer.model_max_length = dims["max_position"]
    model = build_model(dims, tokenizer, seed=seed)
    parameters = sum(p.numel() for p in model.parameters())

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        write_training_template(staging)
        _publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return InitResult(path=out, size=size, dims=dims, parameters=parameters)


def init_model(out_dir: str | os.PathLike[str], size: str = "tiny", *, seed: int = 0,
               force: bool = False, **overrides: Any) -> Path:
    """Build a tokenizer and a random Qwen3 model of ``size`` and save them to ``out_dir``.

    ``overrides`` replace any of the size's defaults (see ``SIZES``). The directory is
    written atomically and loads with ``AutoTokenizer``/``AutoModelForCausalLM``. A
    non-empty ``out_dir`` is replaced only with ``force=True``. Returns the directory.
    """
    return create_model(out_dir, size, seed=seed, force=force, **overrides).path


def _check_destination(out: Path, force: bool) -> None:
    """Refuse early, before any work, to write where we must not."""
    if out.exists() and not out.is_dir():
        raise CascadeError("exists and is not a directory", file=str(out))
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise CascadeError("directory is not empty; pass --force (force=True) to replace it",
                               file=str(out))
        resolved = out.resolve()
        protected = (Path.cwd().resolve(), Path.home().resolve())
        if any(resolved == p or resolved in p.parents for p in protected):
            # --force replaces the whole directory: never the working or home directory.
            raise CascadeError("refusing to replace the current or home directory (or one "
                               "containing it); choose a dedicated output directory",
                               file=str(out))


def _publish(staging: Path, out: Path) -> None:
    """Move the finished staging directory to ``out`` with renames, so ``out`` is never
    half-written; an existing ``out`` (empty, or replaced under --force) is set aside first."""
    if not out.exists():
        staging.rename(out)
        return
    old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    out.rename(old)
    try:
        staging.rename(out)
    except BaseException:
        old.rename(out)
        raise
    shutil.rmtree(old)
