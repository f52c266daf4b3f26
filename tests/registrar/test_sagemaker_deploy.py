"""SageMaker endpoints through moto (Stubber where moto lacks UpdateEndpoint): create, reuse, update, A/B, cleanup."""

from __future__ import annotations

import json
import tarfile
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner

from osft.common.errors import OsftError, ServiceError
from osft.common.spec.deploy import SageMakerEndpoint
from osft.common.stage import run_stage
from osft.registrar.cli import cli
from osft.registrar.sagemaker_deploy import (
    PREVIOUS_CONFIG_TAG,
    SageMakerDeployer,
    Variant,
    config_name,
    production_variants,
)
from osft.registrar.stage import STAGE
from tests.registrar.conftest import BUCKET, IMAGE, REGION, ROLE, sagemaker_section

ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/osft-tiny"


def test_serverless_endpoint_serves_the_uploaded_model_folder(aws, run_folder):
    spec, run_dir = run_folder({"sagemaker": sagemaker_section(memory_size_mb=2048, max_concurrency=3)}, weights=False)
    manifest, _ = run_stage(STAGE, str(spec), str(run_dir))

    stats = manifest.stats
    endpoint = aws.describe_endpoint(EndpointName="osft-tiny")
    config = aws.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    (variant,) = config["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 3}
    container = aws.describe_model(ModelName=variant["ModelName"])["PrimaryContainer"]
    assert container["Image"] == IMAGE and container["ModelDataUrl"] == f"s3://{BUCKET}/runs/tiny/model.tar.gz"
    local = run_dir / "register" / "model.tar.gz"
    with tarfile.open(local) as archive:
        assert {"modules.json", "config.json", "tokenizer.json", "1_Pooling/config.json"} <= set(archive.getnames())
    uploaded = boto3.client("s3", region_name=REGION).head_object(Bucket=BUCKET, Key="runs/tiny/model.tar.gz")
    assert uploaded["ContentLength"] == local.stat().st_size
    registration = json.loads((run_dir / "register" / "registration.json").read_text())
    assert registration["endpoint_name"] == stats.endpoint_name == "osft-tiny"
    assert stats.endpoint_action == "created"


def test_real_time_ab_rollout_splits_traffic_between_base_and_tuned(aws, run_folder):
    section = sagemaker_section(mode="real-time", instance_type="ml.m5.large", instance_count=2, ab_base_weight=0.2)
    spec, run_dir = run_folder({"sagemaker": section}, weights=False)
    manifest, _ = run_stage(STAGE, str(spec), str(run_dir))

    config = aws.describe_endpoint_config(EndpointConfigName=manifest.stats.endpoint_config_name)
    variants = {v["VariantName"]: v for v in config["ProductionVariants"]}
    assert {name: v["InitialVariantWeight"] for name, v in variants.items()} == {"tuned": 0.8, "base": 0.2}
    assert all(v["InstanceType"] == "ml.m5.large" and v["InitialInstanceCount"] == 2 for v in variants.values())
    base = aws.describe_model(ModelName=variants["base"]["ModelName"])["PrimaryContainer"]
    assert base["Environment"] == {"OSFT_SERVE_MODEL": "sentence-transformers/all-MiniLM-L6-v2"}
    assert "ModelDataUrl" not in base


def test_rerun_with_the_same_model_leaves_the_endpoint_unchanged(aws, run_folder):
    spec, run_dir = run_folder({"sagemaker": sagemaker_section()}, weights=False)
    first, _ = run_stage(STAGE, str(spec), str(run_dir))
    second, skipped = run_stage(STAGE, str(spec), str(run_dir), force=True)

    assert not skipped and second.stats.endpoint_action == "unchanged"
    assert second.stats.endpoint_config_name == first.stats.endpoint_config_name
    assert len(aws.list_models()["Models"]) == 1 and len(aws.list_endpoint_configs()["EndpointConfigs"]) == 1


def test_cleanup_deletes_the_endpoint_its_config_and_model(aws, run_folder):
    spec, run_dir = run_folder({"sagemaker": sagemaker_section()}, weights=False)
    run_stage(STAGE, str(spec), str(run_dir))

    result = CliRunner().invoke(cli, ["cleanup", "--spec", str(spec), "--run-dir", str(run_dir)])

    assert result.exit_code == 0, result.output
    assert "deleted 3 resource(s) of endpoint osft-tiny" in result.output
    assert aws.list_endpoints()["Endpoints"] == []
    assert aws.list_endpoint_configs()["EndpointConfigs"] == [] and aws.list_models()["Models"] == []
    assert not (run_dir / "register" / "manifest.json").exists()


def test_local_run_folder_without_an_artifact_uri_says_what_to_set(aws, run_folder):
    spec, run_dir = run_folder({"sagemaker": sagemaker_section(artifact_uri=None)}, weights=False)
    with pytest.raises(OsftError, match=r"deploy\.sagemaker\.artifact_uri"):
        run_stage(STAGE, str(spec), str(run_dir))


def _stubbed_deployer() -> tuple[SageMakerDeployer, Stubber]:
    client = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    return SageMakerDeployer(client, timeout_s=60, poll_s=1), Stubber(client)


def _endpoint(status: str, config: str, reason: str | None = None) -> dict:
    now = datetime.now(UTC)
    answer = {
        "EndpointName": "osft-tiny",
        "EndpointArn": ARN,
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": now,
        "LastModifiedTime": now,
    }
    return {**answer, "FailureReason": reason} if reason else answer


def _missing(stubber: Stubber, method: str, what: str) -> None:
    stubber.add_client_error(method, "ValidationException", f"Could not find {what}")


def test_a_new_model_updates_the_existing_endpoint_in_place_and_deletes_the_old_config():
    deployer, stubber = _stubbed_deployer()
    spec = SageMakerEndpoint(mode="serverless")
    variant = Variant("tuned", "osft-tiny-new", {}, "s3://b/model.tar.gz", 1.0)
    new_config = config_name("osft-tiny", production_variants(spec, [variant]))
    now = datetime.now(UTC)
    old_config = {
        "EndpointConfigName": "osft-tiny-old",
        "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/osft-tiny-old",
        "ProductionVariants": [
            {
                "VariantName": "tuned",
                "ModelName": "osft-tiny-oldmodel",
                "ServerlessConfig": {"MemorySizeInMB": 4096, "MaxConcurrency": 5},
            }
        ],
        "CreationTime": now,
    }
    stubber.add_response("describe_endpoint", _endpoint("InService", "osft-tiny-old"))
    stubber.add_response("describe_endpoint_config", old_config)  # serverless, like the spec: updatable
    _missing(stubber, "describe_model", "model")
    stubber.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:1:model/osft-tiny-new"})
    _missing(stubber, "describe_endpoint_config", "endpoint configuration")
    stubber.add_response(
        "create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/x"}
    )
    # Recorded before the switch, so a run killed during the update leaves the old config findable.
    stubber.add_response(
        "add_tags", {}, {"ResourceArn": ARN, "Tags": [{"Key": PREVIOUS_CONFIG_TAG, "Value": "osft-tiny-old"}]}
    )
    stubber.add_response("update_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/osft-tiny"})
    stubber.add_response("describe_endpoint", _endpoint("Updating", new_config))
    stubber.add_response("describe_endpoint", _endpoint("InService", new_config))
    stubber.add_response("describe_endpoint", _endpoint("InService", new_config))  # serves the new config
    stubber.add_response("describe_endpoint_config", old_config)
    stubber.add_response("delete_endpoint_config", {})
    stubber.add_response(
        "describe_model",
        {"ModelName": "osft-tiny-oldmodel", "ModelArn": "arn:aws:sagemaker:us-east-1:1:model/o", "CreationTime": now},
    )
    stubber.add_response("delete_model", {})
    stubber.add_response(
        "add_tags", {}, {"ResourceArn": ARN, "Tags": [{"Key": PREVIOUS_CONFIG_TAG, "Value": new_config}]}
    )
    # Then the endpoint's configs a killed run left behind are looked for: none.
    stubber.add_response("list_endpoint_configs", {"EndpointConfigs": []}, {"NameContains": "osft-tiny"})
    with stubber:
        result = deployer.deploy(spec, "osft-tiny", [variant], image_uri=IMAGE, role_arn=ROLE)
    stubber.assert_no_pending_responses()
    assert result.action == "updated"
    assert result.deleted == ["osft-tiny-old", "osft-tiny-oldmodel"]


def test_an_endpoint_that_fails_to_start_reports_sagemakers_reason():
    deployer, stubber = _stubbed_deployer()
    variant = Variant("tuned", "osft-tiny-m", {}, "s3://b/model.tar.gz", 1.0)
    now = datetime.now(UTC)
    _missing(stubber, "describe_endpoint", "endpoint")
    stubber.add_response(
        "describe_model",
        {"ModelName": "osft-tiny-m", "ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m", "CreationTime": now},
    )
    _missing(stubber, "describe_endpoint_config", "endpoint configuration")
    stubber.add_response(
        "create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/x"}
    )
    stubber.add_response("create_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/osft-tiny"})
    reason = "The primary container for production variant tuned did not pass the ping health check."
    stubber.add_response("describe_endpoint", _endpoint("Failed", "c", reason))
    stubber.add_response("describe_endpoint", _endpoint("Failed", "c", reason))
    with stubber, pytest.raises(ServiceError, match="ended 'Failed': The primary container"):
        deployer.deploy(SageMakerEndpoint(), "osft-tiny", [variant], image_uri=IMAGE, role_arn=ROLE)


def test_int8_precision_ships_the_onnx_export_and_tells_the_server_to_use_it(aws, run_folder):
    spec, run_dir = run_folder({"sagemaker": sagemaker_section(precision="int8")}, weights=False)
    onnx = run_dir / "train" / "exports" / "model_int8.onnx"
    onnx.write_bytes(b"onnx bytes")
    manifest_path = run_dir / "train" / "manifest.json"
    train = json.loads(manifest_path.read_text())
    train["stats"]["exports"]["onnx_int8"] = {
        "path": "train/exports/model_int8.onnx",
        "sha256": "0" * 64,
        "bytes": 10,
        "model_format": "ONNX",
        "function_name": "TEXT_EMBEDDING",
    }
    manifest_path.write_text(json.dumps(train))

    manifest, _ = run_stage(STAGE, str(spec), str(run_dir))

    (model_name,) = manifest.stats.sagemaker_models
    environment = aws.describe_model(ModelName=model_name)["PrimaryContainer"]["Environment"]
    assert environment == {"OSFT_SERVE_PRECISION": "int8", "OSFT_SERVE_ONNX_FILE": "onnx/model_int8.onnx"}
    with tarfile.open(run_dir / "register" / "model.tar.gz") as archive:
        assert archive.extractfile("onnx/model_int8.onnx").read() == b"onnx bytes"
