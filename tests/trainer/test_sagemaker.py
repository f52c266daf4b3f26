"""The SageMaker training-container contract, run with /opt/ml laid out in a temp folder."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from osft.trainer.cli import train_cli
from osft.trainer.progress_log import SAGEMAKER_METRIC_DEFINITIONS
from osft.trainer.sagemaker import SageMakerLayout, read_hyperparameters, torchrun_command


def _layout(root: Path, hyperparameters: dict) -> SageMakerLayout:
    layout = SageMakerLayout(root)
    layout.hyperparameters.parent.mkdir(parents=True)
    layout.hyperparameters.write_text(json.dumps(hyperparameters))
    return layout


@pytest.mark.slow
def test_train_without_a_command_runs_a_sagemaker_training_job(make_run, tmp_path: Path, monkeypatch) -> None:
    training = {
        "max_steps": 2,
        "batch_size": 8,
        "checkpoint_steps": 1,
        "lora": {"enabled": True, "r": 4, "alpha": 8},
    }
    spec, run_dir = make_run(training=training)
    # SageMaker passes every hyperparameter as a string; the SDK JSON-quotes them.
    layout = _layout(tmp_path / "opt-ml", {"spec": json.dumps(spec), "run_dir": run_dir})
    monkeypatch.setenv("OSFT_SAGEMAKER_ROOT", str(layout.root))
    monkeypatch.setenv("OSFT_LOG_JSON", "1")
    monkeypatch.delenv("OSFT_CHECKPOINT_DIR", raising=False)

    result = CliRunner().invoke(train_cli, [])
    assert result.exit_code == 0, result.output

    assert (layout.model / "modules.json").exists() and (layout.model / "model.safetensors").exists()
    assert not (layout.model / "adapter_config.json").exists()  # LoRA merged: a plain model
    assert (layout.checkpoints / "checkpoint-2" / "trainer_state.json").exists()
    metrics = json.loads((layout.output / "metrics.json").read_text())
    assert metrics["stage"] == "train" and metrics["stats"]["steps"] == 2
    assert metrics["stats"]["hyperparameters"]["lora_layers_merged"] > 0
    assert (layout.output / "data" / "metrics.json").exists()
    assert not (layout.output / "failure").exists()
    assert "OSFT_CHECKPOINT_DIR" not in os.environ  # set for the job only
    loss_regex = next(d["Regex"] for d in SAGEMAKER_METRIC_DEFINITIONS if d["Name"] == "train:loss")
    losses = [float(v) for v in re.findall(loss_regex, result.output)]
    assert losses and all(v >= 0 for v in losses)


def test_a_failed_job_writes_the_failure_file_and_exits_non_zero(tmp_path: Path, monkeypatch) -> None:
    layout = _layout(tmp_path / "opt-ml", {"epochs": "1"})
    monkeypatch.setenv("OSFT_SAGEMAKER_ROOT", str(layout.root))
    result = CliRunner().invoke(train_cli, [])
    assert result.exit_code == 2
    failure = (layout.output / "failure").read_text()
    assert "hyperparameter 'spec'" in failure and "run_dir" in failure


def test_hyperparameters_are_read_plain_or_json_quoted(tmp_path: Path) -> None:
    layout = _layout(tmp_path, {"spec": '"s3://bucket/spec.json"', "run_dir": "s3://bucket/runs/a", "n": 3})
    assert read_hyperparameters(layout) == {"spec": "s3://bucket/spec.json", "run_dir": "s3://bucket/runs/a", "n": "3"}


def test_several_hosts_or_gpus_relaunch_under_torchrun() -> None:
    config = {"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]}
    command = torchrun_command(config, gpus=4, argv=[])
    assert command is not None and command[:6] == [
        "torchrun",
        "--nnodes=2",
        "--nproc_per_node=4",
        "--node_rank=1",
        "--master_addr=algo-1",
        "--master_port=29500",
    ]
    assert torchrun_command({"current_host": "algo-1", "hosts": ["algo-1"]}, gpus=0, argv=[]) is None
    assert torchrun_command({}, gpus=2, argv=[])[1:3] == ["--nnodes=1", "--nproc_per_node=2"]
