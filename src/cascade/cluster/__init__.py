"""The cluster path: every stage of a recipe as a job of an existing engine (docs/cluster.md).

- ``verl_data``:    prompt records -> verl's RL parquet, with each prompt's mode baked in;
- ``verl_config``:  a GRPO stage (or curriculum sub-stage) -> verl PPO trainer overrides;
- ``train_config``: SFT stages -> verl SFT trainer overrides; RM stages -> TRL RewardConfig words;
- ``verl_reward``:  our verifiers (and verl's served reward model) behind verl's reward hook;
- ``verl_manager``: verl reward manager doing the batch step of ``rlhf`` / ``if_thinking`` (imports verl);
- ``verl_judge``:   the ``swe`` stage's served judge, called from the reward hook in verl's reward workers;
- ``verl_overlong``: overlong masking as a verl advantage estimator and replay buffer (imports verl);
- ``verl_epoch_filter``: epoch-level filtering as a verl dataset class fed by the replay buffer (imports verl);
- ``trl_rm``:       the RM job's entry point (TRL's RewardTrainer; imports TRL);
- ``jobs``:         the job script of a stage; ``engine_run``: ``cascade run --engine verl``;
- ``launch``:       the hand-run bash script for one GRPO stage.

verl and TRL are never imported by this package's top level: they are optional extras.
``launch`` is not re-exported, so ``python -m cascade.cluster.launch`` runs it cleanly.
"""

from cascade.cluster.verl_config import (
    VERL_VERSION,
    VerlPhase,
    hydra_args,
    stage_phases,
    stage_to_verl_overrides,
    verl_gaps,
)
from cascade.cluster.verl_data import bake_mode, export_verl_parquet, verl_chat_template, verl_rows
from cascade.cluster.verl_reward import compute_score

__all__ = [
    "VERL_VERSION",
    "VerlPhase",
    "bake_mode",
    "compute_score",
    "export_verl_parquet",
    "hydra_args",
    "stage_phases",
    "stage_to_verl_overrides",
    "verl_chat_template",
    "verl_gaps",
    "verl_rows",
]
