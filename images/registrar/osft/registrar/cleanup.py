"""``register cleanup``: delete what a run's register stage deployed.

- ML Commons (when the run registered in OpenSearch): the run's model and query tokenizer are
  undeployed and deleted, then the connector of a remote model. The model group and a
  pretrained cross-encoder are kept, since other runs may use them (ML Commons keeps an empty
  group too). A connector that another run's model still uses is kept, and so is the SageMaker
  endpoint it calls. The run's older connectors to the endpoint (a changed connector body made a
  new one; the name, the run marker and a fingerprint in the description tell them) are deleted
  too when no model uses them.
- SageMaker: the endpoint, its endpoint configs and models; then the config the endpoint's
  ``osft:previous-config`` tag records (a run killed during a switch) and this endpoint's configs
  that a run killed before its switch left (``sagemaker_orphans``), with their models, unless an
  endpoint uses them.

The ids and names come from the run's ``register/registration.json`` when it exists, else from
the spec (the endpoint name) and the endpoint itself (its config and that config's models).
Anything already gone is skipped. The register manifest is removed once everything is gone,
so the next ``osft run`` deploys again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from osft.common.aws_clients import sagemaker_client
from osft.common.errors import OsftError, ServiceError
from osft.common.logging import get_logger
from osft.common.opensearch import opensearch_client
from osft.common.spec import RunSpec
from osft.common.spec.deploy import SageMakerEndpoint
from osft.common.stage import MANIFEST_FILE, load_spec
from osft.common.storage import Location, join
from osft.registrar.connector import connector_name, made_by_run
from osft.registrar.ml_commons import CONNECTOR_IN_USE, MLCommons
from osft.registrar.sagemaker_deploy import PREVIOUS_CONFIG_TAG, SageMakerDeployer
from osft.registrar.stage import REGISTRATION_FILE


@dataclass
class CleanupResult:
    endpoint_name: str | None
    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def cleanup_run(spec_uri: str, run_dir: str, *, timeout_s: int | None = None) -> CleanupResult:
    """Delete the run's ML Commons models and connector and its SageMaker endpoint, configs and models.

    A failure on one side does not stop the other (a billed endpoint is still deleted when the
    cluster cannot be reached); the error then lists what was deleted and what was not.
    """
    spec = load_spec(spec_uri)
    registration = Location(join(run_dir, "register", REGISTRATION_FILE))
    recorded: dict[str, Any] = json.loads(registration.read_text()) if registration.exists() else {}
    opensearch = recorded.get("opensearch")
    sagemaker = spec.deploy.sagemaker if spec.deploy else None
    endpoint_name = (recorded.get("sagemaker") or {}).get("endpoint_name") or (
        (sagemaker.endpoint_name or f"osft-{spec.name}") if sagemaker else None
    )
    if not opensearch and endpoint_name is None:
        raise OsftError(
            f"{spec_uri}: the spec has no deploy.sagemaker section and {registration.uri} names nothing deployed",
            hint="nothing to clean up for this run",
        )
    result = CleanupResult(endpoint_name)
    failures: list[str] = []
    endpoint_shared = False
    if opensearch:
        try:
            endpoint_shared = _cleanup_opensearch(spec, spec_uri, opensearch, endpoint_name, result, failures)
        except OsftError as exc:
            failures.append(f"ML Commons: {exc.message}")
    if endpoint_name is not None and not endpoint_shared:
        try:
            _cleanup_sagemaker(sagemaker, recorded.get("sagemaker") or {}, endpoint_name, timeout_s, result)
        except OsftError as exc:
            failures.append(f"SageMaker: {exc.message}")
    log = get_logger(run_id=spec.name, stage="register")
    if failures:
        log.error("cleanup_incomplete", deleted=result.deleted, kept=result.kept, failures=failures)
        raise OsftError(
            f"cleanup of run {spec.name} is incomplete. Deleted: {', '.join(result.deleted) or 'nothing'}. "
            f"Failed: {'; '.join(failures)}",
            hint="fix the cause and run register cleanup again; what is already gone is skipped",
        )
    Location(join(run_dir, "register", MANIFEST_FILE)).delete_tree()
    log.info("cleanup_done", endpoint=endpoint_name, deleted=result.deleted, kept=result.kept)
    return result


def _cleanup_opensearch(
    spec: RunSpec,
    spec_uri: str,
    recorded: dict[str, Any],
    endpoint_name: str | None,
    result: CleanupResult,
    failures: list[str],
) -> bool:
    """Remove the run's models, then its connector unless another run's model uses it (then True: shared), then
    the run's older connectors to ``endpoint_name`` that no model uses (a failure there goes to ``failures``, so
    that it cannot hide that the endpoint is shared)."""
    options = spec.deploy.opensearch if spec.deploy else None
    if options is None:
        raise OsftError(
            f"{spec_uri}: the run registered models in OpenSearch at {recorded.get('url')}, but the spec has no "
            "deploy.opensearch section to connect with",
            hint="run cleanup with the spec the run was registered with",
        )
    client = opensearch_client(options.connection, field="deploy.opensearch.connection")
    ml = MLCommons(
        client,
        url=options.connection.url,
        task_timeout_s=options.task_timeout_s,
        poll_interval_s=options.poll_interval_s,
    )
    removed: set[str] = set()
    for key in ("model_id", "tokenizer_model_id"):
        if recorded.get(key) and ml.remove_model(recorded[key]):
            removed.add(recorded[key])
            result.deleted.append(f"ML Commons model {recorded[key]}")
    if recorded.get("cross_encoder_model_id"):
        result.kept.append(
            f"cross-encoder {recorded['cross_encoder_model_id']} (a pretrained model other runs may use)"
        )
    connector_id = recorded.get("connector_id")
    shared = False
    if connector_id:
        # A search right after the delete may still see the deleted model (ML Commons deletes without a refresh).
        others = [model_id for model_id in ml.models_using_connector(connector_id) if model_id not in removed]
        if others:
            result.kept.append(
                f"connector {connector_id} and the endpoint it calls: model(s) {', '.join(others)} of another run "
                "use them"
            )
            shared = True
        elif ml.remove_connector(connector_id):
            result.deleted.append(f"ML Commons connector {connector_id}")
    if options.mode == "remote" and endpoint_name is not None:
        try:
            _remove_superseded_connectors(ml, spec.name, connector_name(endpoint_name), connector_id, removed, result)
        except OsftError as exc:
            failures.append(f"ML Commons, older connectors of this run: {exc.message}")
    return shared


def _remove_superseded_connectors(
    ml: MLCommons, run_id: str, name: str, current: str | None, removed: set[str], result: CleanupResult
) -> None:
    """Delete the run's connectors called ``name`` other than ``current`` (the registrar made a new one when the
    body changed) that no model uses. Connectors of other runs are never touched, even unused: a run registering
    right now may have just created one."""
    for connector in ml.find_connectors(name):
        if connector.id == current or not made_by_run(connector.source, run_id):
            continue
        users = [model_id for model_id in ml.models_using_connector(connector.id) if model_id not in removed]
        if users:
            result.kept.append(f"older connector {connector.id} of this run: model(s) {', '.join(users)} use it")
            continue
        try:
            if ml.remove_connector(connector.id):
                result.deleted.append(f"ML Commons connector {connector.id} (an older one of this run)")
        except ServiceError as exc:
            if CONNECTOR_IN_USE not in exc.message:
                raise
            result.kept.append(f"older connector {connector.id} of this run: {exc.message}")


def _cleanup_sagemaker(
    sagemaker: SageMakerEndpoint | None,
    recorded: dict[str, Any],
    endpoint_name: str,
    timeout_s: int | None,
    result: CleanupResult,
) -> None:
    region = recorded.get("region") or (sagemaker.region if sagemaker else None)
    wait = timeout_s or (sagemaker.wait_timeout_s if sagemaker else 1800)
    deployer = SageMakerDeployer(sagemaker_client(region), timeout_s=wait, poll_s=15)
    try:
        previous = deployer.previous_config(endpoint_name)  # read before the endpoint and its tags are gone
    except OsftError as exc:  # not a reason to keep a billed endpoint
        previous = None
        result.kept.append(
            f"the config named by the {PREVIOUS_CONFIG_TAG} tag of {endpoint_name}, if any ({exc.message})"
        )
    configs = [recorded["endpoint_config_name"]] if recorded.get("endpoint_config_name") else []
    result.deleted += deployer.delete_endpoint(endpoint_name, configs, list(recorded.get("model_names") or []))
    sweep = deployer.sweep_orphans(endpoint_name, recorded=[previous] if previous else [], min_age_s=0)
    result.deleted += sweep.deleted
    result.kept += sweep.kept
