"""Endpoint configs and models killed runs leave behind, through moto: cleanup and the deployer find and delete them,
never one another endpoint uses or one that is not provably this endpoint's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from osft.common.spec.deploy import SageMakerEndpoint
from osft.common.stage import run_stage
from osft.registrar import sagemaker_orphans
from osft.registrar.artifacts import content_hash
from osft.registrar.cleanup import cleanup_run
from osft.registrar.cli import cli
from osft.registrar.sagemaker_deploy import PREVIOUS_CONFIG_TAG, SageMakerDeployer, Variant, resource_name
from osft.registrar.sagemaker_orphans import ENDPOINT_TAG, RUN_TAG, owned
from osft.registrar.stage import STAGE
from tests.registrar.conftest import BUCKET, IMAGE, ROLE, sagemaker_section

ENDPOINT = "osft-tiny"
SERVERLESS = {"MemorySizeInMB": 2048, "MaxConcurrency": 1}


def _variant(label: str, endpoint: str = ENDPOINT) -> Variant:
    return Variant("tuned", resource_name(endpoint, content_hash(label)), {}, f"s3://{BUCKET}/{label}.tar.gz", 1.0)


def _deployer(aws, **options) -> SageMakerDeployer:
    return SageMakerDeployer(aws, timeout_s=60, poll_s=1, tags={RUN_TAG: "tiny"}, **options)


def _leave_config(deployer: SageMakerDeployer, label: str, endpoint: str = ENDPOINT) -> tuple[str, str]:
    """What a run killed before CreateEndpoint/UpdateEndpoint leaves: its model and config, (config, model)."""
    variant = _variant(label, endpoint)
    deployer.ensure_model(variant, image_uri=IMAGE, role_arn=ROLE)
    return deployer.ensure_config(SageMakerEndpoint(), endpoint, [variant]), variant.model_name


def _plain_config(aws, name: str, model: str, tags: dict[str, str] | None = None) -> None:
    """A config made outside osft's deployer (a person, another tool, an older osft)."""
    if model not in {m["ModelName"] for m in aws.list_models()["Models"]}:
        aws.create_model(ModelName=model, PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
    aws.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[{"VariantName": "tuned", "ModelName": model, "ServerlessConfig": SERVERLESS}],
        Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
    )


def _configs(aws) -> set[str]:
    return {c["EndpointConfigName"] for c in aws.list_endpoint_configs()["EndpointConfigs"]}


def _models(aws) -> set[str]:
    return {m["ModelName"] for m in aws.list_models()["Models"]}


# --- register cleanup ---------------------------------------------------------------------------------------------


def test_cleanup_deletes_the_config_the_endpoints_previous_config_tag_records(aws, run_folder):
    """A run killed after UpdateEndpoint, before deleting the config it left: only the endpoint's tag names it."""
    spec, run_dir = run_folder({"sagemaker": sagemaker_section()}, weights=False)
    serving = run_stage(STAGE, str(spec), str(run_dir))[0].stats.endpoint_config_name
    # The config the endpoint served before the switch, made by an older osft (no tags), under no osft name.
    _plain_config(aws, "osft-tiny-before-the-switch", "osft-tiny-old-model")
    arn = aws.describe_endpoint(EndpointName=ENDPOINT)["EndpointArn"]
    aws.add_tags(ResourceArn=arn, Tags=[{"Key": PREVIOUS_CONFIG_TAG, "Value": "osft-tiny-before-the-switch"}])
    (run_dir / "register" / "registration.json").unlink()  # a killed run records nothing

    result = CliRunner().invoke(cli, ["cleanup", "--spec", str(spec), "--run-dir", str(run_dir)])

    assert result.exit_code == 0, result.output
    assert "osft-tiny-before-the-switch" in result.output and serving in result.output
    assert aws.list_endpoints()["Endpoints"] == [] and _configs(aws) == set() and _models(aws) == set()


def test_cleanup_keeps_a_recorded_previous_config_and_its_model_another_endpoint_serves(aws, run_folder):
    spec, run_dir = run_folder({"sagemaker": sagemaker_section()}, weights=False)
    run_stage(STAGE, str(spec), str(run_dir))
    _plain_config(aws, "osft-tiny-before-the-switch", "osft-tiny-old-model")
    aws.create_endpoint(EndpointName="someone-elses", EndpointConfigName="osft-tiny-before-the-switch")
    arn = aws.describe_endpoint(EndpointName=ENDPOINT)["EndpointArn"]
    aws.add_tags(ResourceArn=arn, Tags=[{"Key": PREVIOUS_CONFIG_TAG, "Value": "osft-tiny-before-the-switch"}])

    result = cleanup_run(str(spec), str(run_dir))

    assert "endpoint config osft-tiny-before-the-switch: endpoint(s) someone-elses use it" in result.kept
    assert _configs(aws) == {"osft-tiny-before-the-switch"} and _models(aws) == {"osft-tiny-old-model"}


def test_cleanup_deletes_configs_killed_runs_left_and_nothing_that_is_not_provably_this_endpoints(aws, run_folder):
    spec, run_dir = run_folder({"sagemaker": sagemaker_section()}, weights=False)
    run_stage(STAGE, str(spec), str(run_dir))
    deployer = _deployer(aws)
    orphan, orphan_model = _leave_config(deployer, "killed before the switch")
    # Not this endpoint's: no osft tags; tagged for another endpoint; another endpoint's name; not osft's name shape.
    untagged, other = resource_name(ENDPOINT, content_hash("untagged")), resource_name(ENDPOINT, content_hash("other"))
    _plain_config(aws, untagged, "hand-made-model")
    _plain_config(aws, other, "other-model", {ENDPOINT_TAG: "osft-tiny2"})
    longer, _ = _leave_config(deployer, "longer name", endpoint="osft-tiny-base")
    _plain_config(aws, "osft-tiny-by-hand", "by-hand-model", {RUN_TAG: "tiny"})
    # This endpoint's, but another endpoint serves it (someone pointed theirs at it), and so its model.
    used, used_model = _leave_config(deployer, "served elsewhere")
    aws.create_endpoint(EndpointName="someone-elses", EndpointConfigName=used)
    # This endpoint's and unused, but its model is in a config another endpoint serves.
    shared_orphan = deployer.ensure_config(
        SageMakerEndpoint(memory_size_mb=5120), ENDPOINT, [_variant("served elsewhere")]
    )

    result = cleanup_run(str(spec), str(run_dir))

    assert {orphan, orphan_model, shared_orphan} <= set(result.deleted)
    assert _configs(aws) == {untagged, other, longer, "osft-tiny-by-hand", used}
    assert orphan_model not in _models(aws) and used_model in _models(aws)
    assert f"endpoint config {used}: endpoint(s) someone-elses use it" in result.kept


def test_cleanup_says_which_permissions_it_lacks_to_look_for_left_configs_and_still_finishes(
    aws, run_folder, monkeypatch
):
    spec, run_dir = run_folder({"sagemaker": sagemaker_section()}, weights=False)
    run_stage(STAGE, str(spec), str(run_dir))
    orphan, _ = _leave_config(_deployer(aws), "killed before the switch")

    def list_endpoints(**_kwargs):
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "ListEndpoints")

    aws.list_endpoints = list_endpoints  # a role whose SageMaker permissions stop at its own endpoints
    monkeypatch.setattr("osft.registrar.cleanup.sagemaker_client", lambda region: aws)

    result = CliRunner().invoke(cli, ["cleanup", "--spec", str(spec), "--run-dir", str(run_dir)])

    assert result.exit_code == 0, result.output
    assert "not looked for" in result.output and "sagemaker:ListEndpoints" in result.output
    assert _configs(aws) == {orphan}  # kept: whether another endpoint serves it cannot be told


# --- the deployer, after a deploy -----------------------------------------------------------------------------------


def test_a_deploy_deletes_this_endpoints_config_a_killed_run_left_once_it_is_old_enough(aws):
    spec = SageMakerEndpoint()
    first = _deployer(aws, orphan_min_age_s=0).deploy(spec, ENDPOINT, [_variant("v1")], image_uri=IMAGE, role_arn=ROLE)
    orphan, orphan_model = _leave_config(_deployer(aws), "killed before the switch")
    foreign = resource_name(ENDPOINT, content_hash("untagged"))
    _plain_config(aws, foreign, "hand-made-model")

    young = _deployer(aws).deploy(spec, ENDPOINT, [_variant("v1")], image_uri=IMAGE, role_arn=ROLE)
    assert young.action == "unchanged" and young.deleted == []  # a day's grace: maybe a running deploy's new config
    assert orphan in _configs(aws)

    again = _deployer(aws, orphan_min_age_s=0).deploy(spec, ENDPOINT, [_variant("v1")], image_uri=IMAGE, role_arn=ROLE)

    assert again.action == "unchanged" and again.deleted == [orphan_model, orphan]
    assert _configs(aws) == {first.endpoint_config_name, foreign}
    assert _models(aws) == {*first.model_names, "hand-made-model"}


def test_an_old_left_config_a_running_deploy_reuses_is_not_swept_by_a_concurrent_deploy(aws, monkeypatch):
    spec = SageMakerEndpoint()
    _deployer(aws, orphan_min_age_s=0).deploy(spec, ENDPOINT, [_variant("v1")], image_uri=IMAGE, role_arn=ROLE)
    left, left_model = _leave_config(_deployer(aws), "killed before the switch")
    two_days_on = datetime.now(UTC) + timedelta(days=2)
    monkeypatch.setattr(sagemaker_orphans, "utc_now", lambda: two_days_on)

    # A deploy of the same model and settings reuses that config, claiming it before its switch ...
    assert _leave_config(_deployer(aws), "killed before the switch") == (left, left_model)
    # ... so another deploy on the endpoint meanwhile keeps it, though it was created two days ago.
    concurrent = _deployer(aws).deploy(spec, ENDPOINT, [_variant("v1")], image_uri=IMAGE, role_arn=ROLE)
    assert concurrent.deleted == [] and left in _configs(aws)

    # Unclaimed for a day, it is a killed run's config again.
    monkeypatch.setattr(sagemaker_orphans, "utc_now", lambda: two_days_on + timedelta(days=1, seconds=1))
    again = _deployer(aws).deploy(spec, ENDPOINT, [_variant("v1")], image_uri=IMAGE, role_arn=ROLE)
    assert again.deleted == [left_model, left]


def test_a_deploy_keeps_the_models_its_own_endpoint_serves_when_deleting_a_left_config(aws):
    """A killed run's config may list the model the endpoint serves (same model, other serverless settings)."""
    first = _deployer(aws, orphan_min_age_s=0).deploy(
        SageMakerEndpoint(), ENDPOINT, [_variant("v1")], image_uri=IMAGE, role_arn=ROLE
    )
    orphan = _deployer(aws).ensure_config(SageMakerEndpoint(memory_size_mb=5120), ENDPOINT, [_variant("v1")])

    again = _deployer(aws, orphan_min_age_s=0).deploy(
        SageMakerEndpoint(), ENDPOINT, [_variant("v1")], image_uri=IMAGE, role_arn=ROLE
    )

    assert again.deleted == [orphan]
    assert _models(aws) == set(first.model_names)


def test_a_deploy_that_may_not_list_endpoints_still_succeeds_and_deletes_nothing_it_cannot_check(aws):
    deployer = _deployer(aws, orphan_min_age_s=0)
    deployer.deploy(SageMakerEndpoint(), ENDPOINT, [_variant("v1")], image_uri=IMAGE, role_arn=ROLE)
    orphan, _ = _leave_config(deployer, "killed before the switch")

    def list_endpoints(**_kwargs):
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "ListEndpoints")

    aws.list_endpoints = list_endpoints
    result = deployer.deploy(SageMakerEndpoint(), ENDPOINT, [_variant("v1")], image_uri=IMAGE, role_arn=ROLE)

    assert result.action == "unchanged" and result.deleted == [] and orphan in _configs(aws)


def test_a_network_error_in_the_sweep_does_not_fail_a_deploy_whose_endpoint_serves_the_new_config(aws):
    from botocore.exceptions import EndpointConnectionError

    deployer = _deployer(aws, orphan_min_age_s=0)
    deployer.deploy(SageMakerEndpoint(), ENDPOINT, [_variant("v1")], image_uri=IMAGE, role_arn=ROLE)
    orphan, _ = _leave_config(deployer, "killed before the switch")

    real_list_tags = aws.list_tags

    def list_tags(**kwargs):
        if ":endpoint-config/" in kwargs["ResourceArn"]:  # the sweep's look at a left config's tags
            raise EndpointConnectionError(endpoint_url="https://api.sagemaker.us-east-1.amazonaws.com")
        return real_list_tags(**kwargs)

    aws.list_tags = list_tags
    result = deployer.deploy(SageMakerEndpoint(), ENDPOINT, [_variant("v1")], image_uri=IMAGE, role_arn=ROLE)

    assert result.action == "unchanged" and orphan in _configs(aws)  # swept by a later deploy or cleanup


@pytest.mark.parametrize(
    ("tags", "cut", "expected"),
    [
        ({ENDPOINT_TAG: ENDPOINT, RUN_TAG: "tiny"}, False, True),
        ({ENDPOINT_TAG: ENDPOINT}, True, True),  # the tag tells even when the name was cut
        ({ENDPOINT_TAG: "osft-tiny2", RUN_TAG: "tiny"}, False, False),
        ({RUN_TAG: "tiny"}, False, True),  # an older osft's config: no endpoint tag yet
        ({RUN_TAG: "tiny"}, True, False),  # ... but a cut name may start another endpoint's name
        ({}, False, False),
        ({"team": "search"}, False, False),
    ],
)
def test_a_config_is_this_endpoints_only_by_its_osft_tags(tags, cut, expected):
    assert owned(tags, ENDPOINT, cut=cut) is expected
