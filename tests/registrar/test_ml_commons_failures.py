"""ML Commons failures become clear errors: FAILED tasks, 400, 401, 404, timeouts, wrong embeddings."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError

from osft.common.errors import CredentialsError, ServiceError
from osft.common.opensearch import opensearch_client
from osft.common.spec.deploy import OpenSearchRegistration
from osft.common.spec.source import OpenSearchConnection
from osft.common.stage import run_stage
from osft.registrar.artifacts import ExportedZip
from osft.registrar.cleanup import cleanup_run
from osft.registrar.ml_commons import MLCommons
from osft.registrar.opensearch_registration import register_zip
from osft.registrar.stage import STAGE
from tests.registrar.conftest import opensearch_section, sagemaker_section


def _ml(url: str, timeout: float = 10) -> MLCommons:
    client = opensearch_client(OpenSearchConnection(url=url, max_retries=0))
    return MLCommons(client, url=url, task_timeout_s=timeout, poll_interval_s=0.01)


def test_a_failed_deploy_task_reports_the_clusters_error_and_cleanup_removes_the_model(run_folder, ml_server):
    server = ml_server(fail_tasks={"DEPLOY_MODEL"})
    spec, run_dir = run_folder({"opensearch": opensearch_section(server.url, mode="local", local_upload="chunks")})
    with pytest.raises(ServiceError, match=r"ended FAILED: DEPLOY_MODEL failed"):
        run_stage(STAGE, str(spec), str(run_dir))

    (model_id,) = server.models
    recorded = json.loads((run_dir / "register" / "registration.json").read_text())
    assert recorded["opensearch"]["model_id"] == model_id and recorded["deployed"] is False
    assert cleanup_run(str(spec), str(run_dir)).deleted == [f"ML Commons model {model_id}"]
    assert server.models == {}


def test_wrong_password_is_a_credentials_error_and_the_right_one_registers(run_folder, ml_server, monkeypatch):
    server = ml_server(users={"admin": "s3cret"})
    section = opensearch_section(server.url, mode="local", local_upload="chunks")
    section["connection"]["auth"] = {"type": "basic", "username": "admin", "password_env": "OSFT_TEST_OS_PASSWORD"}
    spec, run_dir = run_folder({"opensearch": section})

    monkeypatch.setenv("OSFT_TEST_OS_PASSWORD", "wrong")
    with pytest.raises(CredentialsError, match=r"refused the credentials \(401\)"):
        run_stage(STAGE, str(spec), str(run_dir))
    monkeypatch.setenv("OSFT_TEST_OS_PASSWORD", "s3cret")
    manifest, _ = run_stage(STAGE, str(spec), str(run_dir))
    assert manifest.stats.model_id


def test_unknown_model_id_is_a_404_error(ml_server):
    server = ml_server()
    with pytest.raises(ServiceError, match=r"found nothing while reading model nope \(404"):
        _ml(server.url).deploy("nope")


def test_malformed_registration_is_a_400_error_naming_the_field(ml_server):
    server = ml_server()
    with pytest.raises(
        ServiceError, match=r"rejected registering model 'x' \(400: parsing_exception: unknown field \[bogus\]"
    ):
        _ml(server.url).register({"name": "x", "bogus": 1})


def test_a_task_still_running_at_the_timeout_says_how_to_wait_longer(ml_server):
    server = ml_server()
    ml = _ml(server.url, timeout=0)
    group, _ = ml.ensure_model_group("g", "d")
    response = server.handle("POST", "/_plugins/_ml/model_groups/_search", b'{"query": {"match_all": {}}}', {})
    assert response[0] == 200
    with pytest.raises(ServiceError, match=r"still CREATED after 0s") as error:
        ml.register(
            {
                "name": "huggingface/cross-encoders/ms-marco-MiniLM-L-6-v2",
                "version": "1.0.2",
                "model_group_id": group,
                "model_format": "TORCH_SCRIPT",
            }
        )
    assert "task_timeout_s" in error.value.render()


def test_a_model_group_of_the_same_name_is_reused_not_duplicated(ml_server):
    server = ml_server()
    first, created = _ml(server.url).ensure_model_group("osft", "d")
    again, created_again = _ml(server.url).ensure_model_group("osft", "d")
    assert created and not created_again and first == again and len(server.groups) == 1


def test_embeddings_that_differ_from_the_local_model_fail_the_smoke_test(run_folder, ml_server):
    server = ml_server()
    server.local_embed = lambda _model, texts: [[1.0] + [0.0] * 383 for _ in texts]
    spec, run_dir = run_folder({"opensearch": opensearch_section(server.url, mode="local", local_upload="chunks")})
    with pytest.raises(ServiceError, match="embeddings differ from the trained model folder"):
        run_stage(STAGE, str(spec), str(run_dir))

    # The model was deployed before the check failed: the run folder names it, and cleanup removes it.
    recorded = json.loads((run_dir / "register" / "registration.json").read_text())
    assert "embeddings differ" in recorded["incomplete"]
    (model_id,) = server.models
    assert recorded["opensearch"]["model_id"] == model_id
    assert cleanup_run(str(spec), str(run_dir)).deleted == [f"ML Commons model {model_id}"]
    assert server.models == {}


def _zip_and_spec(tmp_path, server):
    data = os.urandom(3 * 1024 * 1024 + 5)
    path = tmp_path / "model.zip"
    path.write_bytes(data)
    config = {"model_type": "bert", "embedding_dimension": 384, "framework_type": "sentence_transformers"}
    export = ExportedZip(
        "opensearch_torchscript_zip",
        "x",
        hashlib.sha256(data).hexdigest(),
        len(data),
        "TORCH_SCRIPT",
        "TEXT_EMBEDDING",
        config,
    )
    spec = OpenSearchRegistration(connection={"url": server.url}, mode="local", local_upload="chunks", chunk_size_mb=1)
    return path, export, spec


def test_an_upload_cut_off_between_chunks_is_removed_and_a_rerun_registers_it_again(ml_server, tmp_path):
    server = ml_server()
    path, export, spec = _zip_and_spec(tmp_path, server)
    ml = _ml(server.url)
    group, _ = ml.ensure_model_group("osft", "d")
    upload = ml.client.plugins.ml.upload_chunk

    def drop_the_third_chunk(**kwargs):
        if kwargs["chunk_number"] == "2":
            raise OpenSearchConnectionError("N/A", "connection reset by peer", None)
        return upload(**kwargs)

    ml.client.plugins.ml.upload_chunk = drop_the_third_chunk
    with pytest.raises(ServiceError, match="uploading chunk 3/4"):
        register_zip(ml, spec, export, path, None, name="m", model_group_id=group, description="d")
    assert server.models == {}, "the half-uploaded model is removed"

    # A process killed between chunks cannot clean up: the rerun finds the model REGISTERING for good.
    ml.client.plugins.ml.upload_chunk = upload
    meta = ml.client.plugins.ml.register_model_meta(
        body={
            "name": "m",
            "version": "1.0.0",
            "model_group_id": group,
            "model_format": "TORCH_SCRIPT",
            "function_name": "TEXT_EMBEDDING",
            "model_content_hash_value": export.sha256,
            "model_content_size_in_bytes": export.size_bytes,
            "model_config": export.model_config,
            "total_chunks": 4,
        }
    )
    upload(model_id=meta["model_id"], chunk_number="0", body=path.read_bytes()[: 1024 * 1024])

    model_id, created = register_zip(ml, spec, export, path, None, name="m", model_group_id=group, description="d")
    ml.deploy(model_id)

    assert created and model_id != meta["model_id"]
    assert list(server.models) == [model_id] and server.models[model_id]["model_state"] == "DEPLOYED"


def test_a_cluster_without_ml_nodes_names_the_setting_and_a_rerun_deploys_the_model_it_registered(
    run_folder, ml_server
):
    server = ml_server(ml_nodes=False)
    spec, run_dir = run_folder({"opensearch": opensearch_section(server.url, mode="local", local_upload="chunks")})

    with pytest.raises(ServiceError, match="no eligible node found") as error:
        run_stage(STAGE, str(spec), str(run_dir))
    assert "plugins.ml_commons.only_run_on_ml_node: false" in error.value.render()

    server.settings["plugins.ml_commons.only_run_on_ml_node"] = False
    manifest, _ = run_stage(STAGE, str(spec), str(run_dir))
    assert list(server.models) == [manifest.stats.model_id] and len(server.calls("POST", "/_register_meta")) == 1


def test_a_connector_url_the_cluster_does_not_trust_names_the_setting_and_the_spec_field(aws, run_folder, ml_server):
    server = ml_server(
        settings={"plugins.ml_commons.trusted_connector_endpoints_regex": [r"^https://api\.openai\.com/.*$"]}
    )
    section = opensearch_section(server.url, mode="remote", smoke_test=False)
    spec, run_dir = run_folder({"sagemaker": sagemaker_section(), "opensearch": section}, weights=False)

    with pytest.raises(ServiceError, match="not matching the trusted connector endpoint regex") as error:
        run_stage(STAGE, str(spec), str(run_dir))
    assert "deploy.opensearch.set_trusted_endpoints: true" in error.value.render()
    assert server.connectors == {}

    section["set_trusted_endpoints"] = True
    spec.write_text(
        json.dumps(
            {**json.loads(spec.read_text()), "deploy": {"sagemaker": sagemaker_section(), "opensearch": section}}
        )
    )
    manifest, _ = run_stage(STAGE, str(spec), str(run_dir))
    assert list(server.connectors) == [manifest.stats.connector_id]


def test_a_model_still_deploying_after_a_killed_run_is_waited_for_not_deployed_twice(ml_server):
    server = ml_server()
    ml = _ml(server.url)
    group, _ = ml.ensure_model_group("osft", "d")
    model_id = ml.register(
        {
            "name": "huggingface/cross-encoders/ms-marco-MiniLM-L-6-v2",
            "version": "1.0.2",
            "model_group_id": group,
            "model_format": "TORCH_SCRIPT",
        }
    )
    ml.client.plugins.ml.deploy_model(model_id=model_id)  # the killed run's deploy: nobody waits for its task
    assert server.models[model_id]["model_state"] == "DEPLOYING"

    ml.deploy(model_id)

    assert server.models[model_id]["model_state"] == "DEPLOYED"
    assert len(server.calls("POST", "/_deploy")) == 1
