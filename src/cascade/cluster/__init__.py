"""The cluster path: a GRPO stage run as a verl (0.9.1) job (docs/cluster.md).

- ``verl_data``:   prompt records -> verl's RL parquet, with each prompt's mode baked in;
- ``verl_config``: a stage (or curriculum sub-stage) -> verl trainer overrides;
- ``verl_reward``: our verifiers behind verl's custom reward-function hook;
- ``launch``:      the bash script that exports data, runs verl, merges the checkpoint.

verl itself is never imported here: it is an optional extra installed on the cluster only.
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
