"""Updates SageMaker cannot finish: a rolled-back UpdateEndpoint, UpdateRollbackFailed, real-time ↔ serverless.

moto has no UpdateEndpoint, so the update paths go through botocore's Stubber; the mode switch,
which is refused before UpdateEndpoint, goes through moto.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from osft.common.errors import ServiceError
from osft.common.spec.deploy import SageMakerEndpoint
from osft.registrar.sagemaker_deploy import (
    PREVIOUS_CONFIG_TAG,
    SageMakerDeployer,
    Variant,
    config_name,
    production_variants,
)
from tests.registrar.conftest import IMAGE, REGION, ROLE

NOW = datetime.now(UTC)
ENDPOINT = "osft-tiny"
OLD_CONFIG, OLD_MODEL, NEW_MODEL = "osft-tiny-old", "osft-tiny-oldmodel", "osft-tiny-newmodel"
SERVERLESS = {"MemorySizeInMB": 4096, "MaxConcurrency": 5}
ARN = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}"


def _stubbed() -> tuple[SageMakerDeployer, Stubber]:
    client = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    return SageMakerDeployer(client, timeout_s=60, poll_s=1), Stubber(client)


def _endpoint(status: str, config: str, reason: str | None = None) -> dict[str, Any]:
    answer = {
        "EndpointName": ENDPOINT,
        "EndpointArn": ARN,
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
    }
    return {**answer, "FailureReason": reason} if reason else answer


def _config(name: str, model: str) -> dict[str, Any]:
    return {
        "EndpointConfigName": name,
        "EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:1:endpoint-config/{name}",
        "ProductionVariants": [{"VariantName": "tuned", "ModelName": model, "ServerlessConfig": SERVERLESS}],
        "CreationTime": NOW,
    }


def _model(name: str) -> dict[str, Any]:
    return {"ModelName": name, "ModelArn": f"arn:aws:sagemaker:us-east-1:1:model/{name}", "CreationTime": NOW}


def _stub_update_up_to_the_wait(stubber: Stubber, new_config: str) -> None:
    """An InService serverless endpoint on OLD_CONFIG; a new model and config are created, then UpdateEndpoint."""
    stubber.add_response("describe_endpoint", _endpoint("InService", OLD_CONFIG))
    stubber.add_response("describe_endpoint_config", _config(OLD_CONFIG, OLD_MODEL))
    stubber.add_client_error("describe_model", "ValidationException", "Could not find model")
    stubber.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:1:model/new"})
    stubber.add_client_error("describe_endpoint_config", "ValidationException", "Could not find endpoint configuration")
    stubber.add_response("create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:ec/new"})
    stubber.add_response(
        "add_tags", {}, {"ResourceArn": ARN, "Tags": [{"Key": PREVIOUS_CONFIG_TAG, "Value": OLD_CONFIG}]}
    )
    stubber.add_response(
        "update_endpoint",
        {"EndpointArn": f"arn:aws:sagemaker:us-east-1:1:endpoint/{ENDPOINT}"},
        {"EndpointName": ENDPOINT, "EndpointConfigName": new_config},
    )
    stubber.add_response("describe_endpoint", _endpoint("Updating", new_config))


def test_a_rolled_back_update_is_an_error_and_deletes_the_new_config_not_the_one_still_served():
    deployer, stubber = _stubbed()
    spec = SageMakerEndpoint(mode="serverless")
    variant = Variant("tuned", NEW_MODEL, {}, "s3://b/model.tar.gz", 1.0)
    new_config = config_name(ENDPOINT, production_variants(spec, [variant]))
    reason = "The primary container for production variant tuned did not pass the ping health check."
    _stub_update_up_to_the_wait(stubber, new_config)
    # SageMaker rolled back: InService again, on the OLD config, with a FailureReason. The waiter accepts it.
    stubber.add_response("describe_endpoint", _endpoint("InService", OLD_CONFIG, reason))
    stubber.add_response("describe_endpoint", _endpoint("InService", OLD_CONFIG, reason))
    # The models the endpoint still serves are kept; the new config and model, which nothing serves, go.
    stubber.add_response("describe_endpoint_config", _config(OLD_CONFIG, OLD_MODEL), {"EndpointConfigName": OLD_CONFIG})
    stubber.add_response("describe_endpoint_config", _config(new_config, NEW_MODEL), {"EndpointConfigName": new_config})
    stubber.add_response("delete_endpoint_config", {}, {"EndpointConfigName": new_config})
    stubber.add_response("describe_model", _model(NEW_MODEL), {"ModelName": NEW_MODEL})
    stubber.add_response("delete_model", {}, {"ModelName": NEW_MODEL})

    with stubber, pytest.raises(ServiceError) as caught:
        deployer.deploy(spec, ENDPOINT, [variant], image_uri=IMAGE, role_arn=ROLE)

    stubber.assert_no_pending_responses()  # and nothing of OLD_CONFIG / OLD_MODEL was deleted
    message = caught.value.message
    assert f"rolled it back to {OLD_CONFIG}" in message and reason in message
    assert f"deleted the unused {new_config}, {NEW_MODEL}" in message
    assert "still serves the previous model" in (caught.value.hint or "")


def test_update_rollback_failed_stops_the_wait_at_once_and_deletes_nothing():
    deployer, stubber = _stubbed()
    spec = SageMakerEndpoint(mode="serverless")
    variant = Variant("tuned", NEW_MODEL, {}, "s3://b/model.tar.gz", 1.0)
    new_config = config_name(ENDPOINT, production_variants(spec, [variant]))
    reason = "Rolling deployment failed and the rollback failed too."
    _stub_update_up_to_the_wait(stubber, new_config)
    stubber.add_response("describe_endpoint", _endpoint("UpdateRollbackFailed", new_config, reason))
    stubber.add_response("describe_endpoint", _endpoint("UpdateRollbackFailed", new_config, reason))

    with stubber, pytest.raises(ServiceError, match=f"ended 'UpdateRollbackFailed': {reason}") as caught:
        deployer.deploy(spec, ENDPOINT, [variant], image_uri=IMAGE, role_arn=ROLE)

    stubber.assert_no_pending_responses()
    assert "mix of old and new configs" in (caught.value.hint or "")


def test_an_endpoint_left_in_update_rollback_failed_is_refused_before_anything_is_created():
    deployer, stubber = _stubbed()
    variant = Variant("tuned", NEW_MODEL, {}, "s3://b/model.tar.gz", 1.0)
    stubber.add_response("describe_endpoint", _endpoint("UpdateRollbackFailed", OLD_CONFIG, "rollback failed"))

    with stubber, pytest.raises(ServiceError, match="is 'UpdateRollbackFailed': rollback failed"):
        deployer.deploy(SageMakerEndpoint(), ENDPOINT, [variant], image_uri=IMAGE, role_arn=ROLE)
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(("first", "second"), [("real-time", "serverless"), ("serverless", "real-time")])
def test_switching_an_existing_endpoint_between_real_time_and_serverless_is_refused(aws, first, second):
    deployer = SageMakerDeployer(aws, timeout_s=60, poll_s=1)
    created = deployer.deploy(
        SageMakerEndpoint(mode=first),
        ENDPOINT,
        [Variant("tuned", OLD_MODEL, {}, "s3://b/old.tar.gz", 1.0)],
        image_uri=IMAGE,
        role_arn=ROLE,
    )
    assert created.action == "created"

    with pytest.raises(ServiceError) as caught:
        deployer.deploy(
            SageMakerEndpoint(mode=second),
            ENDPOINT,
            [Variant("tuned", NEW_MODEL, {}, "s3://b/new.tar.gz", 1.0)],
            image_uri=IMAGE,
            role_arn=ROLE,
        )

    assert f"UpdateEndpoint cannot turn a {first} endpoint into a {second} one" in caught.value.message
    assert "endpoint_name" in (caught.value.hint or "") and "register cleanup" in (caught.value.hint or "")
    # Refused before anything was created: the endpoint, its config and model are as they were.
    assert aws.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == created.endpoint_config_name
    assert [m["ModelName"] for m in aws.list_models()["Models"]] == [OLD_MODEL]
    assert len(aws.list_endpoint_configs()["EndpointConfigs"]) == 1


def test_a_rerun_after_a_killed_update_deletes_the_config_the_endpoint_left():
    """Killed while 'Updating': the re-run finds the endpoint InService on the new config ("unchanged"); the old
    config and model, recorded on the endpoint before the switch, are deleted then."""
    deployer, stubber = _stubbed()
    spec = SageMakerEndpoint(mode="serverless")
    variant = Variant("tuned", NEW_MODEL, {}, "s3://b/model.tar.gz", 1.0)
    new_config = config_name(ENDPOINT, production_variants(spec, [variant]))
    stubber.add_response("describe_endpoint", _endpoint("InService", new_config))
    stubber.add_response("describe_model", _model(NEW_MODEL), {"ModelName": NEW_MODEL})
    stubber.add_response("describe_endpoint_config", _config(new_config, NEW_MODEL), {"EndpointConfigName": new_config})
    stubber.add_response(
        "list_tags", {"Tags": [{"Key": PREVIOUS_CONFIG_TAG, "Value": OLD_CONFIG}]}, {"ResourceArn": ARN}
    )
    stubber.add_response("describe_endpoint_config", _config(OLD_CONFIG, OLD_MODEL), {"EndpointConfigName": OLD_CONFIG})
    stubber.add_response("delete_endpoint_config", {}, {"EndpointConfigName": OLD_CONFIG})
    stubber.add_response("describe_model", _model(OLD_MODEL), {"ModelName": OLD_MODEL})
    stubber.add_response("delete_model", {}, {"ModelName": OLD_MODEL})
    stubber.add_response(
        "add_tags", {}, {"ResourceArn": ARN, "Tags": [{"Key": PREVIOUS_CONFIG_TAG, "Value": new_config}]}
    )
    stubber.add_response("list_endpoint_configs", {"EndpointConfigs": []}, {"NameContains": ENDPOINT})

    with stubber:
        result = deployer.deploy(spec, ENDPOINT, [variant], image_uri=IMAGE, role_arn=ROLE)

    stubber.assert_no_pending_responses()
    assert result.action == "unchanged" and result.deleted == [OLD_CONFIG, OLD_MODEL]


def test_an_endpoint_being_deleted_is_waited_for_and_created_again(aws):
    """An interrupted cleanup left the endpoint 'Deleting': UpdateEndpoint would fail; the deletion is awaited."""
    deployer = SageMakerDeployer(aws, timeout_s=60, poll_s=1)
    old = Variant("tuned", OLD_MODEL, {}, "s3://b/old.tar.gz", 1.0)
    deployer.deploy(SageMakerEndpoint(), ENDPOINT, [old], image_uri=IMAGE, role_arn=ROLE)
    aws.delete_endpoint(EndpointName=ENDPOINT)  # moto deletes at once; SageMaker shows 'Deleting' for a while
    real_describe = aws.describe_endpoint
    answers = iter([_endpoint("Deleting", OLD_CONFIG)])
    aws.describe_endpoint = lambda **kwargs: next(answers, None) or real_describe(**kwargs)

    new = Variant("tuned", NEW_MODEL, {}, "s3://b/new.tar.gz", 1.0)
    result = deployer.deploy(SageMakerEndpoint(), ENDPOINT, [new], image_uri=IMAGE, role_arn=ROLE)

    assert result.action == "created"
    assert real_describe(EndpointName=ENDPOINT)["EndpointConfigName"] == result.endpoint_config_name
