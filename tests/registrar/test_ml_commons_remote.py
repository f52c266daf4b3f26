"""The remote path end to end: SageMaker (moto) → connector → remote model → _predict through the real model server."""

from __future__ import annotations

import io
import json
import urllib.request
from collections.abc import Callable

import pytest
from botocore.awsrequest import AWSResponse
from click.testing import CliRunner
from opensearchpy.exceptions import TransportError

from osft.common.errors import ServiceError
from osft.common.opensearch import opensearch_client
from osft.common.spec.source import OpenSearchConnection
from osft.common.stage import run_stage
from osft.registrar.cleanup import cleanup_run
from osft.registrar.cli import cli
from osft.registrar.sagemaker_deploy import runtime_url
from osft.registrar.stage import STAGE
from osft.trainer.serving.encoder import load_encoder
from osft.trainer.serving.settings import ServeSettings
from tests.registrar.conftest import CONNECTOR_ROLE, REGION, opensearch_section, sagemaker_section
from tests.serving.conftest import running_server


@pytest.fixture
def served_endpoint(minilm_dir):
    """The trainer image's server on 127.0.0.1, standing in for the SageMaker endpoint's container."""
    encoder = load_encoder(ServeSettings(model=str(minilm_dir), device="cpu"))
    with running_server(encoder, ServeSettings(warmup_rounds=1)) as url:
        yield url


@pytest.fixture
def remote_run(aws, run_folder, ml_server, served_endpoint):
    """(ML Commons stand-in, spec, run dir) of a trained run whose register stage deploys to SageMaker (moto) and
    registers a remote model."""
    server = ml_server(connector_urls={runtime_url(REGION, "osft-tiny"): f"{served_endpoint}/invocations"})
    deploy = {
        "sagemaker": sagemaker_section(),
        "opensearch": opensearch_section(server.url, mode="remote", set_trusted_endpoints=True),
    }
    spec, run_dir = run_folder(deploy)
    return server, spec, run_dir


def test_register_stage_ends_with_a_remote_model_that_answers_like_the_local_model_and_reruns_create_nothing(
    remote_run,
):
    server, spec, run_dir = remote_run

    manifest, _ = run_stage(STAGE, str(spec), str(run_dir))

    stats = manifest.stats
    registration = json.loads((run_dir / "register" / "registration.json").read_text())
    assert {k: registration[k] for k in ("endpoint_name", "connector_id", "model_group_id", "model_id")} == {
        "endpoint_name": "osft-tiny",
        "connector_id": stats.connector_id,
        "model_group_id": stats.model_group_id,
        "model_id": stats.model_id,
    }
    assert server.models[stats.model_id]["model_state"] == "DEPLOYED"
    assert stats.smoke_test.startswith("passed: 3 texts, dimension 384, min cosine 1.0")
    # Neural search's request: text_docs through the connector's pre-process function.
    assert server.calls("POST", f"/_predict/text_embedding/{stats.model_id}")
    (connector,) = server.calls("POST", "/connectors/_create")
    assert connector["credential"] == {"roleArn": CONNECTOR_ROLE} and connector["protocol"] == "aws_sigv4"
    assert connector["actions"][0]["url"] == runtime_url(REGION, "osft-tiny")
    trusted = server.settings["plugins.ml_commons.trusted_connector_endpoints_regex"]
    assert any("runtime\\.sagemaker\\.us-east-1" in regex for regex in trusted)
    assert "^https://api\\.openai\\.com/.*$" in trusted  # the cluster's defaults are kept

    again, _ = run_stage(STAGE, str(spec), str(run_dir), force=True)

    assert (again.stats.model_id, again.stats.connector_id) == (stats.model_id, stats.connector_id)
    assert again.stats.created == [] and len(again.stats.reused) == 3
    assert again.stats.endpoint_action == "unchanged"
    for created_by in ("/connectors/_create", "/models/_register", "/model_groups/_register", "/_deploy"):
        assert len(server.calls("POST", created_by)) == 1, created_by


def test_a_changed_connector_role_gets_a_new_connector_instead_of_the_stale_one(remote_run):
    """ML Commons hides credentials in search answers; the fingerprint in the description tells the bodies apart."""
    server, spec, run_dir = remote_run
    first, _ = run_stage(STAGE, str(spec), str(run_dir))
    fixed_role = "arn:aws:iam::123456789012:role/osft-connector-fixed"
    document = json.loads(spec.read_text())
    document["deploy"]["opensearch"]["connector_role_arn"] = fixed_role
    spec.write_text(json.dumps(document))

    second, _ = run_stage(STAGE, str(spec), str(run_dir), force=True)

    assert second.stats.connector_id != first.stats.connector_id
    assert server.connectors[second.stats.connector_id]["credential"] == {"roleArn": fixed_role}
    assert second.stats.model_id != first.stats.model_id  # a remote model is bound to its connector
    assert server.models[second.stats.model_id]["connector_id"] == second.stats.connector_id
    assert second.stats.smoke_test.startswith("passed")
    # The superseded connector is left to the model that uses it; a third run reuses the new one.
    assert first.stats.connector_id in server.connectors
    third, _ = run_stage(STAGE, str(spec), str(run_dir), force=True)
    assert (third.stats.connector_id, third.stats.model_id) == (second.stats.connector_id, second.stats.model_id)
    assert third.stats.created == []


def test_cleanup_removes_the_remote_model_its_connector_and_the_endpoint(aws, remote_run):
    server, spec, run_dir = remote_run
    stats = run_stage(STAGE, str(spec), str(run_dir))[0].stats

    result = CliRunner().invoke(cli, ["cleanup", "--spec", str(spec), "--run-dir", str(run_dir)])

    assert result.exit_code == 0, result.output
    assert f"ML Commons model {stats.model_id}" in result.output
    assert f"ML Commons connector {stats.connector_id}" in result.output
    assert server.models == {} and server.connectors == {}
    assert len(server.groups) == 1  # kept: other runs register into it by name
    undeploy = server.calls("POST", "/_undeploy")
    assert len(undeploy) == 1 and server.calls("DELETE", "/connectors/")
    assert aws.list_endpoints()["Endpoints"] == [] and aws.list_models()["Models"] == []


def test_cleanup_deletes_the_connector_and_endpoint_while_searches_still_see_the_deleted_model(aws, remote_run):
    """ML Commons deletes a model without a refresh: for a moment, searches (its own connector check too) see it."""
    server, spec, run_dir = remote_run
    stats = run_stage(STAGE, str(spec), str(run_dir))[0].stats
    server.refresh_lag = 2

    result = cleanup_run(str(spec), str(run_dir))

    assert f"ML Commons connector {stats.connector_id}" in result.deleted and result.kept == []
    assert server.connectors == {} and aws.list_endpoints()["Endpoints"] == []


def test_cleanup_keeps_a_connector_and_endpoint_another_run_still_uses(aws, remote_run):
    server, spec, run_dir = remote_run
    stats = run_stage(STAGE, str(spec), str(run_dir))[0].stats
    # Another run with the same endpoint name found this connector by name and registered its own model on it.
    server.models["other-run-model"] = {**server.models[stats.model_id], "name": "other-run"}

    result = cleanup_run(str(spec), str(run_dir))

    assert result.deleted == [f"ML Commons model {stats.model_id}"]
    assert "other-run-model" in result.kept[0] and stats.connector_id in server.connectors
    assert [e["EndpointName"] for e in aws.list_endpoints()["Endpoints"]] == ["osft-tiny"]


def test_cleanup_still_deletes_the_billed_endpoint_when_the_cluster_is_unreachable(aws, remote_run):
    server, spec, run_dir = remote_run
    run_stage(STAGE, str(spec), str(run_dir))
    server.stop()

    result = CliRunner().invoke(cli, ["cleanup", "--spec", str(spec), "--run-dir", str(run_dir)])

    assert result.exit_code != 0
    assert "cleanup of run tiny is incomplete" in result.output and "ML Commons: cannot reach" in result.output
    assert aws.list_endpoints()["Endpoints"] == [] and aws.list_models()["Models"] == []
    assert (run_dir / "register" / "manifest.json").exists()  # a second cleanup finishes the job


def test_the_model_predict_path_of_a_remote_model_reads_only_parameters(remote_run):
    """``models/<id>/_predict`` on a remote model skips the pre-process function: text_docs fill nothing."""
    server, spec, run_dir = remote_run
    model_id = run_stage(STAGE, str(spec), str(run_dir))[0].stats.model_id

    client = opensearch_client(OpenSearchConnection(url=server.url, max_retries=0))

    with pytest.raises(TransportError, match="placeholder not filled"):
        client.plugins.ml.predict_model(model_id=model_id, body={"text_docs": ["a text"]})
    answer = client.plugins.ml.predict_model(model_id=model_id, body={"parameters": {"input": ["a text"]}})
    assert len(answer["inference_results"][0]["output"][0]["data"]) == 384


def _runtime_routed_to(served_endpoint: str, answers_by_variant: dict[str, Callable[[bytes], bytes]], asked: list):
    """``sagemaker_client`` whose runtime client sends InvokeEndpoint to ``answers_by_variant[TargetVariant]``.

    moto answers InvokeEndpoint with canned bodies, so the hook goes first and plays each variant's container.
    """
    import urllib3

    from osft.common.aws_clients import sagemaker_client

    def route(request, **_kwargs):
        variant = request.headers.get("X-Amzn-SageMaker-Target-Variant")
        variant = variant.decode() if isinstance(variant, bytes) else variant
        asked.append(variant)
        body = answers_by_variant[variant](request.body)
        raw = urllib3.HTTPResponse(body=io.BytesIO(body), preload_content=False, status=200)
        return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, raw)

    def build(region, service="sagemaker"):
        client = sagemaker_client(region, service)
        if service == "sagemaker-runtime":
            client.meta.events.register_first("before-send.sagemaker-runtime.InvokeEndpoint", route)
        return client

    return build


@pytest.mark.parametrize("served_variant", ["tuned", "base"])
def test_behind_an_ab_endpoint_the_smoke_test_asks_each_variant_and_names_the_one_that_answered(
    aws, run_folder, ml_server, served_endpoint, monkeypatch, served_variant
):
    """The connector's request may reach either variant; the reference must come from the one that answered."""

    def container(texts: bytes) -> bytes:
        return urllib.request.urlopen(
            urllib.request.Request(
                f"{served_endpoint}/invocations", data=texts, headers={"Content-Type": "application/json"}
            )
        ).read()

    def other_model(texts: bytes) -> bytes:  # embeddings no connector answer matches
        return json.dumps([[(-1.0) ** i for i in range(384)] for _ in json.loads(texts)]).encode()

    answers = {"tuned": other_model, "base": other_model, served_variant: container}
    asked: list = []
    monkeypatch.setattr("osft.registrar.stage.sagemaker_client", _runtime_routed_to(served_endpoint, answers, asked))
    server = ml_server(connector_urls={runtime_url(REGION, "osft-tiny"): f"{served_endpoint}/invocations"})
    sagemaker = sagemaker_section(mode="real-time", instance_type="ml.m5.large", ab_base_weight=0.2)
    spec, run_dir = run_folder({"sagemaker": sagemaker, "opensearch": opensearch_section(server.url, mode="remote")})

    stats = run_stage(STAGE, str(spec), str(run_dir))[0].stats

    assert sorted(asked) == ["base", "tuned"]
    assert stats.smoke_test.startswith("passed: 3 texts, dimension 384, min cosine 1.0")
    assert f"SageMaker endpoint osft-tiny (variant {served_variant})" in stats.smoke_test


def test_behind_an_ab_endpoint_an_answer_matching_neither_variant_fails_the_stage(
    aws, run_folder, ml_server, served_endpoint, monkeypatch
):
    def other_model(texts: bytes) -> bytes:
        return json.dumps([[(-1.0) ** i for i in range(384)] for _ in json.loads(texts)]).encode()

    asked: list = []
    answers = {"tuned": other_model, "base": other_model}
    monkeypatch.setattr("osft.registrar.stage.sagemaker_client", _runtime_routed_to(served_endpoint, answers, asked))
    server = ml_server(connector_urls={runtime_url(REGION, "osft-tiny"): f"{served_endpoint}/invocations"})
    sagemaker = sagemaker_section(mode="real-time", instance_type="ml.m5.large", ab_base_weight=0.2)
    spec, run_dir = run_folder({"sagemaker": sagemaker, "opensearch": opensearch_section(server.url, mode="remote")})

    with pytest.raises(ServiceError, match="embeddings differ from the SageMaker endpoint osft-tiny"):
        run_stage(STAGE, str(spec), str(run_dir))
    assert sorted(asked) == ["base", "tuned"]


def test_cleanup_deletes_this_runs_older_connectors_no_model_uses_and_nothing_of_other_runs(aws, remote_run):
    """A changed connector body makes a new connector; the run's older ones go once no model uses them."""
    server, spec, run_dir = remote_run
    first = run_stage(STAGE, str(spec), str(run_dir))[0].stats
    document = json.loads(spec.read_text())
    document["deploy"]["opensearch"]["connector_role_arn"] = "arn:aws:iam::123456789012:role/osft-connector-fixed"
    spec.write_text(json.dumps(document))
    second = run_stage(STAGE, str(spec), str(run_dir), force=True)[0].stats
    # A run killed between creating its connector and registering the model on it: a connector nothing uses.
    server.connectors["unused-of-this-run"] = dict(server.connectors[first.connector_id])
    # Another run's connector to the same endpoint, unused right now (it may be registering its model): kept.
    other = dict(server.connectors[first.connector_id])
    other["description"] = other["description"].replace("osft run tiny:", "osft run tiny-other:")
    server.connectors["unused-of-another-run"] = other

    result = cleanup_run(str(spec), str(run_dir))

    assert f"ML Commons connector {second.connector_id}" in result.deleted
    assert "ML Commons connector unused-of-this-run (an older one of this run)" in result.deleted
    assert f"older connector {first.connector_id} of this run: model(s) {first.model_id} use it" in result.kept
    assert set(server.connectors) == {first.connector_id, "unused-of-another-run"}


def test_the_connector_fingerprint_is_computed_once_and_is_the_one_in_the_description(remote_run, monkeypatch):
    import osft.registrar.connector as connector_module

    server, spec, run_dir = remote_run
    hashed: list[tuple] = []
    real_hash = connector_module.content_hash

    def counting_hash(*parts):
        hashed.append(parts)
        return real_hash(*parts)

    monkeypatch.setattr(connector_module, "content_hash", counting_hash)

    run_stage(STAGE, str(spec), str(run_dir))

    assert len(hashed) == 1
    (created,) = server.calls("POST", "/connectors/_create")
    assert created["description"].endswith(f"({connector_module.FINGERPRINT_PREFIX}{real_hash(*hashed[0])[:16]})")
