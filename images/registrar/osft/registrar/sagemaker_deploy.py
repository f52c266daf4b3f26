"""A SageMaker endpoint for the fine-tuned model: create, update in place, A/B variants, cleanup.

Names are derived from the content: the model name carries a hash of the artifact, image and
environment, the endpoint config name a hash of its variants. A re-run with the same model
finds everything in place and changes nothing; a new model creates a new model and config
and updates the endpoint to it (``UpdateEndpoint``), then deletes the config and models the
endpoint no longer uses.

An update SageMaker rolled back (the endpoint is ``InService`` again on the previous config,
with a ``FailureReason``) is an error: the new, unused config and models are deleted and the
previous ones, which the endpoint still serves, are kept. A real-time endpoint cannot be turned
into a serverless one (or back) by ``UpdateEndpoint``; that is refused before anything is created.

Before switching configs the endpoint is tagged with the config it leaves (``osft:previous-config``),
so a run killed during the switch leaves a record: the next run that finds the endpoint serving its
config deletes the recorded one. An endpoint found ``Deleting`` is waited for and created again.

Configs are tagged ``osft:endpoint`` with the endpoint's name. After every deploy, this endpoint's
configs that no endpoint uses and that are a day old (a run killed before switching to its new
config leaves one behind, unrecorded) are deleted with their unused models (``sagemaker_orphans``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from osft.common.errors import OsftError, ServiceError
from osft.common.spec.deploy import SageMakerEndpoint
from osft.registrar.artifacts import content_hash
from osft.registrar.sagemaker_api import SageMakerApi
from osft.registrar.sagemaker_orphans import ENDPOINT_TAG, Sweep, claim_tag, sweep_configs

MAX_NAME = 63
BUSY_STATES = ("Creating", "Updating", "SystemUpdating", "RollingBack")
ROLLBACK_FAILED_HINT = (
    "both the update and SageMaker's rollback failed, so it serves a mix of old and new configs; "
    "restore it (AWS guide 'Rolling deployments') or delete it ('register cleanup') and re-run; "
    "see /aws/sagemaker/Endpoints/{endpoint} in CloudWatch Logs"
)
TUNED_VARIANT = "tuned"
BASE_VARIANT = "base"
# On the endpoint: the config it served before the last switch; equal to the current one once that is deleted.
PREVIOUS_CONFIG_TAG = "osft:previous-config"
# A deploy deletes this endpoint's configs no endpoint uses once they are this old: a younger one may be a running
# deploy's new config, not switched to yet (that waits at most its wait_timeout_s, when it replaces a failed endpoint).
ORPHAN_MIN_AGE_S = 24 * 3600

# botocore's EndpointInService waiter, plus UpdateRollbackFailed as a failure: that status never
# becomes InService by itself, so the built-in waiter would poll it until the timeout.
IN_SERVICE_WAITER: dict[str, Any] = {
    "version": 2,
    "waiters": {
        "EndpointInService": {
            "operation": "DescribeEndpoint",
            "delay": 30,
            "maxAttempts": 120,
            "acceptors": [
                {"matcher": "path", "argument": "EndpointStatus", "state": "success", "expected": "InService"},
                {"matcher": "path", "argument": "EndpointStatus", "state": "failure", "expected": "Failed"},
                {
                    "matcher": "path",
                    "argument": "EndpointStatus",
                    "state": "failure",
                    "expected": "UpdateRollbackFailed",
                },
                {"matcher": "error", "state": "failure", "expected": "ValidationException"},
            ],
        }
    },
}


@dataclass(frozen=True)
class Variant:
    """One production variant: a SageMaker model (the image + an artifact or a model id) and its traffic weight."""

    name: str
    model_name: str
    environment: dict[str, str]
    model_data_url: str | None
    weight: float


@dataclass
class EndpointResult:
    """What ``deploy_endpoint`` did; recorded in ``registration.json`` for ``register cleanup``."""

    endpoint_name: str
    endpoint_config_name: str
    model_names: list[str]
    action: str
    region: str
    deleted: list[str] = field(default_factory=list)


def resource_name(prefix: str, digest: str, length: int = 10) -> str:
    """``<prefix>-<digest[:length]>``, with the prefix cut so the whole fits SageMaker's 63 characters."""
    return f"{name_prefix(prefix, length)}-{digest[:length]}"


def name_prefix(prefix: str, length: int = 10) -> str:
    """``prefix`` as ``resource_name`` starts a name with it: cut to leave room for ``-<digest[:length]>``."""
    return prefix[: MAX_NAME - length - 1].rstrip("-")


def variant_names(spec: SageMakerEndpoint) -> tuple[str, ...]:
    """The production variants ``plan_variants`` makes for ``spec``: the tuned one, and the base one for A/B."""
    return (TUNED_VARIANT,) if spec.ab_base_weight is None else (TUNED_VARIANT, BASE_VARIANT)


def plan_variants(
    spec: SageMakerEndpoint,
    *,
    endpoint_name: str,
    image_uri: str,
    model_data_url: str,
    artifact_sha256: str,
    tuned_environment: dict[str, str],
    base_model: str,
) -> list[Variant]:
    """The tuned variant, plus a base-model variant when ``ab_base_weight`` is set."""
    tuned_hash = content_hash(artifact_sha256, image_uri, json.dumps(tuned_environment, sort_keys=True))
    tuned_weight = 1.0 if spec.ab_base_weight is None else round(1 - spec.ab_base_weight, 4)
    variants = [
        Variant(
            TUNED_VARIANT, resource_name(endpoint_name, tuned_hash), tuned_environment, model_data_url, tuned_weight
        )
    ]
    if spec.ab_base_weight is not None:
        environment = {"OSFT_SERVE_MODEL": base_model}
        base_hash = content_hash(base_model, image_uri, json.dumps(environment, sort_keys=True))
        variants.append(
            Variant(
                BASE_VARIANT,
                resource_name(f"{endpoint_name}-base", base_hash),
                environment,
                None,
                round(spec.ab_base_weight, 4),
            )
        )
    return variants


def endpoint_kind(config: dict[str, Any] | None, endpoint: dict[str, Any] | None = None) -> str | None:
    """``serverless`` or ``real-time``: from an endpoint config's variants, else the endpoint's; None when unknown."""
    rows = (config or {}).get("ProductionVariants") or []
    if rows:
        return "serverless" if any("ServerlessConfig" in row for row in rows) else "real-time"
    rows = (endpoint or {}).get("ProductionVariants") or []
    if any("CurrentServerlessConfig" in row or "DesiredServerlessConfig" in row for row in rows):
        return "serverless"
    if any("CurrentInstanceCount" in row or "DesiredInstanceCount" in row for row in rows):
        return "real-time"
    return None


def config_name(endpoint_name: str, rows: list[dict[str, Any]]) -> str:
    """The endpoint config's name: the endpoint's, plus a hash of its production variants."""
    return resource_name(endpoint_name, content_hash(json.dumps(rows, sort_keys=True)))


def production_variants(spec: SageMakerEndpoint, variants: list[Variant]) -> list[dict[str, Any]]:
    rows = []
    for variant in variants:
        row: dict[str, Any] = {
            "VariantName": variant.name,
            "ModelName": variant.model_name,
            "InitialVariantWeight": variant.weight,
        }
        if spec.mode == "serverless":
            row["ServerlessConfig"] = {"MemorySizeInMB": spec.memory_size_mb, "MaxConcurrency": spec.max_concurrency}
        else:
            row["InstanceType"] = spec.instance_type
            row["InitialInstanceCount"] = spec.instance_count
        rows.append(row)
    return rows


class SageMakerDeployer(SageMakerApi):
    """Creates or updates one endpoint with boto3; every AWS failure becomes a user-facing error.

    ``client`` is a boto3 ``sagemaker`` client. ``timeout_s`` bounds each wait for the
    endpoint (``endpoint_in_service`` / ``endpoint_deleted`` waiters); ``poll_s`` is the
    waiter's delay. After a deploy, this endpoint's configs no endpoint uses that are at least
    ``orphan_min_age_s`` old are deleted (``sagemaker_orphans``).
    """

    def __init__(
        self,
        client: Any,
        *,
        timeout_s: int,
        poll_s: float = 30,
        tags: dict[str, str] | None = None,
        orphan_min_age_s: float = ORPHAN_MIN_AGE_S,
    ):
        super().__init__(client)
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.tags = [{"Key": k, "Value": v} for k, v in (tags or {}).items()]
        self.orphan_min_age_s = orphan_min_age_s

    def _waiter(self, waiter_name: str) -> Any:
        if waiter_name == "endpoint_in_service":
            from botocore.waiter import WaiterModel, create_waiter_with_client

            return create_waiter_with_client("EndpointInService", WaiterModel(IN_SERVICE_WAITER), self.client)
        return self.client.get_waiter(waiter_name)

    def _wait(self, waiter_name: str, endpoint_name: str) -> None:
        from botocore.exceptions import WaiterError

        delay = max(1, int(self.poll_s))
        attempts = max(1, math.ceil(self.timeout_s / delay))
        try:
            self._waiter(waiter_name).wait(
                EndpointName=endpoint_name, WaiterConfig={"Delay": delay, "MaxAttempts": attempts}
            )
        except WaiterError as exc:
            described = self.describe("describe_endpoint", EndpointName=endpoint_name) or {}
            status = described.get("EndpointStatus", "unknown")
            reason = described.get("FailureReason") or str(exc)
            if "Max attempts exceeded" in str(exc):
                raise ServiceError(
                    f"SageMaker endpoint {endpoint_name} is still '{status}' after {self.timeout_s}s",
                    hint="raise deploy.sagemaker.wait_timeout_s, or look at /aws/sagemaker/Endpoints/"
                    f"{endpoint_name} in CloudWatch",
                ) from None
            if status == "UpdateRollbackFailed":
                raise ServiceError(
                    f"SageMaker endpoint {endpoint_name} ended 'UpdateRollbackFailed': {reason}",
                    hint=ROLLBACK_FAILED_HINT.format(endpoint=endpoint_name),
                ) from None
            raise ServiceError(
                f"SageMaker endpoint {endpoint_name} ended '{status}': {reason}",
                hint=f"see /aws/sagemaker/Endpoints/{endpoint_name} in CloudWatch Logs; "
                "a container that fails /ping usually cannot load its model",
            ) from None

    # --- resources -----------------------------------------------------------------------
    def ensure_model(self, variant: Variant, *, image_uri: str, role_arn: str) -> bool:
        """Create the SageMaker model unless one of that name exists. Returns True when created."""
        if self.describe("describe_model", ModelName=variant.model_name) is not None:
            return False
        container: dict[str, Any] = {"Image": image_uri, "Environment": variant.environment, "Mode": "SingleModel"}
        if variant.model_data_url:
            container["ModelDataUrl"] = variant.model_data_url
        self.call(
            f"creating model {variant.model_name}",
            "create_model",
            ModelName=variant.model_name,
            PrimaryContainer=container,
            ExecutionRoleArn=role_arn,
            **({"Tags": self.tags} if self.tags else {}),
        )
        self.log.info("sagemaker_model_created", model=variant.model_name, variant=variant.name)
        return True

    def ensure_config(
        self, spec: SageMakerEndpoint, endpoint_name: str, variants: list[Variant], *, serving: str | None = None
    ) -> str:
        """Create the endpoint config unless it exists; an existing one is claimed unless it is ``serving`` already."""
        rows = production_variants(spec, variants)
        name = config_name(endpoint_name, rows)
        existing = self.describe("describe_endpoint_config", EndpointConfigName=name)
        if existing is None:
            # Tagged with the endpoint, so that a config a killed run leaves behind can be told for this endpoint's.
            self.call(
                f"creating endpoint config {name}",
                "create_endpoint_config",
                EndpointConfigName=name,
                ProductionVariants=rows,
                Tags=[*self.tags, {"Key": ENDPOINT_TAG, "Value": endpoint_name}],
            )
            self.log.info("sagemaker_endpoint_config_created", config=name, mode=spec.mode)
        elif name != serving:
            # Reused: claimed, so that a concurrent deploy's sweep does not take it for a killed run's old one.
            arn = existing["EndpointConfigArn"]
            self.call(f"tagging endpoint config {name}", "add_tags", ResourceArn=arn, Tags=[claim_tag()])
        return name

    def deploy(
        self, spec: SageMakerEndpoint, endpoint_name: str, variants: list[Variant], *, image_uri: str, role_arn: str
    ) -> EndpointResult:
        """Make ``endpoint_name`` serve ``variants``: create it, update it in place, or leave it as it is; then
        delete the endpoint's configs (and models) that killed runs left and no endpoint uses."""
        result = self._switch(spec, endpoint_name, variants, image_uri=image_uri, role_arn=role_arn)
        try:
            sweep = self.sweep_orphans(
                endpoint_name, keep=[result.endpoint_config_name, *result.deleted], min_age_s=self.orphan_min_age_s
            )
        except Exception as exc:  # noqa: BLE001 - best effort: the endpoint serves the new model; swept next time
            error = exc.message if isinstance(exc, OsftError) else f"{type(exc).__name__}: {exc}"
            self.log.warning("sagemaker_orphan_sweep_failed", endpoint=endpoint_name, error=error)
            return result
        for note in sweep.kept:
            self.log.warning("sagemaker_orphan_kept", endpoint=endpoint_name, kept=note)
        result.deleted += sweep.deleted
        return result

    def sweep_orphans(
        self, endpoint_name: str, *, recorded: Iterable[str] = (), keep: Iterable[str] = (), min_age_s: float
    ) -> Sweep:
        """Delete the ``recorded`` configs and this endpoint's orphaned ones, and their models, that nothing uses."""
        prefix = name_prefix(endpoint_name)
        return sweep_configs(self, endpoint_name, prefix, recorded=recorded, keep=keep, min_age_s=min_age_s)

    def previous_config(self, endpoint_name: str) -> str | None:
        """The config the endpoint's ``osft:previous-config`` tag records; None when the endpoint is gone."""
        existing = self.describe("describe_endpoint", EndpointName=endpoint_name)
        return self._recorded_previous(existing["EndpointArn"]) if existing else None

    def _switch(
        self, spec: SageMakerEndpoint, endpoint_name: str, variants: list[Variant], *, image_uri: str, role_arn: str
    ) -> EndpointResult:
        config = config_name(endpoint_name, production_variants(spec, variants))
        region = self.client.meta.region_name
        models = [v.model_name for v in variants]
        existing = self.describe("describe_endpoint", EndpointName=endpoint_name)
        if existing is not None and existing.get("EndpointStatus") == "Deleting":
            self._await_deletion(endpoint_name)
            existing = None
        status = None
        if existing is not None:
            status = existing.get("EndpointStatus")
            if status in BUSY_STATES:
                self.log.info("sagemaker_endpoint_busy", endpoint=endpoint_name, status=status)
                self._wait("endpoint_in_service", endpoint_name)
                existing = self.describe("describe_endpoint", EndpointName=endpoint_name) or existing
                status = existing.get("EndpointStatus")
            # Checked before anything is created, so a refused run leaves nothing behind.
            self._check_updatable(spec, endpoint_name, existing, config)

        for variant in variants:
            self.ensure_model(variant, image_uri=image_uri, role_arn=role_arn)
        self.ensure_config(
            spec, endpoint_name, variants, serving=existing.get("EndpointConfigName") if existing else None
        )
        if existing is None:
            self.call(
                f"creating endpoint {endpoint_name}",
                "create_endpoint",
                EndpointName=endpoint_name,
                EndpointConfigName=config,
                **({"Tags": self.tags} if self.tags else {}),
            )
            self.log.info("sagemaker_endpoint_creating", endpoint=endpoint_name, config=config)
            self._wait("endpoint_in_service", endpoint_name)
            return EndpointResult(endpoint_name, config, models, "created", region)

        previous = existing.get("EndpointConfigName")
        arn = existing["EndpointArn"]
        if previous == config and status == "InService":
            self.log.info("sagemaker_endpoint_unchanged", endpoint=endpoint_name, config=config)
            result = EndpointResult(endpoint_name, config, models, "unchanged", region)
            result.deleted = self._delete_recorded_previous(arn, config, keep_models=set(models))
            return result
        previous_tag = [{"Key": PREVIOUS_CONFIG_TAG, "Value": previous}] if previous else []
        if status == "Failed":
            # A failed endpoint cannot be updated; it is replaced.
            self.call(f"deleting failed endpoint {endpoint_name}", "delete_endpoint", EndpointName=endpoint_name)
            self._wait("endpoint_deleted", endpoint_name)
            self.call(
                f"creating endpoint {endpoint_name}",
                "create_endpoint",
                EndpointName=endpoint_name,
                EndpointConfigName=config,
                **({"Tags": [*self.tags, *previous_tag]} if self.tags or previous_tag else {}),
            )
            self._wait("endpoint_in_service", endpoint_name)
            action = "recreated"
        else:
            if previous_tag:
                self.call(f"tagging endpoint {endpoint_name}", "add_tags", ResourceArn=arn, Tags=previous_tag)
            self.call(
                f"updating endpoint {endpoint_name}",
                "update_endpoint",
                EndpointName=endpoint_name,
                EndpointConfigName=config,
            )
            self.log.info("sagemaker_endpoint_updating", endpoint=endpoint_name, config=config, previous=previous)
            self._wait("endpoint_in_service", endpoint_name)
            self._check_updated(endpoint_name, config)
            action = "updated"
        result = EndpointResult(endpoint_name, config, models, action, region)
        if previous and previous != config:
            result.deleted = self._delete_unused(previous, keep_models=set(models))
            self._record_previous(arn, config)
        return result

    def _await_deletion(self, endpoint_name: str) -> None:
        """An endpoint being deleted (an interrupted cleanup) cannot be updated: wait until it is gone."""
        self.log.info("sagemaker_endpoint_deleting_waited_for", endpoint=endpoint_name)
        self._wait("endpoint_deleted", endpoint_name)

    def _delete_recorded_previous(self, arn: str, config: str, keep_models: set[str]) -> list[str]:
        """Delete the config the endpoint left in a switch whose run ended before deleting it (killed mid-update)."""
        previous = self._recorded_previous(arn)
        if not previous or previous == config:
            return []
        deleted = self._delete_unused(previous, keep_models=keep_models)
        self._record_previous(arn, config)
        return deleted

    def _recorded_previous(self, arn: str) -> str | None:
        tags = self.call("reading the endpoint's tags", "list_tags", ResourceArn=arn).get("Tags", [])
        return next((tag["Value"] for tag in tags if tag.get("Key") == PREVIOUS_CONFIG_TAG), None)

    def _record_previous(self, arn: str, config: str) -> None:
        """Mark the switch done: the recorded previous config is the current one, so nothing is left to delete."""
        tag = [{"Key": PREVIOUS_CONFIG_TAG, "Value": config}]
        self.call("tagging the endpoint", "add_tags", ResourceArn=arn, Tags=tag)

    def _check_updatable(
        self, spec: SageMakerEndpoint, endpoint_name: str, existing: dict[str, Any], config: str
    ) -> None:
        """Refuse an update SageMaker cannot do: from UpdateRollbackFailed, or between real-time and serverless."""
        status = existing.get("EndpointStatus")
        if status == "UpdateRollbackFailed":
            raise ServiceError(
                f"SageMaker endpoint {endpoint_name} is 'UpdateRollbackFailed': "
                f"{existing.get('FailureReason') or 'no reason given'}",
                hint=ROLLBACK_FAILED_HINT.format(endpoint=endpoint_name),
            )
        current = existing.get("EndpointConfigName")
        if status == "Failed" or current == config:
            return  # a failed endpoint is deleted and recreated; the same config needs no update
        described = self.describe("describe_endpoint_config", EndpointConfigName=current) if current else None
        kind = endpoint_kind(described, existing)
        if kind is not None and kind != spec.mode:
            raise ServiceError(
                f"SageMaker endpoint {endpoint_name} is {kind} and deploy.sagemaker.mode is '{spec.mode}': "
                f"UpdateEndpoint cannot turn a {kind} endpoint into a {spec.mode} one",
                hint=f"keep mode '{kind}', give deploy.sagemaker.endpoint_name a new name, or delete the endpoint "
                "first ('register cleanup') and re-run; it is not replaced automatically because "
                "deleting it would take the model offline for OpenSearch",
            )

    def _check_updated(self, endpoint_name: str, config: str) -> None:
        """After ``UpdateEndpoint``: the endpoint must serve ``config`` with no FailureReason.

        SageMaker rolls a failed update back: the endpoint becomes ``InService`` again on the
        previous config, with a ``FailureReason``. Then the new config and models, which
        nothing serves, are deleted and the previous ones are kept.
        """
        after = self.describe("describe_endpoint", EndpointName=endpoint_name) or {}
        serving, reason = after.get("EndpointConfigName"), after.get("FailureReason")
        if serving == config and not reason:
            return
        logs = f"see /aws/sagemaker/Endpoints/{endpoint_name} in CloudWatch Logs"
        if serving == config:
            raise ServiceError(
                f"SageMaker endpoint {endpoint_name} serves the new config {config} but reports a failed update: "
                f"{reason}",
                hint=f"{logs}; nothing was deleted; check the endpoint in the SageMaker console before re-running",
            )
        deleted: list[str] = []
        if serving:
            # Models the endpoint still serves are kept; when its config is gone, all models are kept.
            kept = self.describe("describe_endpoint_config", EndpointConfigName=serving)
            keep = {row["ModelName"] for row in kept.get("ProductionVariants", [])} if kept else None
            deleted = self._delete_unused(config, keep_models=keep)
        self.log.warning("sagemaker_update_rolled_back", endpoint=endpoint_name, serving=serving, deleted=deleted)
        raise ServiceError(
            f"SageMaker could not update endpoint {endpoint_name} to {config} and rolled it back to {serving}: "
            f"{reason or 'no reason given'}" + (f" (deleted the unused {', '.join(deleted)})" if deleted else ""),
            hint=f"{logs}; the endpoint still serves the previous model; "
            "a container that fails /ping usually cannot load its model",
        )

    def _delete_unused(self, config_name: str, keep_models: set[str] | None) -> list[str]:
        """Delete an endpoint config the endpoint does not serve, and its models not in ``keep_models``.

        ``keep_models`` None keeps every model (deletes the config only).
        """
        described = self.describe("describe_endpoint_config", EndpointConfigName=config_name)
        if described is None:
            return []
        deleted = []
        self.call(f"deleting endpoint config {config_name}", "delete_endpoint_config", EndpointConfigName=config_name)
        deleted.append(config_name)
        for row in described.get("ProductionVariants", []):
            model = row.get("ModelName")
            if keep_models is None or not model or model in keep_models:
                continue
            if self.describe("describe_model", ModelName=model) is not None:
                self.call(f"deleting model {model}", "delete_model", ModelName=model)
                deleted.append(model)
        self.log.info("sagemaker_previous_deleted", deleted=deleted)
        return deleted

    def delete_endpoint(self, endpoint_name: str, extra_configs: list[str], extra_models: list[str]) -> list[str]:
        """Delete the endpoint, its config and models, and any other config/model named; missing ones are skipped."""
        deleted: list[str] = []
        configs, models = list(extra_configs), list(extra_models)
        existing = self.describe("describe_endpoint", EndpointName=endpoint_name)
        if existing is not None:
            configs.insert(0, existing["EndpointConfigName"])
            self.call(f"deleting endpoint {endpoint_name}", "delete_endpoint", EndpointName=endpoint_name)
            self._wait("endpoint_deleted", endpoint_name)
            deleted.append(endpoint_name)
        for config in dict.fromkeys(configs):
            described = self.describe("describe_endpoint_config", EndpointConfigName=config)
            if described is None:
                continue
            models.extend(row["ModelName"] for row in described.get("ProductionVariants", []))
            self.call(f"deleting endpoint config {config}", "delete_endpoint_config", EndpointConfigName=config)
            deleted.append(config)
        for model in dict.fromkeys(models):
            if self.describe("describe_model", ModelName=model) is not None:
                self.call(f"deleting model {model}", "delete_model", ModelName=model)
                deleted.append(model)
        return deleted


def runtime_url(region: str, endpoint_name: str) -> str:
    """The InvokeEndpoint URL an ML Commons connector posts to."""
    return f"https://runtime.sagemaker.{region}.amazonaws.com/endpoints/{endpoint_name}/invocations"
