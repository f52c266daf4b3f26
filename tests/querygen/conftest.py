"""Fixtures for the querygen tests: tiny run folders built by the real extract stage, fake AWS."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from osft.common.jsonl import write_jsonl
from osft.common.manifests import ExtractManifest, ExtractStats, Timings
from osft.common.stage import run_stage
from osft.querygen.stage import STAGE as QUERYGEN

TOPICS = [
    "glacier melt rates in the northern alps",
    "antibiotic resistance in hospital wastewater",
    "sleep duration and memory consolidation",
    "soil microbes that fix atmospheric nitrogen",
    "battery cathodes made from iron phosphate",
    "coral bleaching after marine heatwaves",
    "vitamin d levels and bone fractures",
    "urban heat islands and tree canopy cover",
    "protein folding errors in neurodegeneration",
    "wind turbine wakes over offshore farms",
    "gut bacteria and insulin sensitivity",
    "volcanic ash and regional rainfall",
]


def make_docs(n: int) -> list[dict[str, Any]]:
    """``n`` distinct abstracts; each carries ``DOCID <id>`` so fakes can tell which document a prompt holds."""
    docs = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        docs.append(
            {
                "id": f"d{i}",
                "title": f"A study of {topic} (cohort {i})",
                "text": (
                    f"DOCID d{i}. We measured {topic} across {10 + i} sites over {3 + i % 5} seasons. "
                    f"Our results show that {topic} changed markedly in cohort {i} compared with earlier surveys. "
                    f"These findings suggest that monitoring of {topic.split()[0]} should continue in region {i}."
                ),
            }
        )
    return docs


def write_spec(folder: Path, querygen: dict[str, Any], **sections: Any) -> Path:
    """A spec over a local JSONL corpus in ``folder`` (the extract output is written directly)."""
    spec = {"name": "qg-test", "source": {"type": "local", "path": "corpus.jsonl"}, "querygen": querygen, **sections}
    path = folder / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def write_extract_output(run_dir: Path, docs: list[dict[str, Any]], pairs: list[dict[str, Any]] | None = None) -> None:
    """What the extract stage hands to querygen: a corpus shard, optional pairs, and its manifest last."""
    stage = run_dir / "extract"
    write_jsonl(stage / "docs-00000.jsonl.gz", docs)
    if pairs is not None:
        write_jsonl(stage / "pairs.jsonl", pairs)
    now = datetime.now(UTC)
    manifest = ExtractManifest(
        stage="extract",
        run_id="qg-test",
        fingerprint="extract-" + str(len(docs)),
        timings=Timings(started_at=now, finished_at=now, seconds=0.0),
        stats=ExtractStats(
            source="local:corpus.jsonl",
            records_read=len(docs),
            documents_written=len(docs),
            shards=["docs-00000.jsonl.gz"],
            pairs_file="pairs.jsonl" if pairs is not None else None,
            pairs_written=len(pairs or []),
        ),
    )
    (stage / "manifest.json").write_text(manifest.model_dump_json(indent=2))


@pytest.fixture
def run_folder(tmp_path: Path) -> Callable[..., tuple[str, str]]:
    """Factory: a spec and a run folder whose extract stage has completed; returns (spec path, run dir)."""

    def build(
        querygen: dict[str, Any], docs: list[dict[str, Any]], pairs: list[dict[str, Any]] | None = None, **sections: Any
    ) -> tuple[str, str]:
        spec = write_spec(tmp_path, querygen, **sections)
        run_dir = tmp_path / "run"
        write_extract_output(run_dir, docs, pairs)
        return str(spec), str(run_dir)

    return build


def run_querygen(spec: str, run_dir: str, force: bool = False):
    """The querygen stage through ``run_stage``, as ``osft run`` runs it; returns the manifest."""
    manifest, _ = run_stage(QUERYGEN, spec, run_dir, force=force)
    return manifest


def read_pairs(run_dir: str) -> list[dict[str, Any]]:
    rows = []
    for name in ("train.jsonl", "heldout.jsonl"):
        path = Path(run_dir) / "querygen" / name
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and a region, so boto3 never reaches AWS."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("OSFT_S3_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield


@pytest.fixture
def fake_converse(monkeypatch: pytest.MonkeyPatch, aws_env: None) -> Callable[..., Any]:
    """Factory: ``fake_converse(**options)`` → a FakeConverse attached to every bedrock-runtime client querygen makes."""
    from fake_bedrock import FakeConverse

    from osft.querygen import bedrock_clients

    real = bedrock_clients.runtime_client

    def install(**options: Any) -> FakeConverse:
        fake = FakeConverse(**options)
        monkeypatch.setattr(bedrock_clients, "runtime_client", lambda *a, **k: fake.attach(real(*a, **k)))
        return fake

    return install
