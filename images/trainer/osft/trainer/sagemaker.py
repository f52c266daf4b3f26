"""The SageMaker training-container contract, on the same code path as a local run.

SageMaker starts the image as ``docker run IMAGE train``. ``train`` with no subcommand then:

- reads ``<root>/input/config/hyperparameters.json``: ``spec`` (run spec URI) and ``run_dir``
  (run folder URI), plus optional ``stage`` (``train``, the default, or ``evaluate``).
  SageMaker passes every value as a string, sometimes JSON-quoted; both forms are accepted;
- falls back to the channels ``<root>/input/data/spec/`` (one ``.json`` file) and
  ``<root>/input/data/run/`` (a run folder holding ``extract/`` and ``querygen/``);
- keeps checkpoints in ``<root>/checkpoints``, which managed spot training syncs to S3 and
  restores after an interruption, so a restarted job resumes from the newest checkpoint;
- copies the fine-tuned model to ``<root>/model`` (SageMaker uploads it as ``model.tar.gz``)
  and writes ``metrics.json`` to ``<root>/output`` and ``<root>/output/data``;
- logs metrics as ``train_loss=...``-style keys (``progress_log.SAGEMAKER_METRIC_DEFINITIONS``);
- on error writes the message to ``<root>/output/failure`` (SageMaker shows it as the job's
  FailureReason) and exits non-zero.

``<root>`` is ``/opt/ml`` unless ``OSFT_SAGEMAKER_ROOT`` (or ``SM_ROOT``) says otherwise.

With ``instance_count > 1`` (several hosts in ``resourceconfig.json``) or several GPUs, the job
re-launches itself under ``torchrun`` so the HF trainer runs DDP and in-batch negatives are
gathered across devices.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osft.common.errors import OsftError, SpecError
from osft.common.logging import get_logger
from osft.common.stage import StageDefinition, run_stage
from osft.common.storage import Location, is_s3, join

ROOT_ENV_VARS = ("OSFT_SAGEMAKER_ROOT", "SM_ROOT")
DEFAULT_ROOT = "/opt/ml"
TORCHRUN_PORT = 29500


@dataclass(frozen=True)
class SageMakerLayout:
    """Where SageMaker puts a training job's inputs and collects its outputs."""

    root: Path

    @classmethod
    def from_env(cls) -> SageMakerLayout:
        root = next((os.environ[v] for v in ROOT_ENV_VARS if os.environ.get(v)), DEFAULT_ROOT)
        return cls(Path(root))

    @property
    def hyperparameters(self) -> Path:
        return self.root / "input" / "config" / "hyperparameters.json"

    @property
    def resource_config(self) -> Path:
        return self.root / "input" / "config" / "resourceconfig.json"

    def channel(self, name: str) -> Path:
        return self.root / "input" / "data" / name

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"


def _plain(value: Any) -> str:
    """SageMaker hyperparameter values are strings, often JSON-encoded (``"\\"s3://b/k\\""``)."""
    text = value if isinstance(value, str) else json.dumps(value)
    if text.startswith('"'):
        try:
            decoded = json.loads(text)
        except ValueError:
            return text
        return decoded if isinstance(decoded, str) else text
    return text


def read_hyperparameters(layout: SageMakerLayout) -> dict[str, str]:
    path = layout.hyperparameters
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise SpecError(str(path), [f"not valid JSON ({exc})"]) from None
    if not isinstance(data, dict):
        raise SpecError(str(path), ["expected a JSON object of hyperparameters"])
    return {str(k): _plain(v) for k, v in data.items()}


def resolve_job_inputs(layout: SageMakerLayout, hyperparameters: dict[str, str]) -> tuple[str, str]:
    """(spec URI, run folder URI) from the hyperparameters, else from the ``spec`` and ``run`` channels."""
    spec = hyperparameters.get("spec")
    if not spec and layout.channel("spec").is_dir():
        candidates = sorted(layout.channel("spec").glob("*.json"))
        spec = str(candidates[0]) if len(candidates) == 1 else None
    run_dir = hyperparameters.get("run_dir") or (str(layout.channel("run")) if layout.channel("run").is_dir() else None)
    problems = []
    if not spec:
        problems.append("spec: give the run spec URI as hyperparameter 'spec' or one .json file in channel 'spec'")
    if not run_dir:
        problems.append("run_dir: give the run folder URI as hyperparameter 'run_dir' or a channel named 'run'")
    if problems:
        raise SpecError(str(layout.hyperparameters), problems)
    return spec, run_dir  # type: ignore[return-value]


def torchrun_command(resource_config: dict[str, Any], gpus: int, argv: list[str]) -> list[str] | None:
    """The ``torchrun`` command that re-launches this job for DDP, or None for a single process.

    One process per GPU on each host; host 0 of ``resourceconfig.json`` is the rendezvous.
    """
    hosts = list(resource_config.get("hosts") or [])
    nodes = max(1, len(hosts))
    per_node = max(1, gpus)
    if nodes * per_node <= 1:
        return None
    current = resource_config.get("current_host", hosts[0] if hosts else "")
    command = [
        "torchrun",
        f"--nnodes={nodes}",
        f"--nproc_per_node={per_node}",
        f"--node_rank={hosts.index(current) if current in hosts else 0}",
        f"--master_addr={hosts[0] if hosts else '127.0.0.1'}",
        f"--master_port={TORCHRUN_PORT}",
        "-m",
        "osft.trainer.sagemaker",
        *argv,
    ]
    return command


def _publish_model(run_dir: str, layout: SageMakerLayout, stage_name: str, model_dir: str) -> None:
    layout.model.mkdir(parents=True, exist_ok=True)
    cache = layout.root / "tmp-fetch"
    source = Location(join(run_dir, model_dir)).fetch(cache)
    shutil.copytree(source, layout.model, dirs_exist_ok=True)
    exports = Location(join(run_dir, stage_name, "exports"))
    if not is_s3(run_dir) and exports.exists():
        shutil.copytree(exports.local, layout.model / "exports", dirs_exist_ok=True)
    shutil.rmtree(cache, ignore_errors=True)


def _write_metrics(layout: SageMakerLayout, metrics: dict[str, Any]) -> None:
    for folder in (layout.output, layout.output / "data"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))


def run_job(layout: SageMakerLayout, definitions: dict[str, StageDefinition]) -> int:
    """Run one stage as a SageMaker training job; returns the process exit code."""
    log = get_logger(stage="sagemaker")
    try:
        hyperparameters = read_hyperparameters(layout)
        stage_name = hyperparameters.get("stage", "train")
        if stage_name not in definitions:
            raise SpecError(str(layout.hyperparameters), [f"stage: expected one of {sorted(definitions)}"])
        spec_uri, run_dir = resolve_job_inputs(layout, hyperparameters)
        if "WORLD_SIZE" not in os.environ and stage_name == "train":
            relaunch = _relaunch_command(layout)
            if relaunch:
                log.info("ddp_relaunch", command=relaunch)
                return subprocess.call(relaunch)
        layout.checkpoints.mkdir(parents=True, exist_ok=True)
        log.info("sagemaker_job_started", stage=stage_name, spec=spec_uri, run_dir=run_dir, root=str(layout.root))
        with _environment(OSFT_CHECKPOINT_DIR=str(layout.checkpoints)):
            manifest, skipped = run_stage(definitions[stage_name], spec_uri, run_dir, force=False)
        stats = manifest.stats.model_dump(mode="json")
        if stage_name == "train":
            _publish_model(run_dir, layout, stage_name, stats["model_dir"])
        metrics = {"stage": stage_name, "skipped": skipped, "counts": manifest.counts, "stats": stats}
        _write_metrics(layout, metrics)
        if stage_name == "train":
            log.info("sagemaker_job_completed", train_final_loss=stats.get("final_loss"), steps=stats.get("steps"))
        else:
            log.info("sagemaker_job_completed", accepted=stats.get("accepted"), gain=stats.get("gain"))
        return 0
    except OsftError as exc:
        log.debug("error_details", exc_info=True)
        _write_failure(layout, exc.render())
        print(f"error: {exc.render()}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # every failure must leave a failure file for SageMaker
        log.error("sagemaker_job_failed", exc_info=True)
        _write_failure(layout, f"{exc.__class__.__name__}: {exc}")
        return 1


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of the block (the stage reads them), then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _relaunch_command(layout: SageMakerLayout) -> list[str] | None:
    config: dict[str, Any] = {}
    if layout.resource_config.exists():
        config = json.loads(layout.resource_config.read_text())
    try:
        import torch

        gpus = torch.cuda.device_count()
    except ImportError:
        gpus = 0
    return torchrun_command(config, gpus, [])


def _write_failure(layout: SageMakerLayout, message: str) -> None:
    layout.output.mkdir(parents=True, exist_ok=True)
    # SageMaker shows the first 1024 characters as the job's FailureReason.
    (layout.output / "failure").write_text(message[:1024])


def main() -> None:
    """Entry point for ``python -m osft.trainer.sagemaker`` (what torchrun launches)."""
    from osft.common.logging import configure_logging
    from osft.trainer.evaluate_stage import STAGE as EVALUATE_STAGE
    from osft.trainer.train_stage import STAGE as TRAIN_STAGE

    configure_logging()
    sys.exit(run_job(SageMakerLayout.from_env(), {"train": TRAIN_STAGE, "evaluate": EVALUATE_STAGE}))


if __name__ == "__main__":
    main()
