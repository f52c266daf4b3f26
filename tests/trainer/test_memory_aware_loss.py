"""On a machine too small for one plain MNRL step, the train stage switches to cached-mnrl and says why."""

from __future__ import annotations

import pytest

from osft.common.stage import read_manifest, run_stage
from osft.trainer.train_stage import STAGE

pytestmark = pytest.mark.slow


def test_a_step_too_big_for_memory_trains_in_mini_batches(make_run, monkeypatch) -> None:
    import osft.trainer.train_stage as train_stage

    monkeypatch.setattr(train_stage, "memory_bytes", lambda: 64 * 2**20)  # 64 MiB
    monkeypatch.setattr(train_stage, "on_gpu", lambda: False)  # the rule is for CPUs; hold on a GPU host too
    spec, run_dir = make_run(training={"max_steps": 1, "batch_size": 8})
    run_stage(STAGE, spec, run_dir)
    stats = read_manifest(run_dir, "train").stats
    assert stats.hyperparameters["loss"] == "cached-mnrl"
    assert "mini-batches of" in stats.chosen_because["loss"] and "0.062 GiB here" in stats.chosen_because["loss"]
    assert stats.final_loss is not None and stats.final_loss > 0
