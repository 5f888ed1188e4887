"""Epoch-level filtering (``epoch_filter``, paper section 4.1.2) on verl 0.9.1.

Locally, ``cascade.trainers.rollout.PromptStream`` hands out prompts pass after pass; each new
pass's pool comes from ``cascade.algo.filters.epoch_pool`` with every prompt's latest outcome
(all-correct / all-wrong / mixed over its group), so solved and hopeless prompts leave the pool and
come back with ``readd_prob_all_correct`` / ``readd_prob_all_wrong``. On verl the same object does
the same job, in the trainer's process:

- **the prompts**: ``EpochFilterDataset`` (verl's ``data.custom_cls``) is verl's own
  ``RLHFDataset`` whose item ``i`` is the next prompt of a ``PromptStream`` over its rows (the local
  trainer's class: the same pools, the same per-pass shuffle, the same moment of crossing into a
  new pass). Its length stays fixed (the rows, rounded down to whole training batches), so
  verl's sampler (sequential: ``data.shuffle=false``; the stream shuffles), its step counts and its
  ``drop_last`` see a plain dataset, while the stream behind it runs through shorter passes as the
  pool shrinks. One verl "epoch" is therefore ``len // train_batch_size`` steps of the stream, not
  one pass of the pool.
- **the outcomes**: ``EpochFilterReplayBuffer`` (verl's ``trainer.v1.sampler.custom_sampler``, our
  ``CascadeReplayBuffer``) sees every group as soon as it has finished, before verl trains on it,
  evicts it (dynamic filtering) or discards it as surplus: it reads each trajectory's ``acc`` (the
  verifier's verdict our reward hook returns) and its prompt's record ``id`` from TransferQueue and
  hands the group's outcome (``classify_group``) to the dataset. verl builds both objects in the
  trainer's process (``PPOTrainer.__init__`` and ``_init_dataloader``); the dataloader must not
  copy the dataset into worker processes, so these stages run with ``data.dataloader_num_workers=0``
  (the dataset refuses to run in a worker).
- **resuming**: the dataset is ``Stateful`` for torchdata's ``StatefulDataLoader``, so verl's own
  checkpoint (``global_step_N/data.pt``, written with the step) holds the stream: pass number, the
  pass's order and position, and every outcome so far; verl's resume restores it before the first
  prompt is drawn.

This module imports verl and torch: it is loaded on the cluster only.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import transfer_queue as tq
from torch.utils.data import get_worker_info
from verl.utils.dataset.rl_dataset import RLHFDataset

from cascade.algo.filters import GroupVerdict, classify_group
from cascade.cluster.verl_overlong import CascadeReplayBuffer
from cascade.errors import CascadeError
from cascade.trainers.rollout import PromptStream

# The data-config key (added with Hydra's "++") that carries the re-add probabilities.
SETTINGS_KEY = "cascade_epoch_filter"
# Every live dataset of this process; the replay buffer reports outcomes to each (verl also builds
# a validation dataset from the same class; it is never iterated with validation off).
_DATASETS: weakref.WeakSet = weakref.WeakSet()


def report_verdict(record_id: str, verdict: GroupVerdict) -> None:
    """Give every epoch-filter dataset of this process a prompt's latest outcome."""
    for dataset in list(_DATASETS):
        dataset.record_verdict(record_id, verdict)


class EpochFilterDataset(RLHFDataset):
    """verl's RL dataset whose items follow the local trainer's ``PromptStream`` with
    ``epoch_filter`` on (see the module docstring). ``config`` is verl's ``data`` config: ``seed``
    (the stage seed), ``train_batch_size`` and ``cascade_epoch_filter``
    (``readd_prob_all_correct``, ``readd_prob_all_wrong``)."""

    def __init__(self, data_files: Any, tokenizer: Any, config: Any, processor: Any = None, max_samples: int = -1):
        super().__init__(data_files, tokenizer, config, processor=processor, max_samples=max_samples)
        settings = config.get(SETTINGS_KEY)
        if not settings:
            raise CascadeError(f"EpochFilterDataset needs data.{SETTINGS_KEY} (readd_prob_all_correct, "
                               "readd_prob_all_wrong): cascade's verl overrides set it", field=f"data.{SETTINGS_KEY}")
        rows = len(self.dataframe)
        batch = int(config.train_batch_size)
        if rows < batch:
            raise CascadeError(f"epoch_filter: {rows} prompts left after verl's length filter, fewer than one "
                               f"training batch ({batch})", field="data.train_batch_size")
        self._rows_of: dict[str, list[int]] = defaultdict(list)
        for position, info in enumerate(self.dataframe["extra_info"]):
            record_id = (info or {}).get("id")
            if record_id in (None, ""):
                raise CascadeError(f"row {position} has no extra_info.id: export the data with "
                                   "cascade.cluster.verl_data.export_verl_parquet", field="extra_info.id")
            self._rows_of[str(record_id)].append(position)
        # The stream's prompt ids are row positions: epoch_pool draws one number per id in order,
        # so the rows' order (the export's, which is the local trainer's record order) is kept.
        self.stream = PromptStream(
            [{"id": position} for position in range(rows)],
            seed=int(config.get("seed") or 0),
            epoch_filter=True,
            readd_prob_all_correct=float(settings["readd_prob_all_correct"]),
            readd_prob_all_wrong=float(settings["readd_prob_all_wrong"]),
        )
        self._length = rows - rows % batch
        self._served = 0  # items handed to verl's sampler so far (it asks for 0, 1, ... each pass)
        _DATASETS.add(self)

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, item: int) -> dict:
        if get_worker_info() is not None:
            raise CascadeError("epoch_filter: the dataset must run in verl's trainer process, where the replay "
                               "buffer reports outcomes: set data.dataloader_num_workers=0",
                               field="data.dataloader_num_workers")
        expected = self._served % self._length
        if item != expected:
            raise CascadeError(f"epoch_filter: verl's sampler asked for item {item}, expected {expected}: the "
                               "stream shuffles itself and needs the sequential sampler (data.shuffle=false)",
                               field="data.shuffle")
        position = self.stream.take(1)[0]["id"]
        self._served += 1
        return super().__getitem__(position)

    def record_verdict(self, record_id: str, verdict: GroupVerdict) -> None:
        """The latest outcome of the prompt with record id ``record_id`` (every row that holds it)."""
        for position in self._rows_of.get(str(record_id), ()):
            self.stream.record_verdict({"id": position}, verdict)

    @property
    def epoch(self) -> int:
        """The stream's pass (the local trainer's epoch), 0 first."""
        return self.stream.epoch

    def state_dict(self) -> dict[str, Any]:
        """The stream and the position in verl's pass (saved in verl's ``data.pt``)."""
        return {"stream": self.stream.state_dict(), "served": self._served, "rows": len(self.stream.ids)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if int(state["rows"]) != len(self.stream.ids):
            # Positions index the rows: another row set (data, or the prompt budget's filter) breaks them.
            raise CascadeError(f"epoch_filter: the checkpoint's stream covers {state['rows']} rows, this job's data "
                               f"has {len(self.stream.ids)}: resume with the same data and max_prompt_len",
                               field="data.train_files")
        self.stream.load_state_dict(state["stream"])
        self._served = int(state["served"])


class EpochFilterReplayBuffer(CascadeReplayBuffer):
    """Our replay buffer (``CascadeReplayBuffer``: verl's, with the arguments verl gives its own)
    that reports each finished group's outcome to the epoch-filter dataset before verl samples,
    evicts or discards the group."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._judged: set[str] = set()  # finished groups already reported (uids still in TransferQueue)

    def _sync_metadata_from_transfer_queue(self) -> None:
        super()._sync_metadata_from_transfer_queue()
        self._report_finished_groups("train")

    def _report_finished_groups(self, partition_id: str) -> None:
        finished = self.finished_keys[partition_id]
        self._judged &= finished  # verl cleared the others
        new = finished - self._judged
        if not new:
            return
        keys = [key for key in self.partitions[partition_id] if key.split("_")[0] in new]
        verdicts: dict[str, list[bool]] = defaultdict(list)
        record_ids: dict[str, str] = {}
        if keys:
            data = tq.kv_batch_get(keys=keys, partition_id=partition_id, select_fields=["extra_info", "extra_fields"])
            for key, info, extra in zip(keys, list(data["extra_info"]), list(data["extra_fields"]), strict=True):
                info, extra = getattr(info, "data", info), getattr(extra, "data", extra)
                reward_info = extra.get("reward_extra_info", {}) if isinstance(extra, Mapping) else {}
                if "acc" not in reward_info or not isinstance(info, Mapping) or "id" not in info:
                    raise RuntimeError(f"trajectory {key} has no reward 'acc' or no extra_info.id: epoch_filter "
                                       "needs cascade's reward hook and data export")
                uid = key.split("_")[0]
                verdicts[uid].append(float(reward_info["acc"]) > 0.0)
                record_ids[uid] = str(info["id"])
        for uid, passed in verdicts.items():
            report_verdict(record_ids[uid], classify_group(passed))
        self._judged |= new
