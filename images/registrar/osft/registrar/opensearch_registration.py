"""Registering the fine-tuned model in ML Commons: remote (connector to SageMaker) or local (the exported zip)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from osft.common.errors import OsftError
from osft.common.spec.deploy import CrossEncoderModel, OpenSearchRegistration
from osft.common.storage import is_s3, join, s3_client, split_s3
from osft.registrar.artifacts import ExportedZip
from osft.registrar.connector import sagemaker_connector, trusted_endpoint_regex
from osft.registrar.ml_commons import MLCommons

TRUSTED_ENDPOINTS = "plugins.ml_commons.trusted_connector_endpoints_regex"
ALLOW_URL = "plugins.ml_commons.allow_registering_model_via_url"
PRESIGN_SECONDS = 3600


@dataclass
class OpenSearchResult:
    """The ids a registration produced or found, and which of them this run created."""

    model_group_id: str
    model_id: str = ""
    function_name: str = ""
    connector_id: str | None = None
    tokenizer_model_id: str | None = None
    cross_encoder_model_id: str | None = None
    created: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)

    def note(self, what: str, created: bool) -> None:
        (self.created if created else self.reused).append(what)


def connector_role(spec: OpenSearchRegistration) -> str:
    role = spec.connector_role_arn or os.environ.get("OSFT_OPENSEARCH_CONNECTOR_ROLE_ARN")
    if not role:
        raise OsftError(
            "deploy.opensearch.connector_role_arn is not set (nor $OSFT_OPENSEARCH_CONNECTOR_ROLE_ARN)",
            hint="give the IAM role OpenSearch assumes to call SageMaker (the Terraform output opensearch_connector_role_arn)",
        )
    return role


def register_remote(
    ml: MLCommons,
    spec: OpenSearchRegistration,
    result: OpenSearchResult,
    *,
    model_name: str,
    endpoint_name: str,
    region: str,
    kind: str,
    description: str,
) -> None:
    """Connector → remote model → deploy, each reused when it already exists."""
    if spec.set_trusted_endpoints:
        ml.add_to_setting_list(TRUSTED_ENDPOINTS, trusted_endpoint_regex(region))
    connector = sagemaker_connector(
        endpoint_name=endpoint_name, region=region, role_arn=connector_role(spec), kind=kind, description=description
    )
    result.connector_id, created = ml.ensure_connector(connector.body, connector.fingerprint)
    result.note(f"connector {result.connector_id}", created)
    found = ml.find_model(model_name, result.model_group_id, connector_id=result.connector_id)
    if found is not None:
        result.model_id = found.id
    else:
        result.model_id = ml.register(
            {
                "name": model_name,
                "function_name": "remote",
                "model_group_id": result.model_group_id,
                "description": description,
                "connector_id": result.connector_id,
            }
        )
    result.note(f"model {result.model_id}", found is None)
    result.function_name = "SPARSE_ENCODING" if kind == "sparse" else "TEXT_EMBEDDING"
    ml.deploy(result.model_id)


def download_url(spec: OpenSearchRegistration, run_dir: str, export: ExportedZip, local_path: Path) -> str | None:
    """Where the cluster downloads the zip from, or None to upload it in chunks."""
    if spec.model_url:
        return spec.model_url
    if spec.local_upload == "chunks" or (spec.local_upload == "auto" and not is_s3(run_dir)):
        return None
    if is_s3(run_dir):
        bucket, key = split_s3(join(run_dir, export.path))
        return s3_client().generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=PRESIGN_SECONDS
        )
    return local_path.resolve().as_uri()


def register_zip(
    ml: MLCommons,
    spec: OpenSearchRegistration,
    export: ExportedZip,
    local_path: Path,
    url: str | None,
    *,
    name: str,
    model_group_id: str,
    description: str,
) -> tuple[str, bool]:
    """Register one zip unless a model of that name and hash exists; returns (model_id, created).

    Deploying is the caller's next step, once it has recorded the id.
    """
    found = ml.find_model(name, model_group_id, model_content_hash_value=export.sha256)
    if found is not None and found.source.get("model_state") == "REGISTERING":
        found = ml.settle_registration(found)
    created = found is None
    if found is not None:
        model_id = found.id
    else:
        body: dict[str, Any] = {
            "name": name,
            "version": "1.0.0",
            "model_group_id": model_group_id,
            "description": description,
            "model_format": export.model_format,
            "function_name": export.function_name,
            "model_content_hash_value": export.sha256,
            "model_content_size_in_bytes": export.size_bytes,
        }
        if export.model_config:
            body["model_config"] = export.model_config
        if url is not None:
            if spec.allow_registering_via_url:
                ml.put_setting(ALLOW_URL, "true")
            model_id = ml.register({**body, "url": url})
        else:
            model_id = ml.register_in_chunks(body, local_path, spec.chunk_size_mb * 1024 * 1024)
    return model_id, created


def register_cross_encoder(
    ml: MLCommons, spec: CrossEncoderModel, model_group_id: str, name_prefix: str
) -> tuple[str, bool]:
    """A cross-encoder reranker as TEXT_SIMILARITY: an OpenSearch pretrained model, or your zip by URL."""
    if spec.url:
        name = f"{name_prefix}-reranker"
        export = ExportedZip(
            "cross_encoder",
            spec.url,
            spec.sha256 or "",
            spec.size_bytes or 0,
            spec.model_format,
            "TEXT_SIMILARITY",
            spec.config,
        )
        found = ml.find_model(name, model_group_id, model_content_hash_value=spec.sha256)
        if found is not None:
            ml.deploy(found.id)
            return found.id, False
        body: dict[str, Any] = {
            "name": name,
            "version": "1.0.0",
            "model_group_id": model_group_id,
            "model_format": export.model_format,
            "function_name": "TEXT_SIMILARITY",
            "model_content_hash_value": export.sha256,
            "url": spec.url,
        }
        if spec.size_bytes:
            body["model_content_size_in_bytes"] = spec.size_bytes
        if spec.config:
            body["model_config"] = spec.config
        model_id = ml.register(body)
    else:
        found = ml.find_model(spec.name, model_group_id)
        if found is not None:
            ml.deploy(found.id)
            return found.id, False
        model_id = ml.register(
            {
                "name": spec.name,
                "version": spec.version,
                "model_group_id": model_group_id,
                "model_format": spec.model_format,
                "function_name": "TEXT_SIMILARITY",
            }
        )
    ml.deploy(model_id)
    return model_id, True
