"""Against a real OpenSearch cluster with ML Commons: skipped unless ``OPENSEARCH_URL`` is set.

    OPENSEARCH_URL=https://localhost:9200 OPENSEARCH_USERNAME=admin OPENSEARCH_PASSWORD=... \\
    OPENSEARCH_VERIFY_CERTS=0 HF_HUB_OFFLINE=1 .venv/bin/pytest tests/registrar/test_live.py -m live

Exports the packaged MiniLM as a real TorchScript ML Commons zip (the trainer's exporter),
registers it as a local model in chunks, deploys it and checks ``_predict`` against the local
model; a second run must reuse the same model id, and ``register cleanup`` must undeploy and
delete it. A second test runs the search check with a ``hybrid`` query through the search pipeline
``deploy.opensearch.hybrid_search`` creates (the neural-search plugin, 2.10+); a third, the passage-vector
layout of ``deploy.opensearch.passage_vectors`` (``text_chunking``: 2.13+). The cluster needs
``plugins.ml_commons.only_run_on_ml_node: false`` when it has no ML node.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from osft.common.stage import run_stage
from osft.registrar.cleanup import cleanup_run
from osft.registrar.stage import STAGE

pytestmark = [pytest.mark.live, pytest.mark.skipif("OPENSEARCH_URL" not in os.environ, reason="OPENSEARCH_URL not set")]


def live_section(**overrides) -> dict:
    connection: dict = {
        "url": os.environ["OPENSEARCH_URL"],
        "verify_certs": os.environ.get("OPENSEARCH_VERIFY_CERTS", "1") != "0",
    }
    if os.environ.get("OPENSEARCH_USERNAME"):
        connection["auth"] = {
            "type": "basic",
            "username": os.environ["OPENSEARCH_USERNAME"],
            "password_env": "OPENSEARCH_PASSWORD",
        }
    return {
        "connection": connection,
        "mode": "local",
        "local_upload": "chunks",
        "model_group": "osft-live-test",
        "model_name": "osft-live-test-minilm",
        "poll_interval_s": 2,
        **overrides,
    }


def exported_run(run_folder, minilm, minilm_dir, tmp_path, section: dict) -> tuple[Path, Path]:
    """A run folder whose train stage holds a real TorchScript ML Commons zip of the packaged MiniLM."""
    from osft.common.spec.training import Export
    from osft.trainer.export import export_all

    spec, run_dir = run_folder({"opensearch": section})
    stage_dir = tmp_path / "export"
    records = export_all(minilm, Path(minilm_dir), stage_dir, Export(opensearch_zip=True), "osft-live-test")
    exports_dir = run_dir / "train" / "exports"
    for record in records.values():
        name = Path(record["path"]).name
        (exports_dir / name).write_bytes((stage_dir / "exports" / name).read_bytes())
    manifest_path = run_dir / "train" / "manifest.json"
    train = json.loads(manifest_path.read_text())
    train["stats"]["exports"] = records
    manifest_path.write_text(json.dumps(train))
    return spec, run_dir


def test_live_cluster_registers_deploys_and_answers_like_the_local_model(run_folder, minilm, minilm_dir, tmp_path):
    spec, run_dir = exported_run(run_folder, minilm, minilm_dir, tmp_path, live_section())

    first, _ = run_stage(STAGE, str(spec), str(run_dir))
    again, _ = run_stage(STAGE, str(spec), str(run_dir), force=True)

    assert first.stats.model_id and first.stats.smoke_test.startswith("passed")
    assert again.stats.model_id == first.stats.model_id and again.stats.created == []

    cleaned = cleanup_run(str(spec), str(run_dir))

    assert cleaned.deleted == [f"ML Commons model {first.stats.model_id}"]


def test_live_cluster_runs_neural_and_hybrid_queries_with_the_registered_model(
    run_folder, minilm, minilm_dir, tmp_path
):
    """Needs the neural-search plugin (2.10+ for the normalization processor)."""
    section = live_section(
        search_check={"index": "osft-live-search-check", "pipeline": "osft-live-search-check"},
        hybrid_search={"pipeline": "osft-live-hybrid"},
    )
    spec, run_dir = exported_run(run_folder, minilm, minilm_dir, tmp_path, section)

    try:
        manifest, _ = run_stage(STAGE, str(spec), str(run_dir))
        assert manifest.stats.smoke_test.endswith(
            "hybrid query through osft-live-hybrid returned the right document first of 3"
        )
        again, _ = run_stage(STAGE, str(spec), str(run_dir), force=True)
        assert "search pipeline osft-live-hybrid" in again.stats.reused
    finally:
        from osft.common.opensearch import opensearch_client
        from osft.common.spec.source import OpenSearchConnection

        client = opensearch_client(OpenSearchConnection.model_validate(section["connection"]), field="connection")
        client.search_pipeline.delete(id="osft-live-hybrid", ignore=[404])
        cleanup_run(str(spec), str(run_dir))


def test_live_cluster_indexes_passage_vectors_and_answers_the_passage_queries(run_folder, minilm, minilm_dir, tmp_path):
    """Needs the neural-search plugin 2.13+ (``text_chunking``) and a nested ``knn_vector`` on the lucene engine."""
    section = live_section(
        search_check={"index": "osft-live-passages-check", "pipeline": "osft-live-passages-check"},
        hybrid_search={"pipeline": "osft-live-hybrid"},
        passage_vectors={"ingest_pipeline": "osft-live-passages", "hybrid_pipeline": "osft-live-hybrid-passages"},
    )
    spec, run_dir = exported_run(run_folder, minilm, minilm_dir, tmp_path, section)

    try:
        manifest, _ = run_stage(STAGE, str(spec), str(run_dir))
        assert manifest.stats.smoke_test.endswith(
            "query of document and passage vectors returned the right document first of 3; hybrid query with "
            "passage vectors through osft-live-hybrid-passages returned the right document first of 3"
        )
        again, _ = run_stage(STAGE, str(spec), str(run_dir), force=True)
        assert {"ingest pipeline osft-live-passages", "search pipeline osft-live-hybrid-passages"} <= set(
            again.stats.reused
        )
    finally:
        from osft.common.opensearch import opensearch_client
        from osft.common.spec.source import OpenSearchConnection

        client = opensearch_client(OpenSearchConnection.model_validate(section["connection"]), field="connection")
        for pipeline in ("osft-live-hybrid", "osft-live-hybrid-passages"):
            client.search_pipeline.delete(id=pipeline, ignore=[404])
        client.ingest.delete_pipeline(id="osft-live-passages", ignore=[404])
        cleanup_run(str(spec), str(run_dir))
