"""The ML Commons connector to the SageMaker endpoint, matching the serving contract of ``serve``.

The trainer image's ``/invocations`` takes a JSON list of texts and answers a list of
vectors (dense) or of ``{token: weight}`` maps (sparse): exactly what ML Commons' built-in
``connector.pre_process.default.embedding`` sends and ``connector.post_process.default.embedding``
reads. Sparse endpoints keep the raw answer (no post-process), which the neural-search
``sparse_encoding`` processor and ``neural_sparse`` query read as token weights.

ML Commons hides a connector's ``credential`` in GET and search answers, so a connector found
by name and URL cannot be compared with the one this run would create. The description
therefore carries a fingerprint of the body (all of it but the description, which names the run);
a connector without this run's fingerprint is not reused. The description starts with the run marker
(``osft run <run id>:``), so ``register cleanup`` can tell the run's older connectors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from osft.registrar.artifacts import content_hash
from osft.registrar.sagemaker_deploy import runtime_url

PRE_PROCESS = "connector.pre_process.default.embedding"
POST_PROCESS_DENSE = "connector.post_process.default.embedding"
FINGERPRINT_PREFIX = "osft-connector-sha256:"


@dataclass(frozen=True)
class ConnectorBody:
    """A connector's ``_create`` body and the fingerprint its description ends with."""

    body: dict[str, Any]
    fingerprint: str


def connector_name(endpoint_name: str) -> str:
    return f"osft-sagemaker-{endpoint_name}"


def run_marker(run_id: str) -> str:
    """How the descriptions of a run's connectors and models start."""
    return f"osft run {run_id}:"


def made_by_run(source: dict[str, Any], run_id: str) -> bool:
    """Whether a connector (its ``_source``) was created by the registrar for the run ``run_id``."""
    description = source.get("description") or ""
    return description.startswith(run_marker(run_id)) and FINGERPRINT_PREFIX in description


def sagemaker_connector(
    *, endpoint_name: str, region: str, role_arn: str, kind: str, description: str
) -> ConnectorBody:
    """The ``_create`` body of an ``aws_sigv4`` connector that OpenSearch signs with ``role_arn``."""
    action: dict[str, Any] = {
        "action_type": "predict",
        "method": "POST",
        "headers": {"content-type": "application/json"},
        "url": runtime_url(region, endpoint_name),
        "request_body": "${parameters.input}",
        "pre_process_function": PRE_PROCESS,
    }
    if kind == "dense":
        action["post_process_function"] = POST_PROCESS_DENSE
    body = {
        "name": connector_name(endpoint_name),
        "version": "1",
        "protocol": "aws_sigv4",
        "credential": {"roleArn": role_arn},
        "parameters": {"region": region, "service_name": "sagemaker"},
        "actions": [action],
    }
    marker = fingerprint(body)
    return ConnectorBody({**body, "description": f"{description} ({marker})"}, marker)


def fingerprint(body: dict[str, Any]) -> str:
    """``osft-connector-sha256:<hash>`` of a connector body without its description; the same for every run."""
    settings = {key: value for key, value in body.items() if key != "description"}
    return FINGERPRINT_PREFIX + content_hash(json.dumps(settings, sort_keys=True))[:16]


def trusted_endpoint_regex(region: str) -> str:
    """The ``trusted_connector_endpoints_regex`` entry that admits this region's SageMaker runtime."""
    return rf"^https://runtime\.sagemaker\.{region}\.amazonaws\.com/.*$"
