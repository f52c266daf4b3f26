"""Manifest of the register stage."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from osft.common.manifests.base import StageManifest, StageStats


class RegisterStats(StageStats):
    """Where the model was deployed and registered; the same ids are in ``register/registration.json``."""

    skipped_reason: str | None = None
    deployed_model: Literal["tuned", "base"] | None = Field(
        default=None, description="base when the gate rejected the tuned model and deploy.when_rejected is 'base'."
    )
    endpoint_name: str | None = None
    endpoint_config_name: str | None = None
    sagemaker_models: list[str] = Field(default_factory=list)
    sagemaker_region: str | None = None
    endpoint_action: str | None = Field(default=None, description="created, updated, recreated or unchanged")
    model_data_url: str | None = None
    connector_id: str | None = None
    model_group_id: str | None = None
    model_id: str | None = None
    function_name: str | None = None
    tokenizer_model_id: str | None = None
    cross_encoder_model_id: str | None = None
    created: list[str] = Field(default_factory=list, description="What this run created (the rest was reused).")
    reused: list[str] = Field(default_factory=list)
    smoke_test: str | None = None
    search_pipeline: str | None = Field(
        default=None,
        description="The hybrid search pipeline (deploy.opensearch.hybrid_search); query in hybrid_query.json.",
    )
    passage_pipeline: str | None = Field(
        default=None,
        description="The passage-vector ingest pipeline (deploy.opensearch.passage_vectors); the index body and "
        "queries are in passage_index.json.",
    )


class RegisterManifest(StageManifest):
    stage_name: ClassVar[str] = "register"
    stats: RegisterStats
