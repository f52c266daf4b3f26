"""Where the accepted model goes: a SageMaker endpoint plus an ML Commons remote model, or a local model in OpenSearch."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from osft.common.hybrid_search import CANDIDATES_PER_CLAUSE, DEFAULT_KEYWORD_WEIGHT
from osft.common.spec.base import SpecModel
from osft.common.spec.source import OpenSearchConnection

PIPELINE_ID = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}$"

SMOKE_TEXTS = (
    "how do I reset my password",
    "OpenSearch runs k-NN search on dense vectors.",
    "A short note about café opening hours.",
)


class SageMakerEndpoint(SpecModel):
    """A SageMaker endpoint serving the fine-tuned model with the trainer image's ``serve`` command.

    ``real-time`` runs ``instance_count`` × ``instance_type`` all the time; ``serverless``
    scales to zero (``memory_size_mb``, ``max_concurrency``) at the price of cold starts.
    An existing endpoint of the same name is updated in place. ``ab_base_weight`` adds a
    second production variant serving the base model with that share of the traffic, for a
    gradual rollout. ``precision: int8`` serves the ONNX int8 export (needs
    ``training.export.onnx_int8``).
    """

    mode: Literal["real-time", "serverless"] = "serverless"
    endpoint_name: str | None = Field(
        default=None,
        pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$",
        description="Endpoint name; defaults to osft-<run name>. Models and configs are named after it.",
    )
    instance_type: str = Field(default="ml.m5.xlarge", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    instance_count: int = Field(default=1, ge=1)
    memory_size_mb: int = Field(default=4096, ge=1024, le=6144)
    max_concurrency: int = Field(default=5, ge=1, le=200)
    execution_role_arn: str | None = Field(
        default=None, description="Role the endpoint runs as; defaults to $OSFT_SAGEMAKER_ROLE_ARN."
    )
    image_uri: str | None = Field(
        default=None,
        description=(
            "Image that serves; defaults to $OSFT_SERVE_CPU_IMAGE_URI (the trainer's CPU build) on serverless "
            "and CPU instances, and to $OSFT_TRAINER_IMAGE_URI (CUDA) on GPU instances (ml.g*, ml.p*)."
        ),
    )
    region: str | None = None
    precision: Literal["fp32", "int8"] = "fp32"
    artifact_uri: str | None = Field(
        default=None,
        pattern=r"^s3://",
        description="s3:// URI for model.tar.gz; defaults to <run_dir>/register/model.tar.gz (run folder on S3).",
    )
    ab_base_weight: float | None = Field(
        default=None, gt=0, lt=1, description="Traffic share for a base-model variant (the tuned one gets the rest)."
    )
    wait_timeout_s: int = Field(default=1800, ge=60)

    @field_validator("memory_size_mb")
    @classmethod
    def _memory_step(cls, value: int) -> int:
        if value % 1024:
            raise ValueError("must be 1024, 2048, 3072, 4096, 5120 or 6144 (SageMaker serverless memory sizes)")
        return value

    @field_validator("ab_base_weight")
    @classmethod
    def _ab_needs_real_time(cls, value: float | None, info: ValidationInfo) -> float | None:
        # SageMaker serverless endpoints take a single production variant; an A/B rollout needs two.
        if value is not None and info.data.get("mode") == "serverless":
            raise ValueError(
                "needs mode 'real-time': a serverless endpoint has only one production variant, "
                "so it cannot split traffic between the tuned and the base model"
            )
        return value


class CrossEncoderModel(SpecModel):
    """A cross-encoder reranker registered beside the embedding model as ``TEXT_SIMILARITY``.

    ``name``/``version`` name an OpenSearch-provided pretrained model; ``url`` (with
    ``sha256`` and ``config``) registers your own TorchScript/ONNX zip instead.
    """

    name: str = Field(default="huggingface/cross-encoders/ms-marco-MiniLM-L-6-v2", min_length=1)
    version: str = "1.0.2"
    model_format: Literal["TORCH_SCRIPT", "ONNX"] = "TORCH_SCRIPT"
    url: str | None = Field(default=None, pattern=r"^(https?|file)://")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    size_bytes: int | None = Field(default=None, ge=1)
    config: dict | None = Field(default=None, description="ML Commons model_config of the zip at url.")

    @model_validator(mode="after")
    def _url_needs_hash(self) -> CrossEncoderModel:
        if self.url and not self.sha256:
            raise ValueError("a cross-encoder url needs its sha256")
        return self


class SearchCheck(SpecModel):
    """After registration: an ingest pipeline, an index, a few documents and a neural query."""

    index: str = Field(default="osft-smoke-test", pattern=r"^[a-z0-9][a-z0-9_\-]{0,200}$")
    pipeline: str = Field(default="osft-smoke-test", min_length=1)
    delete_after: bool = True


class HybridSearch(SpecModel):
    """After registration: a search pipeline for ``hybrid`` queries of BM25 and the model, and such a query.

    The pipeline (a ``normalization-processor``: ``min_max``, ``arithmetic_mean``) is what the evaluate stage
    scores as the hybrid; ``register/hybrid_query.json`` is a search body that uses it. With ``search_check``
    set, the check also runs a hybrid query through the pipeline.
    """

    pipeline: str = Field(default="osft-hybrid", pattern=PIPELINE_ID, description="Search pipeline id.")
    keyword_weight: float = Field(
        default=DEFAULT_KEYWORD_WEIGHT,
        gt=0,
        lt=1,
        description="Weight of the BM25 clause; the model's is 1 minus this. With judged queries the evaluate "
        "stage scores the hybrid at 0.5 and at this weight.",
    )
    text_field: str = Field(default="text", min_length=1, description="Text field the BM25 clause matches.")
    embedding_field: str = Field(
        default="embedding", min_length=1, description="Vector (or rank_features) field the model's clause queries."
    )
    k: int = Field(
        default=CANDIDATES_PER_CLAUSE,
        ge=1,
        le=10000,
        description="Documents each clause combines: the example query's size and neural k.",
    )


class PassageVectors(SpecModel):
    """After registration: an ingest pipeline that also embeds each passage, and the index and queries that use it.

    The pipeline (``text_chunking`` on ``"."``, then ``text_embedding`` of the text and of each passage) is the
    layout the evaluate stage scores with ``evaluation.passage_vectors``; ``register/passage_index.json`` holds
    the index body to create with it and the search bodies (``bool`` of the document's and the best passage's
    vector; with ``hybrid_search``, a three-clause ``hybrid`` through ``hybrid_pipeline``). Dense models.
    """

    ingest_pipeline: str = Field(
        default="osft-passages", pattern=PIPELINE_ID, description="Ingest pipeline id; the index's default pipeline."
    )
    hybrid_pipeline: str = Field(
        default="osft-hybrid-passages",
        pattern=PIPELINE_ID,
        description="Search pipeline id for the hybrid query with passages; created only with hybrid_search, whose "
        "keyword_weight it keeps (the model's weight is split evenly over its two clauses).",
    )
    text_field: str = Field(default="text", min_length=1, description="Text field cut into passages.")
    embedding_field: str = Field(default="embedding", min_length=1, description="The document's vector field.")
    passages_field: str = Field(default="text_passages", min_length=1, description="Field the passages go to.")
    passage_embedding_field: str = Field(
        default="passage_embedding", min_length=1, description="Nested field of the passages' vectors."
    )
    k: int = Field(default=CANDIDATES_PER_CLAUSE, ge=1, le=10000, description="Documents each vector clause returns.")

    @model_validator(mode="after")
    def _distinct_fields(self) -> PassageVectors:
        names = [self.text_field, self.embedding_field, self.passages_field, self.passage_embedding_field]
        if len(set(names)) < len(names):
            raise ValueError(
                "text_field, embedding_field, passages_field and passage_embedding_field must be four different "
                f"fields, got {names}"
            )
        return self


class OpenSearchRegistration(SpecModel):
    """The model in OpenSearch ML Commons.

    ``remote``: a connector to the SageMaker endpoint and a remote model (Amazon OpenSearch
    Service). ``local``: the ML Commons zip the train stage exported, registered in the
    cluster itself, by URL (``local_upload: url``; a pre-signed S3 URL when the run folder
    is on S3, else ``model_url``) or in chunks (``local_upload: chunks``). Everything is
    found by name first, so a re-run reuses what exists.
    """

    FINGERPRINT_ONLY_WHEN_SET = frozenset({"hybrid_search", "passage_vectors"})

    connection: OpenSearchConnection
    mode: Literal["remote", "local"] = "remote"
    model_group: str = Field(default="osft", min_length=1)
    model_name: str | None = Field(default=None, description="Model name in ML Commons; defaults to the run name.")
    connector_role_arn: str | None = Field(
        default=None,
        description="Role OpenSearch assumes to call SageMaker; defaults to $OSFT_OPENSEARCH_CONNECTOR_ROLE_ARN.",
    )
    set_trusted_endpoints: bool = Field(
        default=False,
        description="Add the SageMaker runtime URL to plugins.ml_commons.trusted_connector_endpoints_regex (self-managed clusters).",
    )
    local_format: Literal["torchscript", "onnx"] = "torchscript"
    local_upload: Literal["auto", "url", "chunks"] = Field(
        default="auto", description="auto: by URL when the run folder is on S3 (pre-signed), else in chunks."
    )
    model_url: str | None = Field(
        default=None, pattern=r"^(https?|file)://", description="URL the cluster downloads the model zip from."
    )
    allow_registering_via_url: bool = Field(
        default=False, description="Set plugins.ml_commons.allow_registering_model_via_url before registering by URL."
    )
    chunk_size_mb: int = Field(
        default=10, ge=1, le=10, description="Chunk size of an upload in chunks; ML Commons refuses chunks over 10 MB."
    )
    smoke_test: bool = True
    smoke_texts: list[str] = Field(default_factory=lambda: list(SMOKE_TEXTS), min_length=1, max_length=32)
    smoke_min_cosine: float = Field(default=0.99, gt=0, le=1)
    search_check: SearchCheck | None = None
    hybrid_search: HybridSearch | None = None
    passage_vectors: PassageVectors | None = None
    cross_encoder: CrossEncoderModel | None = None
    task_timeout_s: int = Field(default=900, ge=1)
    poll_interval_s: float = Field(default=2.0, gt=0, le=60)

    @model_validator(mode="after")
    def _passages_fit_the_rest(self) -> OpenSearchRegistration:
        passages = self.passage_vectors
        if passages is None:
            return self
        if self.search_check is not None and self.search_check.pipeline == passages.ingest_pipeline:
            # The check recreates and deletes its own pipeline: sharing the id would delete the index's.
            raise ValueError(
                f"search_check.pipeline and passage_vectors.ingest_pipeline are both {passages.ingest_pipeline!r}: "
                "the check deletes its pipeline afterwards; give them different ids"
            )
        hybrid = self.hybrid_search
        if hybrid is None:
            return self
        if hybrid.pipeline == passages.hybrid_pipeline:
            raise ValueError(
                f"hybrid_search.pipeline and passage_vectors.hybrid_pipeline are both {hybrid.pipeline!r}: the "
                "hybrid with passages has three clauses and needs a pipeline of its own"
            )
        for name in ("text_field", "embedding_field"):
            if getattr(hybrid, name) != getattr(passages, name):
                raise ValueError(
                    f"hybrid_search.{name} ({getattr(hybrid, name)!r}) and passage_vectors.{name} "
                    f"({getattr(passages, name)!r}) name the same index's field: make them equal"
                )
        return self


class Deploy(SpecModel):
    """Where the model goes once evaluated; ``when_rejected`` says what happens when the gate rejects the tuned one.

    ``when_rejected: base`` deploys the base model as the evaluate stage scored it (its max length, prefixes,
    pooling), exported as the tuned one would have been. The usual reason: evaluate found that a hybrid query
    of BM25 and the base model beats the base model alone, and ``opensearch.hybrid_search`` deploys that.
    """

    FINGERPRINT_ONLY_WHEN_SET = frozenset({"when_rejected"})

    sagemaker: SageMakerEndpoint | None = None
    opensearch: OpenSearchRegistration | None = None
    require_gate: bool = Field(default=True, description="Deploy only a model the evaluation gate accepted.")
    when_rejected: Literal["skip", "base"] = Field(
        default="skip",
        description="When the gate rejects the tuned model: skip (deploy nothing) or base (deploy the base model, "
        "as evaluated, in its place). Dense models.",
    )

    @model_validator(mode="after")
    def _base_needs_the_gate(self) -> Deploy:
        if self.when_rejected == "base" and not self.require_gate:
            raise ValueError(
                "when_rejected 'base' needs require_gate true: without the gate the tuned model is always deployed"
            )
        if self.when_rejected == "base" and self.sagemaker is not None and self.sagemaker.ab_base_weight is not None:
            raise ValueError(
                "when_rejected 'base' cannot go with sagemaker.ab_base_weight: when the base model is deployed, "
                "both variants would serve it; drop one of the two"
            )
        return self

    @model_validator(mode="after")
    def _remote_needs_endpoint(self) -> Deploy:
        if self.opensearch and self.opensearch.mode == "remote" and self.sagemaker is None:
            raise ValueError(
                "opensearch.mode 'remote' needs a sagemaker endpoint to connect to; use mode 'local' otherwise"
            )
        if self.sagemaker is None and self.opensearch is None:
            raise ValueError("give sagemaker, opensearch or both (or leave deploy out)")
        return self
