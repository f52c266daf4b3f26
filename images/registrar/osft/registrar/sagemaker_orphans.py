"""Endpoint configs osft left behind, and their models: found by name and tags, deleted when no endpoint uses them.

A run killed after ``CreateEndpointConfig`` but before ``CreateEndpoint``/``UpdateEndpoint`` leaves a config (and
its models) that no endpoint serves and no record names. A config is taken as this endpoint's when

- its name is ``<endpoint name>-<10 hex digits>``, as ``config_name`` builds it (the endpoint name cut to fit
  SageMaker's 63 characters), and
- it is tagged ``osft:endpoint`` with the endpoint's name (osft tags every config it creates so), or, created
  by an older osft, it has an ``osft:run`` tag and no ``osft:endpoint`` tag, and the endpoint name was not cut
  (a cut name may be the start of another endpoint's name too).

A deploy that reuses an existing config (the same model and settings a killed run had already configured) tags it
``osft:claimed`` with the time; a sweep counts a config's age from its creation or its last claim, whichever is
later, so a concurrent deploy on the same endpoint does not delete an old config another one is about to switch to.

Configs the caller names (``recorded``: the one the endpoint's ``osft:previous-config`` tag records) are this
endpoint's by that record. Either kind is deleted only when no endpoint in the region uses it (its current or
pending config, in any status), and its models only when no such endpoint's config and no config of this
endpoint that stays lists them. Telling that needs ``ListEndpoints`` and a describe of every endpoint and its
config; when the role may not, nothing is deleted and the sweep says so in ``kept``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from osft.common.errors import CredentialsError
from osft.registrar.sagemaker_api import SageMakerApi

ENDPOINT_TAG = "osft:endpoint"
CLAIMED_TAG = "osft:claimed"
RUN_TAG = "osft:run"
SWEEP_PERMISSIONS = (
    "sagemaker:ListEndpointConfigs and sagemaker:ListEndpoints (Resource *), and sagemaker:DescribeEndpoint and "
    "sagemaker:DescribeEndpointConfig on every endpoint and endpoint config of the region"
)


@dataclass
class Sweep:
    """What a sweep deleted, and what it kept and why."""

    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


@dataclass
class Usage:
    """The region's endpoints: the configs they use (config → endpoints) and those configs' models."""

    configs: dict[str, list[str]] = field(default_factory=dict)
    models: set[str] = field(default_factory=set)
    # Endpoints whose config no longer exists: the models they serve cannot be told.
    unknown: list[str] = field(default_factory=list)


def config_models(config: dict[str, Any]) -> set[str]:
    """The models an endpoint config's production (and shadow) variants serve."""
    rows = [*config.get("ProductionVariants", []), *config.get("ShadowProductionVariants", [])]
    return {row["ModelName"] for row in rows if row.get("ModelName")}


def utc_now() -> datetime:
    return datetime.now(UTC)


def claim_tag() -> dict[str, str]:
    """The tag a deploy puts on an existing config it is about to switch to."""
    return {"Key": CLAIMED_TAG, "Value": utc_now().isoformat(timespec="seconds")}


def last_claimed(tags: dict[str, str]) -> datetime | None:
    try:
        claimed = datetime.fromisoformat(tags[CLAIMED_TAG])
    except (KeyError, ValueError):
        return None
    return claimed if claimed.tzinfo else claimed.replace(tzinfo=UTC)


def owned(tags: dict[str, str], endpoint_name: str, *, cut: bool) -> bool:
    """Whether a config so tagged (and named after the endpoint) was created by osft for ``endpoint_name``."""
    if ENDPOINT_TAG in tags:
        return tags[ENDPOINT_TAG] == endpoint_name
    return RUN_TAG in tags and not cut


def endpoint_usage(api: SageMakerApi) -> Usage:
    """The configs and models every endpoint of the region uses."""
    usage = Usage()
    for row in api.listed("listing the region's endpoints", "list_endpoints", "Endpoints"):
        endpoint = row["EndpointName"]
        described = api.describe("describe_endpoint", EndpointName=endpoint)
        if described is None:
            continue  # deleted since the listing
        pending = (described.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
        for name in dict.fromkeys(n for n in (described.get("EndpointConfigName"), pending) if n):
            usage.configs.setdefault(name, []).append(endpoint)
            config = api.describe("describe_endpoint_config", EndpointConfigName=name)
            if config is None:
                usage.unknown.append(endpoint)
            else:
                usage.models |= config_models(config)
    return usage


def sweep_configs(
    api: SageMakerApi,
    endpoint_name: str,
    prefix: str,
    *,
    recorded: Iterable[str] = (),
    keep: Iterable[str] = (),
    min_age_s: float,
) -> Sweep:
    """Delete ``recorded`` and the endpoint's orphaned configs (older than ``min_age_s``) no endpoint uses.

    ``prefix`` is the endpoint name as config names start with it; ``keep`` names configs never deleted.
    """
    result = Sweep()
    skip = set(keep)
    try:
        listed = api.listed(
            f"listing the endpoint configs of {endpoint_name}",
            "list_endpoint_configs",
            "EndpointConfigs",
            NameContains=prefix,
        )
        found = _orphans(api, listed, endpoint_name, prefix, skip, min_age_s)
        candidates = [name for name in dict.fromkeys([*recorded, *found]) if name not in skip]
        if not candidates:
            return result
        usage = endpoint_usage(api)
    except CredentialsError as exc:
        result.kept.append(
            f"endpoint configs of {endpoint_name} that no endpoint serves, if any: not looked for ({exc.message}); "
            f"allow the registrar's role {SWEEP_PERMISSIONS}"
        )
        return result

    described = {name: api.describe("describe_endpoint_config", EndpointConfigName=name) for name in candidates}
    doomed: dict[str, dict[str, Any]] = {}
    for name, config in described.items():
        if config is None:
            continue  # already gone
        if name in usage.configs:
            result.kept.append(f"endpoint config {name}: endpoint(s) {', '.join(usage.configs[name])} use it")
        else:
            doomed[name] = config
    staying = set(usage.models)
    for row in listed:
        name = row["EndpointConfigName"]
        if name in doomed:
            continue
        # Candidates kept because an endpoint uses them were described above.
        config = (
            described[name] if name in described else api.describe("describe_endpoint_config", EndpointConfigName=name)
        )
        if config:
            staying |= config_models(config)
    models = sorted(set().union(*(config_models(config) for config in doomed.values())) - staying)
    if models and usage.unknown:
        result.kept.append(
            f"model(s) {', '.join(models)}: endpoint(s) {', '.join(usage.unknown)} serve a config that no longer "
            "exists, so whether they use them cannot be told"
        )
        models = []
    # Models first: a config whose delete then fails is found again by the next sweep, its models by it no more.
    for model in models:
        if api.describe("describe_model", ModelName=model) is not None:
            api.call(f"deleting model {model}", "delete_model", ModelName=model)
            result.deleted.append(model)
    for name in doomed:
        api.call(f"deleting endpoint config {name}", "delete_endpoint_config", EndpointConfigName=name)
        result.deleted.append(name)
    if result.deleted:
        api.log.info("sagemaker_orphans_deleted", endpoint=endpoint_name, deleted=result.deleted)
    return result


def _orphans(
    api: SageMakerApi,
    listed: list[dict[str, Any]],
    endpoint_name: str,
    prefix: str,
    skip: set[str],
    min_age_s: float,
) -> list[str]:
    """The listed configs that are this endpoint's by name and tags, created and claimed at least ``min_age_s`` ago."""
    pattern = re.compile(rf"{re.escape(prefix)}-[0-9a-f]{{10}}")
    cut = prefix != endpoint_name
    now = utc_now()
    found = []
    for row in listed:
        name = row["EndpointConfigName"]
        if name in skip or not pattern.fullmatch(name):
            continue
        if (now - row["CreationTime"]).total_seconds() < min_age_s:
            continue  # perhaps a running deploy's new config, about to be switched to
        answer = api.describe("list_tags", ResourceArn=row["EndpointConfigArn"])
        tags = {tag["Key"]: tag["Value"] for tag in (answer or {}).get("Tags", [])}
        claimed = last_claimed(tags)
        if claimed is not None and (now - claimed).total_seconds() < min_age_s:
            continue  # an old config a running deploy reuses
        if answer is not None and owned(tags, endpoint_name, cut=cut):
            found.append(name)
    return found
