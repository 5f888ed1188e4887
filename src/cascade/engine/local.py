"""The local engine: one process, CPU (fp32) or one CUDA GPU (bf16), torch + transformers.

It implements the engine seam (``cascade.engine.base.Engine``): fast batched generation,
a gradient-accumulating ``forward_backward``, ``optim_step``, and save/load of everything a
resumed run needs. With ``head="score"`` it hosts a scalar-head sequence-classification
model instead (the reward-model trainer); the training calls are the same.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Protocol, Sequence

import numpy as np
import torch
from safetensors.torch import load_file
from transformers.utils import logging as hf_logging
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from cascade.engine.base import Generation, SamplingParams
from cascade.engine.lean_qwen3 import LeanQwen3
from cascade.engine.lean_qwen3 import supports as lean_supports
from cascade.engine.logprobs import entropy_needs_grad, place_columns, shifted_token_logprobs, token_logprobs
from cascade.engine.optim import OptimConfig, build_optimizer, build_scheduler
from cascade.engine.rope import apply_rope_scaling, current_rope_scaling, write_rope_scaling
from cascade.engine.sampling import sample_batch
from cascade.errors import CascadeError
from cascade.models.loading import install_chat_template, load_model_and_tokenizer
from cascade.models.tokenizer_factory import PAD_TOKEN

Head = Literal["lm", "score"]
DEFAULT_STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
RNG_FILE = "rng_state.pt"


def resolve_device(device: str) -> torch.device:
    """``auto`` (CUDA when torch sees a GPU, else CPU), ``cpu`` or ``cuda[:N]``; a clear
    error for anything else or a GPU that is not there."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise CascadeError(f"unknown device {device!r}; expected auto, cpu or cuda[:N]", field="device") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise CascadeError("device 'cuda' asked for, but torch sees no CUDA GPU", field="device")
    return resolved


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """The compute dtype by name; ``auto`` is bf16 on CUDA, fp32 on CPU."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if dtype not in names:
        raise CascadeError(f"unknown dtype {dtype!r}; expected auto or one of {', '.join(names)}", field="dtype")
    return names[dtype]


def capture_rng_state() -> dict[str, Any]:
    """Python, numpy, torch and CUDA global RNG states (a checkpoint saves them)."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Set the global RNGs back to what :func:`capture_rng_state` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def read_safetensors_dir(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a (possibly sharded) Hugging Face safetensors checkpoint."""
    index = path / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        shards = ["model.safetensors"]
    state: dict[str, torch.Tensor] = {}
    for shard in shards:
        state.update(load_file(str(path / shard)))
    return state


class LocalEngine:
    """Generation and training on this machine. See the module docstring."""

    def __init__(
        self,
        model_path: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        optim: OptimConfig | None = None,
        gradient_checkpointing: bool = False,
        seed: int = 0,
        head: Head = "lm",
        generation_batch_size: int = 64,
        lean_forward: bool = True,
    ) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)  # also fixes the freshly initialised score head
        self.model_path = Path(model_path)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.head = head
        self.generation_batch_size = generation_batch_size
        self.model, self.tokenizer = self._load(str(model_path))
        self.gradient_checkpointing = gradient_checkpointing
        if gradient_checkpointing:
            # Recent transformers name it activation_checkpointing_enable; the 5.9/5.10 releases
            # verl 0.9.1 pins only have gradient_checkpointing_enable.
            enable = getattr(self.model, "activation_checkpointing_enable", None)
            if enable is not None:
                enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        # The same function as the module stack with far less per-call overhead (see
        # cascade.engine.lean_qwen3); other architectures keep the module stack.
        self.lean = LeanQwen3(self.model) if lean_forward and head == "lm" and lean_supports(self.model) else None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        self.optim_config: OptimConfig | None = None
        if optim is not None:
            self.configure_optimizer(optim)

    def _load(self, path: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        """Model and tokenizer, with the cascade chat template and markers installed (a
        base model's own template would render a different format)."""
        if self.head == "lm":
            return load_model_and_tokenizer(path, device=str(self.device), dtype=self.dtype)
        tokenizer = AutoTokenizer.from_pretrained(path)
        install_chat_template(tokenizer)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = PAD_TOKEN
        # A causal-LM checkpoint loads into the classifier; only the scalar `score` head is
        # new. pad_token_id lets the model read each row's last non-pad token. transformers
        # reports that new head as missing on every such load; only other gaps are news.
        previous = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            model, info = AutoModelForSequenceClassification.from_pretrained(
                path, num_labels=1, pad_token_id=tokenizer.pad_token_id, dtype=self.dtype, output_loading_info=True
            )
        finally:
            hf_logging.set_verbosity(previous)
        unexpected_gaps = [key for key in info.get("missing_keys", ()) if not key.startswith("score.")]
        unexpected_gaps += [str(key) for key in info.get("mismatched_keys", ())]
        if unexpected_gaps:
            warnings.warn(f"{path}: the reward model's backbone did not load fully: {', '.join(unexpected_gaps)}",
                          stacklevel=2)
        if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
            model.resize_token_embeddings(len(tokenizer))
        return model.to(self.device), tokenizer

    def set_rope_scaling(self, scaling: Mapping[str, Any] | None) -> None:
        """Apply a RoPE scaling setting (YaRN, ``cascade.engine.rope``) to the model: training,
        generation and saved checkpoints use it from now on. None changes nothing (a model
        keeps what its checkpoint's config.json says)."""
        if scaling is not None:
            apply_rope_scaling(self.model, scaling)

    # -- optimizer -------------------------------------------------------------------------

    def configure_optimizer(self, cfg: OptimConfig) -> None:
        """(Re)create AdamW and its schedule from scratch; ``load`` restores their state.

        Training keeps fp32 master weights: with bf16 weights an update of lr 2e-6 is far
        below bf16's resolution (about 3 significant digits) and mostly rounds away. A bf16
        or fp16 ``dtype`` then only sets the autocast compute precision.
        """
        if self.dtype != torch.float32 and next(self.model.parameters()).dtype != torch.float32:
            self.model.float()
        self.optim_config = cfg
        self.optimizer = build_optimizer(self.model, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg)

    @property
    def pad_id(self) -> int:
        """The tokenizer's pad token id, else its eos id."""
        tokenizer = self.tokenizer
        return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def frozen_copy(self, path: str) -> "LocalEngine":
        """An inference-only engine (no optimizer) on this engine's device, loaded from
        ``path``: GRPO's KL reference."""
        return LocalEngine(path, device=str(self.device), optim=None)

    @torch.no_grad()
    def token_logprobs(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """``[B, T]`` log p of each ``input_ids`` token given its prefix (0 at position 0),
        from the module stack without gradients, on the CPU: a KL reference's log-probs."""
        device = next(self.model.parameters()).device
        logits = self.model(
            input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
        ).logits
        return shifted_token_logprobs(logits, batch["input_ids"].to(device), with_entropy=False)[0].cpu()

    @property
    def step(self) -> int:
        """Optimizer updates taken so far."""
        return 0 if self.scheduler is None else int(self.scheduler.last_epoch)

    def _compute(self) -> contextlib.AbstractContextManager[Any]:
        """Autocast to ``dtype`` when the weights are fp32 masters of a lower-precision run."""
        if self.dtype == torch.float32 or next(self.model.parameters()).dtype == self.dtype:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    # -- generation ------------------------------------------------------------------------

    def default_stop_ids(self) -> list[int]:
        """The ids that end a reply when the sampling asks for none: ``<|im_end|>``,
        ``<|endoftext|>`` and the tokenizer's eos."""
        ids = {self.tokenizer.convert_tokens_to_ids(tok) for tok in DEFAULT_STOP_TOKENS}
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return sorted(i for i in ids if i is not None and i != self.tokenizer.unk_token_id)

    def generate(self, prompts: Sequence[str], sampling: SamplingParams) -> list[Generation]:
        """Sample one completion per chat-rendered prompt string; see :meth:`generate_ids`."""
        encoded = self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
        return self.generate_ids(encoded, sampling)

    def generate_ids(self, prompt_ids: list[list[int]], sampling: SamplingParams, *,
                     cancelled: Callable[[int], bool] | None = None) -> list[Generation]:
        """Sample one completion per prompt.

        ``Generation.logprobs[i]`` is log p(token_i) under ``log_softmax(logits / temperature)``:
        the distribution the token was drawn from before top-k/top-p truncation (greedy,
        temperature 0, reports temperature-1 log-probs). ``finish_reason`` is "stop" when a
        stop token (``sampling.stop_token_ids``, else ``<|im_end|>``/``<|endoftext|>``/eos)
        was emitted, which is then the last token, else "length".

        Prompts are sorted by length and decoded in chunks of ``generation_batch_size`` so
        rows of one batch need little padding; results come back in the input order. The
        same ``sampling.seed`` gives the same output; with no seed, one is drawn from torch's
        global RNG (which checkpoints save), so a seeded run is still reproducible.

        ``cancelled(i)`` (polled every few decode steps) True: prompt ``i``'s caller has gone
        (a server's client hung up), so its row stops where it is; the other rows' outputs
        are unchanged.
        """
        if self.head != "lm":
            raise RuntimeError("a score-head engine cannot generate")
        stop_ids = list(sampling.stop_token_ids) or self.default_stop_ids()
        seed = sampling.seed if sampling.seed is not None else int(torch.randint(0, 2**62, (1,)))
        generator = torch.Generator(device=self.device).manual_seed(seed)
        order = sorted(range(len(prompt_ids)), key=lambda i: len(prompt_ids[i]))
        results: list[Generation | None] = [None] * len(prompt_ids)
        self.model.eval()
        for start in range(0, len(order), self.generation_batch_size):
            chunk = order[start:start + self.generation_batch_size]
            with self._compute():
                rows = sample_batch(
                    self.model,
                    [prompt_ids[i] for i in chunk],
                    sampling,
                    stop_ids=stop_ids,
                    pad_id=self.tokenizer.pad_token_id,
                    generator=generator,
                    lean=self.lean,
                    stop_rows=None if cancelled is None else lambda rows=chunk: [cancelled(i) for i in rows],
                )
            texts = self.tokenizer.batch_decode([r.token_ids for r in rows], skip_special_tokens=False)
            for index, row, text in zip(chunk, rows, texts):
                results[index] = Generation(
                    prompt_ids=list(prompt_ids[index]),
                    token_ids=row.token_ids,
                    text=text,
                    logprobs=row.logprobs,
                    finish_reason="stop" if row.stopped else "length",
                )
        return [r for r in results if r is not None]

    @torch.inference_mode()
    def completion_logprobs(self, prompt_ids: list[int], completion_ids: list[int], top_k: int = 0
                            ) -> list[tuple[float, list[tuple[int, float]]]]:
        """Per completion token: its log-probability, and the ``top_k`` most likely tokens at
        that position with theirs, most likely first.

        These are the model's raw log-probabilities (temperature 1, no top-k/top-p), read from
        one teacher-forced pass over prompt + completion: what the OpenAI API's ``logprobs`` /
        ``top_logprobs`` report (vLLM's default too), whatever the sampling settings were.
        """
        if self.head != "lm":
            raise RuntimeError("a score-head engine has no token log-probabilities")
        if not completion_ids:
            return []
        if not prompt_ids:
            raise ValueError("completion_logprobs needs a non-empty prompt (the first token has no context)")
        ids = torch.tensor([list(prompt_ids) + list(completion_ids)], dtype=torch.long, device=self.device)
        self.model.eval()
        with self._compute():
            if self.lean is not None:
                logits = self.lean.forward(ids, torch.ones_like(ids))
            else:
                logits = self.model(input_ids=ids, use_cache=False).logits
        start = len(prompt_ids) - 1
        logp = torch.log_softmax(logits[0, start:start + len(completion_ids)].float(), dim=-1)
        picked = logp.gather(-1, torch.tensor(completion_ids, device=logp.device).unsqueeze(-1)).squeeze(-1)
        out: list[tuple[float, list[tuple[int, float]]]] = []
        top = torch.topk(logp, min(top_k, logp.shape[-1]), dim=-1) if top_k > 0 else None
        for i, value in enumerate(picked.tolist()):
            alternatives = []
            if top is not None:
                alternatives = list(zip(top.indices[i].tolist(), top.values[i].tolist()))
            out.append((value, alternatives))
        return out

    # -- training --------------------------------------------------------------------------

    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}

    def forward_backward(self, batch: dict[str, Any], loss_fn: Callable[..., Any]) -> dict[str, float]:
        """Run the model, call ``loss_fn``, backpropagate; gradients add up across calls.

        For ``head="lm"`` the loss gets ``token_logprobs [B,T]`` (log p of ``input_ids[:, t]``
        given the prefix; 0 at position 0; with ``prompt_lens [B]`` in the batch, only the
        positions after each row's prompt are computed, the rest are 0) and ``entropy [B,T]`` when ``loss_fn.needs_entropy``
        is truthy; for ``head="score"`` it gets ``scores [B]`` (the scalar head read at each
        row's last non-pad token) and ``entropy=None``. ``loss_fn`` returns
        ``(loss, metrics)`` and must normalise for the whole optimizer batch.
        """
        batch = self._to_device(batch)
        self.model.train()
        with_entropy = bool(getattr(loss_fn, "needs_entropy", False))
        entropy = None
        if self._shares_prompts(batch):
            with self._compute():
                logits, targets, columns = self.lean.forward_shared_prompts(
                    batch["input_ids"], batch["attention_mask"], batch["prompt_lens"])
            picked, picked_entropy = token_logprobs(logits, targets, with_entropy, entropy_needs_grad(loss_fn))
            width = batch["input_ids"].shape[1]
            first = place_columns(picked, columns, width)
            if picked_entropy is not None:
                entropy = place_columns(picked_entropy, columns, width)
        else:
            with self._compute():
                if self.lean is not None:
                    logits = self.lean.forward(batch["input_ids"], batch["attention_mask"],
                                               checkpoint_layers=self.gradient_checkpointing)
                else:
                    logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                        use_cache=False).logits
            if self.head == "score":
                first = logits[:, 0].float()
            else:
                first, entropy = shifted_token_logprobs(logits, batch["input_ids"], with_entropy,
                                                        entropy_needs_grad(loss_fn))
        loss, metrics = loss_fn(first, batch, entropy=entropy)
        loss.backward()
        report = {k: float(v) for k, v in metrics.items()}
        report["loss"] = float(loss.detach())
        return report

    def _shares_prompts(self, batch: dict[str, Any]) -> bool:
        """Whether this batch takes the shared-prompt forward: it says where each row's prompt
        ends (``prompt_lens``, as GRPO batches do), every prompt is non-empty, and the lean
        forward runs (gradient checkpointing keeps the plain path, which supports it)."""
        if self.lean is None or self.gradient_checkpointing or "prompt_lens" not in batch:
            return False
        return bool((batch["prompt_lens"] > 0).all())

    @torch.inference_mode()
    def score(self, batch: dict[str, Any]) -> list[float]:
        """Scalar-head scores for a batch (``head="score"`` only), without gradients."""
        if self.head != "score":
            raise RuntimeError("score() needs an engine built with head='score'")
        batch = self._to_device(batch)
        self.model.eval()
        with self._compute():
            out = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False)
        return out.logits[:, 0].float().tolist()

    def optim_step(self) -> dict[str, float]:
        """Clip to ``max_grad_norm``, take one AdamW update at the scheduled LR, advance the
        schedule, zero the gradients. Returns the pre-clip ``grad_norm``, the ``lr`` used and
        the new ``step`` count."""
        if self.optimizer is None or self.scheduler is None or self.optim_config is None:
            raise RuntimeError("this engine was built for inference only (optim=None)")
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, self.optim_config.max_grad_norm)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return {"grad_norm": float(grad_norm), "lr": float(lr), "step": float(self.step)}

    # -- persistence -----------------------------------------------------------------------

    def save(self, path: str | Path, *, training_state: bool = True) -> None:
        """Write the Hugging Face checkpoint (safetensors weights, config, tokenizer, chat
        templates) into ``path``; with ``training_state`` and an optimizer, also
        ``optimizer.pt``, ``scheduler.pt`` and ``rng_state.pt``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(path))
        # The model card's `rope_scaling` name too, for readers on transformers 4 (vLLM, verl).
        write_rope_scaling(path, current_rope_scaling(self.model.config))
        self.tokenizer.save_pretrained(str(path))
        # Templates the tokenizer does not know about (the training variant) must travel
        # with the weights, or the next stage could not build its loss masks.
        for template in self.model_path.glob("*.jinja"):
            if not (path / template.name).exists():
                shutil.copyfile(template, path / template.name)
        if training_state and self.optimizer is not None and self.scheduler is not None:
            torch.save(self.optimizer.state_dict(), path / OPTIMIZER_FILE)
            torch.save(self.scheduler.state_dict(), path / SCHEDULER_FILE)
            torch.save(capture_rng_state(), path / RNG_FILE)

    def load(self, path: str | Path) -> None:
        """Restore what :meth:`save` wrote; weights are copied into the existing parameters
        so the optimizer keeps pointing at them."""
        path = Path(path)
        state = read_safetensors_dir(path)
        result = self.model.load_state_dict(state, strict=False)
        tied = set(getattr(self.model, "all_tied_weights_keys", {}) or {})
        missing = [k for k in result.missing_keys if k not in tied]
        if missing or result.unexpected_keys:
            raise RuntimeError(
                f"checkpoint {path} does not match the model: missing {missing[:5]}, "
                f"unexpected {result.unexpected_keys[:5]}"
            )
        self.model_path = path
        if self.optimizer is not None and (path / OPTIMIZER_FILE).is_file():
            self.optimizer.load_state_dict(torch.load(path / OPTIMIZER_FILE, map_location=self.device))
        if self.scheduler is not None and (path / SCHEDULER_FILE).is_file():
            self.scheduler.load_state_dict(torch.load(path / SCHEDULER_FILE))
        if (path / RNG_FILE).is_file():
            restore_rng_state(torch.load(path / RNG_FILE, weights_only=False))


class EngineSettings(Protocol):
    """What :func:`build_engine` reads of a recipe stage (any of ``cascade.config.recipe``'s
    typed stages); a protocol, so the engine does not import the config layer above it."""

    dtype: str
    gradient_checkpointing: bool
    train_seed: int


def build_engine(model_path: str | Path, stage: EngineSettings, *, head: Head = "lm",
                 device: str = "auto") -> LocalEngine:
    """A LocalEngine with the stage's dtype, gradient checkpointing and seed (the trainer
    attaches the optimizer once it knows how many updates it plans)."""
    return LocalEngine(
        str(model_path),
        device=device,
        dtype=stage.dtype,
        gradient_checkpointing=stage.gradient_checkpointing,
        seed=stage.train_seed,
        head=head,
    )
