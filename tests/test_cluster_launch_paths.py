"""The hand-run launch script (``python -m cascade.cluster.launch script``) reads a reward
model named by stage from the run directory it is given, as ``cascade run`` does."""

from __future__ import annotations

from cascade.cluster.launch import main


def test_a_reward_model_named_by_stage_is_read_from_the_given_run_dir(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["script", "nemotron-cascade-8b", "rlhf", "--run-dir", str(run),
                 "--set", "stages.rlhf.reward_model=sft-1"]) == 0
    script = capsys.readouterr().out
    assert f"reward_model.model_path={run}/stages/01-sft-1/final" in script
