"""Where the accepted model goes: a SageMaker endpoint plus an ML Commons remote model, or a local model in OpenSearch."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from osft.common.spec.base import SpecModel
from osft.common.spec.source import OpenSearchConnection


class SageMakerEndpoint(SpecModel):
    mode: Literal["real-time", "serverless"] = "serverless"
    endpoint_name: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = Field(default=1, ge=1)
    memory_size_mb: int = Field(default=4096, ge=1024, le=6144)
    max_concurrency: int = Field(default=5, ge=1, le=200)
    execution_role_arn: str | None = None
    image_uri: str | None = Field(default=None, description="Trainer image that serves; defaults to the run's image.")
    region: str | None = None
    ab_base_weight: float | None = Field(
        default=None, ge=0, le=1, description="Traffic share for a base-model variant."
    )
    wait_timeout_s: int = Field(default=1800, ge=60)


class OpenSearchRegistration(SpecModel):
    connection: OpenSearchConnection
    mode: Literal["remote", "local"] = "remote"
    model_group: str = "osft"
    connector_role_arn: str | None = Field(default=None, description="Role OpenSearch assumes to call SageMaker.")
    set_trusted_endpoints: bool = False
    smoke_test: bool = True
    task_timeout_s: int = Field(default=900, ge=10)


class Deploy(SpecModel):
    sagemaker: SageMakerEndpoint | None = None
    opensearch: OpenSearchRegistration | None = None
    require_gate: bool = Field(default=True, description="Deploy only a model the evaluation gate accepted.")

    @model_validator(mode="after")
    def _remote_needs_endpoint(self) -> Deploy:
        if self.opensearch and self.opensearch.mode == "remote" and self.sagemaker is None:
            raise ValueError(
                "opensearch.mode 'remote' needs a sagemaker endpoint to connect to; use mode 'local' otherwise"
            )
        if self.sagemaker is None and self.opensearch is None:
            raise ValueError("give sagemaker, opensearch or both (or leave deploy out)")
        return self
