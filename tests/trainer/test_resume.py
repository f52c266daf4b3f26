"""A training run killed after a checkpoint resumes from it, without mining again, logging JSON events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import TrainerCallback

from osft.common.logging import configure_logging
from osft.common.stage import StageDefinition, read_manifest, run_stage
from osft.trainer.train_stage import STAGE, train_dense


class Killed(RuntimeError):
    pass


class KillAfterCheckpoint(TrainerCallback):
    """Dies right after the trainer has written checkpoint ``step`` (as a SIGKILL would, minus the signal)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            raise Killed(f"killed after checkpoint {state.global_step}")


def train_until_killed(spec: str, run_dir: str, *, after_checkpoint: int) -> None:
    """The train stage, killed right after it has written checkpoint ``after_checkpoint``."""
    dying = StageDefinition(
        name=STAGE.name,
        upstream=STAGE.upstream,
        spec_sections=STAGE.spec_sections,
        version=STAGE.version,
        run=lambda ctx: train_dense(ctx, callbacks=[KillAfterCheckpoint(after_checkpoint)]),
    )
    with pytest.raises(Killed):
        run_stage(dying, spec, run_dir)


def _events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_killed_training_resumes_from_the_last_checkpoint(make_run, capfd) -> None:
    training = {
        "max_steps": 4,
        "batch_size": 8,
        "checkpoint_steps": 2,
        "loss": "cached-mnrl",
        "mini_batch_size": 4,
        "hard_negatives": {"enabled": True, "range_min": 1, "range_max": 20, "margin": 0.0},
    }
    spec, run_dir = make_run(training=training)
    configure_logging(json_output=True)
    train_until_killed(spec, run_dir, after_checkpoint=2)
    checkpoints = Path(run_dir) / "train" / "_work" / "checkpoints"
    assert (checkpoints / "checkpoint-2" / "trainer_state.json").exists()
    assert read_manifest(run_dir, "train") is None
    first = _events(capfd.readouterr().err)

    manifest, skipped = run_stage(STAGE, spec, run_dir)
    captured = capfd.readouterr()
    second = _events(captured.err)
    assert not skipped and manifest.stats.steps == 4
    assert any(e["event"] == "hard_negatives_mined" for e in first)
    resumed = [e for e in second if e["event"] == "training_resumed"]
    assert resumed and resumed[0]["checkpoint"].endswith("checkpoint-2")
    assert any(e["event"] == "training_rows_reused" for e in second)
    assert not any(e["event"] == "hard_negatives_mined" for e in second)
    assert "train/base-corpus-embeddings.npy" in {r.path for r in manifest.outputs}, "kept for evaluate"
    progress = [e for e in second if e["event"] == "train_progress" and "train_loss" in e]
    assert progress and min(e["step"] for e in progress) > 2
    assert manifest.stats.hyperparameters["loss"] == "cached-mnrl"
    # The HF trainer's printed dicts are replaced by structured events: container logs stay JSON.
    assert "{'loss'" not in captured.out + captured.err


@pytest.mark.slow
def test_a_run_killed_after_its_last_checkpoint_keeps_it_without_training_a_step_more(make_run, capfd) -> None:
    from safetensors.torch import load_file

    spec, run_dir = make_run(training={"max_steps": 2, "batch_size": 8, "checkpoint_steps": 2})
    configure_logging(json_output=True)
    train_until_killed(spec, run_dir, after_checkpoint=2)
    last = Path(run_dir) / "train" / "_work" / "checkpoints" / "checkpoint-2"
    logged = json.loads((last / "trainer_state.json").read_text())["log_history"]
    capfd.readouterr()

    manifest, _ = run_stage(STAGE, spec, run_dir)
    events = _events(capfd.readouterr().err)
    assert manifest.stats.steps == 2, "the HF trainer would resume into a third step"
    assert manifest.stats.hyperparameters["precision"] == "fp32", "mixed precision 'auto' on CPUs"
    assert manifest.stats.final_loss == pytest.approx(logged[-1]["loss"])
    assert [e["steps"] for e in events if e["event"] == "training_already_finished"] == [2]
    assert not any(e["event"] == "train_progress" for e in events)
    kept, saved = (
        load_file(last / "model.safetensors"),
        load_file(Path(run_dir) / "train" / "model" / "model.safetensors"),
    )
    assert kept.keys() == saved.keys() and all(kept[k].equal(saved[k]) for k in kept)


def _checkpoint_ctx(tmp_path: Path, work_key: str, *, forced_restart: str | None = None):
    from types import SimpleNamespace

    from osft.common.logging import get_logger

    work = tmp_path / "stage" / "_work"
    work.mkdir(parents=True, exist_ok=True)
    (work / ".fingerprint").write_text(work_key)
    return SimpleNamespace(work=work, log=get_logger(), forced_restart=forced_restart)


def _fake_checkpoint(folder: Path, files=("trainer_state.json", "scheduler.pt", "optimizer.pt", "model.safetensors")):
    folder.mkdir(parents=True)
    for name in files:
        (folder / name).write_text("x")


def test_a_checkpoint_only_partly_restored_from_s3_is_skipped_for_the_previous_complete_one(tmp_path: Path) -> None:
    """SageMaker syncs checkpoint files one by one: the small trainer state can arrive without the weights."""
    from osft.trainer.hf_training import last_checkpoint

    _fake_checkpoint(tmp_path / "checkpoint-2")
    _fake_checkpoint(tmp_path / "checkpoint-4", files=("trainer_state.json", "model.safetensors"))
    _fake_checkpoint(tmp_path / "checkpoint-6", files=("trainer_state.json", "scheduler.pt", "optimizer.pt"))
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-2")
    _fake_checkpoint(tmp_path / "checkpoint-10")
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10"), "numeric, not lexical, order"


def test_checkpoints_of_another_run_in_a_shared_folder_are_discarded_not_resumed(tmp_path: Path, monkeypatch) -> None:
    from osft.trainer.hf_training import checkpoint_folder, last_checkpoint

    shared = tmp_path / "opt-ml-checkpoints"
    monkeypatch.setenv("OSFT_CHECKPOINT_DIR", str(shared))
    assert checkpoint_folder(_checkpoint_ctx(tmp_path, "run-a")) == shared
    _fake_checkpoint(shared / "checkpoint-3")
    assert last_checkpoint(checkpoint_folder(_checkpoint_ctx(tmp_path, "run-a"))) is not None  # same run: resumes
    assert last_checkpoint(checkpoint_folder(_checkpoint_ctx(tmp_path, "run-b"))) is None  # another run: discarded


def test_a_forced_rerun_discards_the_same_runs_checkpoints_in_a_folder_outside_work(tmp_path: Path, monkeypatch):
    """--force on a completed train stage wipes _work; an OSFT_CHECKPOINT_DIR would otherwise resume its end."""
    from osft.trainer.hf_training import checkpoint_folder, last_checkpoint

    shared = tmp_path / "opt-ml-checkpoints"
    monkeypatch.setenv("OSFT_CHECKPOINT_DIR", str(shared))
    checkpoint_folder(_checkpoint_ctx(tmp_path, "run-a"))
    _fake_checkpoint(shared / "checkpoint-8")

    assert last_checkpoint(checkpoint_folder(_checkpoint_ctx(tmp_path, "run-a", forced_restart="1"))) is None
    # The forced run's own checkpoints are resumed when it is interrupted; the next forced run starts over.
    _fake_checkpoint(shared / "checkpoint-2")
    assert last_checkpoint(checkpoint_folder(_checkpoint_ctx(tmp_path, "run-a", forced_restart="1"))) is not None
    assert last_checkpoint(checkpoint_folder(_checkpoint_ctx(tmp_path, "run-a", forced_restart="2"))) is None


@pytest.mark.slow
def test_mined_rows_and_checkpoints_are_synced_to_the_run_folder(make_run, monkeypatch) -> None:
    """An S3 run folder keeps _work only through save_work: a restarted job must find its rows and checkpoints."""
    from osft.common.stage import StageContext
    from osft.trainer.hf_training import last_checkpoint
    from osft.trainer.train_stage import MINED_FILE

    synced: list[tuple[bool, str | None]] = []

    def save_work(self) -> None:
        synced.append(((self.work / MINED_FILE).exists(), last_checkpoint(self.work / "checkpoints")))

    monkeypatch.setattr(StageContext, "save_work", save_work)
    monkeypatch.delenv("OSFT_CHECKPOINT_DIR", raising=False)
    training = {"max_steps": 1, "batch_size": 4, "checkpoint_steps": 1, "hard_negatives": {"enabled": True}}
    spec, run_dir = make_run(training=training)
    run_stage(STAGE, spec, run_dir)
    assert synced and synced[0] == (True, None), "rows synced once mined, before training"
    assert synced[-1][1] is not None and synced[-1][1].endswith("checkpoint-1"), "synced after the checkpoint"
