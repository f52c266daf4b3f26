"""The local path: the exported ML Commons zip registered in chunks or by URL, deployed, smoke-tested."""

from __future__ import annotations

import json

import pytest

from osft.common.errors import ServiceError
from osft.common.stage import run_stage
from osft.registrar.cleanup import cleanup_run
from osft.registrar.stage import STAGE
from tests.registrar.conftest import opensearch_section


def test_zip_uploaded_in_chunks_becomes_a_deployed_model_that_neural_search_uses(run_folder, ml_server):
    server = ml_server()
    section = opensearch_section(
        server.url, mode="local", local_upload="chunks", chunk_size_mb=1, cross_encoder={}, search_check={}
    )
    spec, run_dir = run_folder({"opensearch": section})

    manifest, _ = run_stage(STAGE, str(spec), str(run_dir))

    stats = manifest.stats
    model = server.models[stats.model_id]
    record = json.loads((run_dir / "train" / "manifest.json").read_text())["stats"]["exports"]
    export = record["opensearch_torchscript_zip"]
    assert (model["model_state"], model["function_name"], model["model_format"]) == (
        "DEPLOYED",
        "TEXT_EMBEDDING",
        "TORCH_SCRIPT",
    )
    assert model["model_content_hash_value"] == export["sha256"]
    assert len(server.calls("POST", "/upload_chunk/")) == -(-export["bytes"] // (1024 * 1024)) >= 2
    assert stats.smoke_test.startswith("passed: 3 texts, dimension 384")
    assert stats.smoke_test.endswith("neural query returned the right document first of 3")
    (pipeline,) = server.calls("PUT", "/_ingest/pipeline/")
    assert pipeline["processors"] == [
        {"text_embedding": {"model_id": stats.model_id, "field_map": {"text": "embedding"}}}
    ]
    assert server.indices == {} and server.pipelines == {}  # deleted afterwards
    assert server.models[stats.cross_encoder_model_id]["function_name"] == "TEXT_SIMILARITY"
    registration = json.loads((run_dir / "register" / "registration.json").read_text())
    assert registration["model_id"] == stats.model_id and registration["endpoint_name"] is None


def test_zip_registered_by_url_with_its_hash_size_and_model_config(run_folder, ml_server):
    server = ml_server()
    spec, run_dir = run_folder({})
    zip_path = next((run_dir / "train" / "exports").glob("*.zip"))
    section = opensearch_section(
        server.url, mode="local", local_upload="url", model_url=zip_path.as_uri(), allow_registering_via_url=True
    )
    spec.write_text(json.dumps({**json.loads(spec.read_text()), "deploy": {"opensearch": section}}))

    manifest, _ = run_stage(STAGE, str(spec), str(run_dir))

    (body,) = server.calls("POST", "/models/_register")
    assert body["url"] == zip_path.as_uri()
    assert body["model_content_size_in_bytes"] == zip_path.stat().st_size
    assert body["model_config"]["embedding_dimension"] == 384
    assert server.settings["plugins.ml_commons.allow_registering_model_via_url"] == "true"
    assert server.models[manifest.stats.model_id]["model_state"] == "DEPLOYED"


def test_registering_by_url_on_a_cluster_that_forbids_it_says_which_setting_to_change(run_folder, ml_server):
    server = ml_server()
    spec, run_dir = run_folder({})
    zip_path = next((run_dir / "train" / "exports").glob("*.zip"))
    section = opensearch_section(server.url, mode="local", local_upload="url", model_url=zip_path.as_uri())
    spec.write_text(json.dumps({**json.loads(spec.read_text()), "deploy": {"opensearch": section}}))

    with pytest.raises(ServiceError, match="allow_registering_model_via_url"):
        run_stage(STAGE, str(spec), str(run_dir))


def test_cleanup_deletes_the_run_model_keeps_the_shared_cross_encoder_and_can_run_twice(run_folder, ml_server):
    server = ml_server()
    section = opensearch_section(server.url, mode="local", local_upload="chunks", cross_encoder={})
    spec, run_dir = run_folder({"opensearch": section})
    stats = run_stage(STAGE, str(spec), str(run_dir))[0].stats
    assert server.models[stats.model_id]["model_state"] == "DEPLOYED"

    first = cleanup_run(str(spec), str(run_dir))

    assert first.deleted == [f"ML Commons model {stats.model_id}"] and first.endpoint_name is None
    assert stats.model_id not in server.models and stats.cross_encoder_model_id in server.models
    assert "cross-encoder" in first.kept[0] and server.groups
    assert not (run_dir / "register" / "manifest.json").exists()
    assert cleanup_run(str(spec), str(run_dir)).deleted == []  # what is gone is skipped


def test_deleting_a_deployed_model_is_refused_like_ml_commons_does(run_folder, ml_server):
    """The stand-in holds the registrar to ML Commons' order: undeploy first, then delete."""
    import httpx

    server = ml_server()
    spec, run_dir = run_folder({"opensearch": opensearch_section(server.url, mode="local", local_upload="chunks")})
    model_id = run_stage(STAGE, str(spec), str(run_dir))[0].stats.model_id

    refused = httpx.delete(f"{server.url}/_plugins/_ml/models/{model_id}")

    assert refused.status_code == 400 and "Try undeploy model first" in refused.text
