"""The train stage under torchrun: two CPU processes (gloo), as the SageMaker entrypoint re-launches it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from osft.trainer.sagemaker import SageMakerLayout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun(layout: SageMakerLayout, processes: int = 2) -> tuple[int, list[dict], str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OSFT_CHECKPOINT_DIR", "WORLD_SIZE", "RANK")}
    env.update(OSFT_SAGEMAKER_ROOT=str(layout.root), OSFT_LOG_JSON="1", OSFT_PROGRESS="0", HF_HUB_OFFLINE="1")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=1",
        f"--nproc_per_node={processes}",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        "-m",
        "osft.trainer.sagemaker",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    events = []
    for line in output.splitlines():
        start = line.find('{"')
        if start >= 0:
            with contextlib.suppress(ValueError):  # a JSON-looking line that is not an event
                events.append(json.loads(line[start:]))
    return done.returncode, events, output


def _named(events: list[dict], name: str) -> list[dict]:
    return [e for e in events if e.get("event") == name]


def _job(tmp_path: Path, spec: str, run_dir: str) -> SageMakerLayout:
    """A SageMaker layout under ``tmp_path`` whose hyperparameters run the train stage of ``spec``."""
    layout = SageMakerLayout(tmp_path / "opt-ml")
    layout.hyperparameters.parent.mkdir(parents=True)
    layout.hyperparameters.write_text(json.dumps({"spec": spec, "run_dir": run_dir}))
    return layout


def _trained_on_rows_mined_once(layout: SageMakerLayout) -> tuple[list[dict], str, list[dict]]:
    """Runs the job and checks that rank 0 mined once and both ranks logged the same rows' digest."""
    code, events, output = _torchrun(layout)
    assert code == 0, output[-4000:]
    shared = _named(events, "training_rows_shared")
    assert sorted(e["rank"] for e in shared) == [0, 1], output[-4000:]
    assert len({e["digest"] for e in shared}) == 1
    assert len(_named(events, "hard_negatives_mined")) == 1
    return events, output, shared


@pytest.fixture(scope="module")
def sparse_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The home-built SPLADE model (MiniLM + MLM head), built before torchrun so no rank builds it."""
    from osft.trainer.sparse.home_built import build_minilm_splade

    return build_minilm_splade(tmp_path_factory.mktemp("models") / "minilm-splade", max_seq_length=64)


@pytest.mark.slow
def test_two_processes_train_on_the_same_rows_and_write_one_manifest(make_run, tmp_path: Path) -> None:
    training = {"max_steps": 2, "batch_size": 8, "checkpoint_steps": 1, "hard_negatives": {"enabled": True}}
    spec, run_dir = make_run(training=training)
    layout = _job(tmp_path, spec, run_dir)

    # Rank 0 mined the rows once; both ranks trained on exactly those (the cached ones).
    events, output, shared = _trained_on_rows_mined_once(layout)
    cache = Path(run_dir) / "train" / "_work" / "train_rows.jsonl"
    rows = [json.loads(line) for line in cache.read_text().splitlines()]
    columns = {name: [row[name] for row in rows] for name in rows[0]}
    assert hashlib.sha256(json.dumps(columns, sort_keys=True).encode()).hexdigest() == shared[0]["digest"]

    # One manifest, one model, one job result: only rank 0 saves.
    assert len(_named(events, "stage_completed")) == 1 and len(_named(events, "sagemaker_job_completed")) == 1
    manifest = json.loads((Path(run_dir) / "train" / "manifest.json").read_text())
    assert manifest["stats"]["hyperparameters"]["world_size"] == 2
    assert manifest["stats"]["steps"] == 2 and manifest["counts"]["train_rows"] == len(rows)
    assert (layout.model / "model.safetensors").exists()
    assert not (layout.output / "failure").exists()
    # Real DDP: each step took 2 x 8 rows (an epoch has half the steps of one process).
    state = json.loads((layout.checkpoints / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["epoch"] == pytest.approx(2 / (len(rows) // 16), abs=1e-3)
    assert (layout.checkpoints / "checkpoint-2" / "rng_state_1.pth").exists()

    # Killed after step 1's checkpoint: both ranks resume from rank 0's newest checkpoint, on the cached rows.
    (Path(run_dir) / "train" / "manifest.json").unlink()
    shutil.rmtree(layout.model)
    shutil.rmtree(layout.checkpoints / "checkpoint-2")
    code, events, output = _torchrun(layout)
    assert code == 0, output[-4000:]
    resumed = _named(events, "training_resumed")
    assert len(resumed) == 2 and {Path(e["checkpoint"]).name for e in resumed} == {"checkpoint-1"}
    assert {e["digest"] for e in _named(events, "training_rows_shared")} == {shared[0]["digest"]}
    assert not _named(events, "hard_negatives_mined")
    assert {e["step"] for e in _named(events, "train_progress")} == {2}, "one step from checkpoint 1, not more"
    assert json.loads((Path(run_dir) / "train" / "manifest.json").read_text())["stats"]["steps"] == 2
    assert (layout.model / "model.safetensors").exists()


@pytest.mark.slow
def test_sparse_processes_train_on_rank_0_rows_and_only_rank_0_saves(
    make_run, sparse_base: Path, tmp_path: Path
) -> None:
    """Doc-only sparse with hard negatives: mined once, the same rows on both ranks, one manifest and model."""
    model = {"base": str(sparse_base), "type": "sparse", "sparse_mode": "doc-only", "max_seq_length": 64}
    training = {"max_steps": 2, "batch_size": 4, "hard_negatives": {"enabled": True}}
    spec, run_dir = make_run(model=model, training=training)
    layout = _job(tmp_path, spec, run_dir)

    events, output, shared = _trained_on_rows_mined_once(layout)
    # Progress as JSON events from rank 0 alone (what SageMaker's metric definitions read), not printed dicts.
    losses = [e for e in _named(events, "train_progress") if "train_loss" in e]
    assert losses and "{'loss'" not in output

    assert len(_named(events, "stage_completed")) == 1 and len(_named(events, "sagemaker_job_completed")) == 1
    manifest = json.loads((Path(run_dir) / "train" / "manifest.json").read_text())
    hyperparameters = manifest["stats"]["hyperparameters"]
    assert hyperparameters["world_size"] == 2 and hyperparameters["gather_across_devices"] is True
    assert hyperparameters["hard_negatives"] == 1
    assert manifest["stats"]["steps"] == 2 and manifest["counts"]["rows"] == shared[0]["rows"]
    assert (Path(run_dir) / "train" / "model" / "modules.json").exists()
    assert (layout.model / "modules.json").exists() and list(layout.model.rglob("*.safetensors"))
    assert not (layout.output / "failure").exists()

    # Killed before the manifest: the rows kept in _work are trained on again, not mined again.
    (Path(run_dir) / "train" / "manifest.json").unlink()
    shutil.rmtree(layout.model)
    code, events, output = _torchrun(layout)
    assert code == 0, output[-4000:]
    assert not _named(events, "hard_negatives_mined") and len(_named(events, "training_rows_reused")) == 1
    assert [e["rows"] for e in _named(events, "training_rows_shared")] == [shared[0]["rows"]] * 2
    assert (Path(run_dir) / "train" / "manifest.json").exists() and (layout.model / "modules.json").exists()
