"""The recipe as typed objects: a base model, named eval suites and an ordered list of stages.

Each stage is an ``sft``, ``rm`` or ``grpo`` stage (a union discriminated by ``kind``).
Defaults follow the paper (docs/recipes.md cites the paper for each); knobs the paper
does not state get a conservative default that the docs mark as ours. Every model forbids
unknown keys, so a typo is an error instead of a silently ignored setting. Torch-free.

Cross-field checks raise ``PathError`` with the path of the offending key, relative to the
model that raised it, so the loader can point at the right YAML line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from cascade.config.plan import StagePlan, plan_recipe
from cascade.data.hub import is_hub_id, load_dataset_source
from cascade.verifiers.stage_rewards import STAGE_REWARDS, rewards_needing

if TYPE_CHECKING:
    from cascade.config.optim import OptimConfig

# Stage and suite names appear in `--set stages.<name>.<key>=...` and in folder names.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]

# `parent: base` starts a stage from the recipe's base model.
BASE = "base"



class PathError(ValueError):
    """A validation error that knows which key (relative path) it is about."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


class _Config(BaseModel):
    # Strict types: YAML reads `max_steps: true` as a bool and `lr: "1e-5"` as a string, and
    # a setting silently coerced from either is a run trained on something nobody wrote.
    model_config = ConfigDict(extra="forbid", strict=True)


# ---------------------------------------------------------------- base model and data


class RopeScaling(_Config):
    """RoPE scaling of the model, as the model card's config.json block: YaRN stretches the
    ``original_max_position_embeddings`` window by ``factor`` (the card: factor 2 over 32K for
    64K-token budgets). ``attention_factor`` None: YaRN's own 0.1 ln(factor) + 1."""

    rope_type: Literal["yarn"] = "yarn"
    factor: float = Field(gt=1)
    original_max_position_embeddings: int = Field(gt=0)
    attention_factor: float | None = Field(default=None, gt=0)

    def as_config(self) -> dict[str, Any]:
        """The block for a Hugging Face config (``rope_scaling``), without unset keys."""
        return self.model_dump(exclude_none=True)


class InitSpec(_Config):
    """Build a fresh model with ``cascade.models.init_model`` instead of loading one."""

    size: str = "tiny"
    seed: int | None = None  # None: the recipe's seed


class InitBaseModel(_Config):
    init: InitSpec
    rope_scaling: RopeScaling | None = None


class PathBaseModel(_Config):
    """A path or hub id with model settings: ``{path: Qwen/Qwen3-8B-Base, rope_scaling: ...}``."""

    path: str
    rope_scaling: RopeScaling | None = None


def _base_model_tag(value: Any) -> str:
    if isinstance(value, InitBaseModel) or (isinstance(value, dict) and "init" in value):
        return "init"
    return "path" if isinstance(value, (dict, PathBaseModel)) else "ref"


# A path or hub id (`Qwen/Qwen3-8B-Base`), `{path: ..., rope_scaling: ...}`, or
# `{init: {size: tiny}}` (with an optional `rope_scaling` too).
BaseModelSpec = Annotated[
    Union[Annotated[str, Tag("ref")], Annotated[InitBaseModel, Tag("init")], Annotated[PathBaseModel, Tag("path")]],
    Discriminator(_base_model_tag),
]


class DataSource(_Config):
    """One training data source: exactly one of ``path`` (local file), ``hub`` (dataset id)
    or ``generator`` (data the pipeline builds, e.g. the toy world)."""

    path: str | None = None
    hub: str | None = None
    generator: str | None = None
    name: str | None = None  # hub dataset config, e.g. a Stage-2 SFT category
    split: str | None = None  # hub or generator split; hub default: train
    limit: int | None = Field(default=None, gt=0)  # keep the first N rows
    weight: float = Field(default=1.0, gt=0)  # upsample factor: rows count `weight` times per epoch
    # SFT sources: which assistant turns carry loss, "all" or "final", for every record of the
    # source; None: each record's own `train_turns`, else DEFAULT_TRAIN_TURNS ("all").
    train_turns: Literal["all", "final"] | None = None
    # The layout of the rows: `records` (cascade's schema) or a published dataset's layout
    # (cascade.data.adapters); None: detected from the first row where that is unambiguous.
    format: str | None = None

    @model_validator(mode="after")
    def _one_origin(self) -> "DataSource":
        given = [key for key in ("path", "hub", "generator") if getattr(self, key) is not None]
        if len(given) != 1:
            raise PathError((), f"give exactly one of path, hub or generator (given: {', '.join(given) or 'none'})")
        if self.name is not None and self.hub is None:
            raise PathError(("name",), "'name' (a hub dataset config) needs 'hub'")
        if self.split is not None and self.path is not None:
            raise PathError(("split",), "'split' applies to hub and generator sources, not to a local file")
        if self.format is not None and self.generator is not None:
            raise PathError(("format",), "'format' applies to path and hub sources; a generator writes records")
        return self

    def load(self, kind: str) -> list[Any]:
        """The validated records of a ``path`` or ``hub`` source (generators are built by
        the pipeline, not here)."""
        if self.generator is not None:
            raise ValueError(f"generator source '{self.generator}' is built by the pipeline, not loaded")
        source = self.path if self.path is not None else self.hub
        return load_dataset_source(source, kind, split=self.split, name=self.name, limit=self.limit, fmt=self.format)


def _data_sources(value: Any) -> Any:
    """Accept one source or a list; a bare string is a local path or a hub id."""
    if value is None:
        return value  # reported as a missing list, not as a bad item
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, str):
            item = {"hub": item} if is_hub_id(item) else {"path": item}
        out.append(item)
    return out


# ---------------------------------------------------------------- eval suites


class EvalSet(_Config):
    """One benchmark run after a stage: data, verifier, mode(s) and sampling.

    The data is a registered benchmark (``benchmark: aime25``: the loader, windows, verifier
    and protocol defaults of ``cascade eval``; ``path`` then points at its file, else the
    file is found under ``$CASCADE_DATA_DIR`` as for ``cascade eval``), a file of prompt
    records or a published layout (``path``, with ``format``), or a generator."""

    name: Name
    benchmark: str | None = None  # a name in the `cascade eval` registry (cascade.eval.benchmarks)
    path: str | None = None  # a local file or a hub id of prompt records (or the benchmark's file)
    format: str | None = None  # layout of a `path` that is not a benchmark (see DataSource.format)
    generator: str | None = None  # or data the pipeline builds (toy world)
    verifier: str | None = None  # None: each record's own `verifier` field
    # None: the benchmark's protocol (mode, k, budget), or think / 1 / 4096 for other sets.
    modes: Literal["think", "no_think", "both"] | None = None
    k: int | None = Field(default=None, ge=1)  # samples per prompt (avg@k, pass@k)
    max_new_tokens: int | None = Field(default=None, gt=0)
    n: int | None = Field(default=None, gt=0)  # first n prompts; None: all
    temperature: float = Field(default=0.6, ge=0)  # paper eval protocol: t 0.6, top-p 0.95
    top_p: float = Field(default=0.95, gt=0, le=1)

    @model_validator(mode="after")
    def _one_origin(self) -> "EvalSet":
        if self.benchmark is not None:
            if self.generator is not None:
                raise PathError(("generator",), "give benchmark (with an optional path to its file) or generator, not both")
            if self.format is not None:
                raise PathError(("format",), "a benchmark's file is read by its own loader; 'format' is for other files")
        elif (self.path is None) == (self.generator is None):
            raise PathError((), "give exactly one of benchmark, path or generator")
        if self.format is not None and self.generator is not None:
            raise PathError(("format",), "'format' applies to a path; a generator writes records")
        return self


# ---------------------------------------------------------------- stages


class _StageBase(_Config):
    """Knobs every stage has. ``batch_size`` is per optimizer step (prompts for GRPO,
    sequences for SFT, pairs for RM); ``grad_accum`` splits it into that many micro-batches."""

    name: Name
    parent: str | None = None  # None: the previous stage's output (the base model for the first)
    data: Annotated[list[DataSource], Field(min_length=1)]
    eval: list[str] | None = None  # eval suites after this stage; None: all of the recipe's

    lr: float = Field(gt=0)
    min_lr: float = Field(default=0.0, ge=0)
    warmup_steps: int = Field(default=0, ge=0)
    scheduler: Literal["cosine", "constant", "linear"] = "cosine"
    scheduler_horizon: int | None = Field(default=None, gt=0)  # None: the stage's step count
    max_steps: int | None = Field(default=None, gt=0)
    epochs: int | None = Field(default=None, gt=0)
    batch_size: int = Field(gt=0)
    grad_accum: int = Field(default=1, ge=1)
    weight_decay: float = Field(default=1e-4, ge=0)
    adam_betas: tuple[Annotated[float, Field(ge=0, lt=1, strict=True)], Annotated[float, Field(ge=0, lt=1, strict=True)]] = \
        Field(default=(0.9, 0.95), strict=False)  # YAML has lists, not tuples
    max_grad_norm: float = Field(default=1.0, gt=0)
    save_every: int | None = Field(default=None, gt=0)  # None: save at the end only
    seed: int | None = None  # None: the recipe's seed
    gradient_checkpointing: bool = False
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    # The model's RoPE scaling from this stage on (written into its checkpoint's config.json);
    # None: the parent's (Recipe.rope_scaling_for).
    rope_scaling: RopeScaling | None = None
    keep_checkpoints: int = Field(default=2, ge=1)  # newest checkpoints kept in the stage folder

    @field_validator("data", mode="before")
    @classmethod
    def _normalize_data(cls, value: Any) -> Any:
        return _data_sources(value)

    @property
    def train_seed(self) -> int:
        """The seed the trainer uses (``Recipe.resolved_stage`` fills it from the recipe's)."""
        return 0 if self.seed is None else self.seed

    def planned_steps(self, num_examples: int) -> int:
        """Optimizer updates this stage plans over ``num_examples`` examples (sequences, pairs).

        ``max_steps`` wins over ``epochs`` when both are set (the Hugging Face Trainer's
        convention): the data is cycled, or cut short, to exactly ``max_steps`` updates.
        Otherwise ``epochs`` passes, the last batch of each epoch possibly smaller."""
        if self.max_steps is not None:
            return self.max_steps
        assert self.epochs is not None  # the schema requires one of the two
        return self.epochs * max(1, math.ceil(num_examples / self.batch_size))

    def optim_config(self, planned_steps: int) -> "OptimConfig":
        """AdamW + schedule; the horizon defaults to the updates this stage plans."""
        from cascade.config.optim import OptimConfig

        return OptimConfig(
            lr=self.lr,
            min_lr=self.min_lr,
            weight_decay=self.weight_decay,
            betas=self.adam_betas,
            warmup_steps=self.warmup_steps,
            scheduler=self.scheduler,
            horizon_steps=self.scheduler_horizon or planned_steps,
            max_grad_norm=self.max_grad_norm,
        )

    @model_validator(mode="after")
    def _common_checks(self) -> "_StageBase":
        if self.parent is not None and re.match(NAME_PATTERN, self.parent) is None:
            raise PathError(("parent",), f"'{self.parent}' is not a stage name")
        if self.max_steps is None and self.epochs is None:
            raise PathError(("max_steps",), "set max_steps or epochs (both: max_steps decides)")
        if self.min_lr > self.lr:
            raise PathError(("min_lr",), f"min_lr ({self.min_lr}) is above lr ({self.lr})")
        if self.batch_size % self.grad_accum:
            raise PathError(("grad_accum",), f"grad_accum ({self.grad_accum}) must divide batch_size ({self.batch_size})")
        return self


class SFTStage(_StageBase):
    kind: Literal["sft"]
    lr: float = Field(default=5e-5, gt=0)  # paper SFT stage 1 (stage 2: 2e-5)
    batch_size: int = Field(default=256, gt=0)
    epochs: int | None = Field(default=1, gt=0)
    max_seq_len: int = Field(default=16384, ge=2)
    packing: bool = False
    # Which modes to train on: both (parallel think + instruct targets, the unified model),
    # think only (a thinking model drops the instruct halves), or no_think only.
    mode_mix: Literal["both", "think", "no_think"] = "both"

    @field_validator("packing")
    @classmethod
    def _no_packing(cls, value: bool) -> bool:
        if value:
            raise ValueError("packing is not supported; the SFT trainer length-buckets instead "
                             "(packed rows would attend across conversations)")
        return value


class SampledPairs(_Config):
    """Preference pairs rated from the parent policy's own replies.

    HelpSteer2/3, most of the paper's RM data, are human ratings of model responses. Here the
    rater is each prompt record's verifier: every prompt is answered ``samples`` times per
    mode, and each reply the verifier passes (and that finished) is paired as chosen against
    a failing reply to the same prompt. In the tiny recipe a reward model trained only on
    templated pairs ranked the policy's right replies over its wrong ones little better than
    chance; these pairs show it the policy's own mistakes.
    """

    data: Annotated[list[DataSource], Field(min_length=1)]  # prompt records with verifier + ground truth
    samples: int = Field(default=4, ge=2)  # replies per prompt and mode
    modes: Literal["think", "no_think", "both"] = "both"
    max_pairs_per_prompt: int = Field(default=4, gt=0)
    temperature: float = Field(default=0.8, gt=0)
    top_p: float = Field(default=0.95, gt=0, le=1)
    max_new_tokens: int = Field(default=1024, gt=0)

    @field_validator("data", mode="before")
    @classmethod
    def _normalize_data(cls, value: Any) -> Any:
        return _data_sources(value)


class RMStage(_StageBase):
    kind: Literal["rm"]
    lr: float = Field(default=2e-6, gt=0)
    batch_size: int = Field(default=256, gt=0)
    epochs: int | None = Field(default=1, gt=0)  # longer was worse in the paper
    max_seq_len: int = Field(default=4096, ge=2)
    heldout_fraction: float = Field(default=0.05, ge=0, lt=1)
    sampled_pairs: SampledPairs | None = None  # add pairs rated from the parent policy's replies


class JudgeEndpoint(_Config):
    """A judge model behind an OpenAI-compatible chat server that returns log-probabilities
    (`cascade serve`, vLLM, ...), read out as P("YES") (``cascade.verifiers.judge``)."""

    base_url: str  # e.g. http://127.0.0.1:8001/v1
    model: str  # the name the server knows the judge by
    api_key_env: str | None = None  # environment variable holding the API key, if the server needs one
    prompt_file: str | None = None  # a template with {issue}, {gold_patch} and {model_patch}; None: ours
    concurrency: int = Field(default=8, ge=1)  # requests in flight at once
    timeout_s: float = Field(default=120.0, gt=0)  # per request
    retries: int = Field(default=2, ge=0)  # per item, after the first try
    max_tokens: int = Field(default=1024, ge=1)  # room to reason before the verdict
    temperature: float = Field(default=0.0, ge=0)
    top_logprobs: int = Field(default=20, ge=1, le=20)
    enable_thinking: bool | None = None  # sent as chat_template_kwargs.enable_thinking when set
    # The reward of a patch the judge could not score after its retries (each one is counted
    # in the step's metrics, judge_errors): never the lexical score in disguise.
    fallback_reward: float = Field(default=0.0, ge=-1, le=1)
    # A step whose share of failed judge calls passes this stops training with an error.
    max_error_share: float = Field(default=0.25, ge=0, le=1)

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value


# `lexical`: the SWE-RL lexical similarity in place of a judge, the paper's ablation (Table 12).
LEXICAL = "lexical"
JudgeSpec = Union[Literal["lexical"], JudgeEndpoint]


@dataclass(frozen=True)
class StepKnobs:
    """The knobs of a GRPO stage that a curriculum sub-stage may change, as in force there."""

    substage: str  # "main" for a stage without curriculum
    max_response_len: int
    max_prompt_len: int
    temperature: float
    overlong_filter: bool


class SubStage(_Config):
    """One step of a length curriculum; unset knobs keep the stage's value. Every entry but
    the last ends by ``until_step`` (stage steps done) or ``until_truncated_below`` (share of
    truncated responses in a step); the last runs until the stage ends."""

    name: Name
    max_response_len: int | None = Field(default=None, gt=0)
    max_prompt_len: int | None = Field(default=None, gt=0)  # SWE RL grows the input context
    temperature: float | None = Field(default=None, gt=0)
    overlong_filter: bool | None = None
    until_step: int | None = Field(default=None, gt=0)
    until_truncated_below: float | None = Field(default=None, gt=0, le=1)


class GRPOStage(_StageBase):
    kind: Literal["grpo"]
    lr: float = Field(default=2e-6, gt=0)
    batch_size: int = Field(default=128, gt=0)
    scheduler: Literal["cosine", "constant", "linear"] = "constant"

    group_size: int = Field(default=8, ge=2)
    reward: str | None = None  # None: score each record with its own `verifier`
    reward_model: str | None = None
    judge: JudgeSpec | None = None  # the swe reward's judge, or `lexical` (the paper's ablation)
    think_fraction: float = Field(default=1.0, ge=0, le=1)
    temperature: float = Field(default=1.0, gt=0)
    top_p: float = Field(default=0.95, gt=0, le=1)
    top_k: int = Field(default=0, ge=0)  # 0: off
    max_response_len: int = Field(default=8192, gt=0)
    max_prompt_len: int = Field(default=4096, gt=0)
    overlong_filter: bool = False  # True: truncated responses are masked; False: they score 0
    loss_agg: Literal["token_mean", "seq_mean"] = "token_mean"
    kl_coef: float = Field(default=0.0, ge=0)
    reward_shaping: Literal["none", "group_tanh"] = "none"  # group_tanh: tanh(group z-score), for weak RMs
    entropy_coef: float = Field(default=0.0, ge=0)
    ppo_epochs: int = Field(default=1, ge=1)  # 1: strict on-policy, importance ratio exactly 1
    clip_low: float = Field(default=0.2, ge=0, lt=1)
    clip_high: float = Field(default=0.2, ge=0)
    dynamic_filter: bool = False
    max_filter_tries: int = Field(default=3, ge=1)
    epoch_filter: bool = False
    readd_prob_all_correct: float = Field(default=0.01, ge=0, le=1)
    readd_prob_all_wrong: float = Field(default=0.10, ge=0, le=1)
    adv_eps: float = Field(default=1e-6, gt=0)
    curriculum: list[SubStage] = Field(default_factory=list)
    # Trainer knobs the paper does not state. generation_chunks > 1 overlaps scoring of chunk
    # k with generation of chunk k+1. on_policy_tol is the largest mean |training logp -
    # sampler logp| per token allowed at temperature 1 on the on-policy update: float noise is
    # ~1e-6 in fp32 and ~1e-2 in bf16, a misaligned token or mask is several nats.
    generation_chunks: int = Field(default=2, ge=1)
    on_policy_tol: float = Field(default=0.05, gt=0)

    @model_validator(mode="after")
    def _grpo_checks(self) -> "GRPOStage":
        # What a stage reward needs is its entry in the table of stage rewards.
        entry = STAGE_REWARDS.get(self.reward) if self.reward is not None else None
        if entry is not None and entry.reward_model and self.reward_model is None:
            raise PathError(("reward_model",), f"reward '{self.reward}' scores with a reward model: set reward_model")
        if entry is not None and entry.judge and self.judge is None:
            raise PathError(("judge",), f"reward '{self.reward}' scores non-exact patches with a judge model: set "
                                        "judge ({base_url, model} of an OpenAI-compatible server), or judge: lexical "
                                        "for the paper's lexical-similarity ablation")
        if self.judge is not None and (entry is None or not entry.judge):
            raise PathError(("judge",), f"only the {', '.join(rewards_needing('judge'))} reward uses a judge "
                                        f"(this stage's reward: {self.reward})")
        self._check_curriculum()
        return self

    def planned_steps(self, num_examples: int) -> int:
        """Updates this stage plans over ``num_examples`` prompts: ``max_steps`` when set
        (it wins over ``epochs``), else ``epochs`` passes; the prompt stream fills a batch
        across an epoch boundary, so the passes share their last batch."""
        if self.max_steps is not None:
            return self.max_steps
        assert self.epochs is not None
        return max(1, -(-num_examples * self.epochs // self.batch_size))

    def substage_knobs(self, substage: str | None) -> "StepKnobs":
        """The sampling knobs in force in one curriculum sub-stage (by name; None: a stage
        without curriculum): the sub-stage's value where it sets one, else the stage's. The
        local trainer and the verl adapter both read them here."""
        if substage is None:
            if self.curriculum:
                names = ", ".join(s.name for s in self.curriculum)
                raise ValueError(f"stage '{self.name}' has a curriculum: name one sub-stage ({names})")
            return StepKnobs("main", self.max_response_len, self.max_prompt_len, self.temperature, self.overlong_filter)
        sub = next((s for s in self.curriculum if s.name == substage), None)
        if sub is None:
            known = ", ".join(s.name for s in self.curriculum) or "(no curriculum)"
            raise ValueError(f"stage '{self.name}' has no sub-stage '{substage}'; sub-stages: {known}")

        def pick(key: str) -> Any:
            value = getattr(sub, key)
            return getattr(self, key) if value is None else value

        return StepKnobs(sub.name, pick("max_response_len"), pick("max_prompt_len"), pick("temperature"),
                         pick("overlong_filter"))

    def substage_name(self, index: int) -> str | None:
        """The name of curriculum entry ``index`` (None: no curriculum)."""
        return self.curriculum[index].name if self.curriculum else None

    def _check_curriculum(self) -> None:
        seen: set[str] = set()
        previous_step = 0
        last = len(self.curriculum) - 1
        for i, sub in enumerate(self.curriculum):
            if sub.name in seen:
                raise PathError(("curriculum", i, "name"), f"duplicate sub-stage name '{sub.name}'")
            seen.add(sub.name)
            rules = [r for r in ("until_step", "until_truncated_below") if getattr(sub, r) is not None]
            if len(rules) == 2:
                raise PathError(("curriculum", i, "until_truncated_below"), "give until_step or until_truncated_below, not both")
            if i == last:
                if rules:
                    raise PathError(("curriculum", i, rules[0]), "the last sub-stage runs until the stage ends; remove its switch rule")
                continue
            if not rules:
                raise PathError(("curriculum", i), "every sub-stage but the last needs until_step or until_truncated_below")
            if sub.until_step is not None:
                if sub.until_step <= previous_step:
                    raise PathError(("curriculum", i, "until_step"), f"until_step must grow from one sub-stage to the next (previous: {previous_step})")
                if self.max_steps is not None and sub.until_step >= self.max_steps:
                    raise PathError(("curriculum", i, "until_step"), f"until_step {sub.until_step} leaves no steps for later sub-stages (max_steps: {self.max_steps})")
                previous_step = sub.until_step


Stage = Annotated[Union[SFTStage, RMStage, GRPOStage], Field(discriminator="kind")]
STAGE_KINDS = {"sft": SFTStage, "rm": RMStage, "grpo": GRPOStage}


# ---------------------------------------------------------------- the recipe


class Recipe(_Config):
    name: Name
    description: str = ""
    seed: int = 0
    base_model: BaseModelSpec
    output_dir: str | None = None  # None: runs/<name>
    eval: dict[Name, list[EvalSet]] = Field(default_factory=dict)
    stages: Annotated[list[Stage], Field(min_length=1)]

    @model_validator(mode="after")
    def _references(self) -> "Recipe":
        if self.output_dir is None:
            self.output_dir = f"runs/{self.name}"
        for suite, sets in self.eval.items():
            names = [s.name for s in sets]
            for j, set_name in enumerate(names):
                if set_name in names[:j]:
                    raise PathError(("eval", suite, j, "name"), f"duplicate eval set name '{set_name}'")
        earlier: list[str] = []
        for i, stage in enumerate(self.stages):
            if stage.name == BASE:
                raise PathError(("stages", i, "name"), f"'{BASE}' is reserved for the base model")
            if stage.name in earlier:
                raise PathError(("stages", i, "name"), f"duplicate stage name '{stage.name}'")
            if stage.parent is not None and stage.parent != BASE and stage.parent not in earlier:
                if stage.parent == stage.name:
                    why = "is this stage itself; a parent must be an earlier stage"
                elif any(s.name == stage.parent for s in self.stages[i + 1 :]):
                    why = "comes later; a parent must be an earlier stage"
                else:
                    why = "is not a stage"
                allowed = ", ".join([BASE, *earlier])
                raise PathError(("stages", i, "parent"), f"'{stage.parent}' {why}; allowed: {allowed}")
            for j, suite in enumerate(stage.eval or []):
                if suite not in self.eval:
                    known = ", ".join(self.eval) or "(none defined)"
                    raise PathError(("stages", i, "eval", j), f"unknown eval suite '{suite}'; defined: {known}")
            earlier.append(stage.name)
        return self

    def stage(self, name: str) -> SFTStage | RMStage | GRPOStage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    def parent_of(self, name: str) -> str:
        """The stage whose output ``name`` starts from, or ``base``."""
        index = [s.name for s in self.stages].index(name)
        stage = self.stages[index]
        if stage.parent is not None:
            return stage.parent
        return BASE if index == 0 else self.stages[index - 1].name

    def eval_suites_for(self, name: str) -> list[str]:
        chosen = self.stage(name).eval
        return list(self.eval) if chosen is None else list(chosen)

    @property
    def base_rope_scaling(self) -> RopeScaling | None:
        """The base model section's RoPE scaling (None for a bare path or hub id)."""
        return getattr(self.base_model, "rope_scaling", None)

    @property
    def base_model_source(self) -> str | None:
        """The base model's path or hub id; None when it is built with ``init``."""
        if isinstance(self.base_model, str):
            return self.base_model
        return getattr(self.base_model, "path", None)

    def rope_scaling_for(self, name: str) -> RopeScaling | None:
        """The RoPE scaling a stage trains with: its own, else its nearest ancestor's, else
        the base model section's. Checkpoints carry it in config.json, so a child stage
        keeps what its parent set."""
        while name != BASE:
            stage = self.stage(name)
            if stage.rope_scaling is not None:
                return stage.rope_scaling
            name = self.parent_of(name)
        return self.base_rope_scaling

    def stage_seed(self, name: str) -> int:
        seed = self.stage(name).seed
        return self.seed if seed is None else seed

    def resolved_stage(self, name: str) -> SFTStage | RMStage | GRPOStage:
        """The stage as its trainer takes it: the seed filled in from the recipe's."""
        return self.stage(name).model_copy(update={"seed": self.stage_seed(name)})

    def plan(self) -> list[StagePlan]:
        """Per stage: name, kind, parent and estimated steps (see ``cascade.config.plan``)."""
        return plan_recipe(self)
