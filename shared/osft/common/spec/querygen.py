"""Synthetic query generation: which generator, how many queries, and the filters applied."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from osft.common.spec.base import SpecModel

Provider = Literal["offline", "bedrock", "bedrock-batch", "openai"]
DEFAULT_BEDROCK_MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


class QueryFilters(SpecModel):
    min_chars: int = Field(default=8, ge=1)
    max_chars: int = Field(default=300, ge=1)
    max_copied_words: int | None = Field(
        default=None, ge=3, description="Drop a query that copies this many consecutive words of its document."
    )
    dedupe: bool = True
    round_trip_top_k: int | None = Field(
        default=None, ge=1, description="Keep a pair only if its document ranks in the top k for its query."
    )


class BedrockOptions(SpecModel):
    region: str | None = None
    service_role_arn: str | None = Field(
        default=None, description="Role Bedrock batch jobs assume to read and write S3."
    )
    staging_uri: str | None = Field(
        default=None, pattern=r"^s3://", description="S3 prefix for batch job input/output."
    )
    min_records_per_job: int = Field(default=100, ge=1)
    max_records_per_job: int = Field(default=50_000, ge=1)
    max_job_file_bytes: int = Field(default=1_000_000_000, ge=1)
    max_concurrent_jobs: int = Field(default=10, ge=1)
    max_concurrency: int = Field(default=8, ge=1, description="Parallel on-demand Converse calls.")
    poll_seconds: float = Field(default=60, gt=0)
    max_tokens: int = Field(default=512, ge=16)
    temperature: float = Field(default=0.7, ge=0, le=1)


class OpenAIOptions(SpecModel):
    base_url: str = Field(default="https://api.openai.com/v1", pattern=r"^https?://")
    api_key_env: str | None = "OPENAI_API_KEY"
    max_concurrency: int = Field(default=4, ge=1)
    timeout_s: float = Field(default=60, gt=0)
    max_tokens: int = Field(default=512, ge=16)
    temperature: float = Field(default=0.7, ge=0, le=2)


class QueryGen(SpecModel):
    provider: Provider = "offline"
    model_id: str | None = Field(default=None, description="Model id or inference-profile ARN for LLM providers.")
    queries_per_doc: int = Field(default=2, ge=1, le=20)
    conceptual_fraction: float = Field(
        default=0.5, ge=0, le=1, description="Share of conceptual (vs factoid) queries asked of an LLM."
    )
    prompt_dir: str | None = Field(default=None, description="Folder of prompt templates overriding the built-in ones.")
    examples_path: str | None = Field(
        default=None, description="JSONL of real queries used as few-shot style examples."
    )
    heldout_fraction: float = Field(default=0.1, ge=0, lt=1, description="Share of documents whose pairs are held out.")
    max_heldout_docs: int = Field(default=500, ge=1)
    seed: int = 13
    filters: QueryFilters = Field(default_factory=QueryFilters)
    bedrock: BedrockOptions = Field(default_factory=BedrockOptions)
    openai: OpenAIOptions = Field(default_factory=OpenAIOptions)

    @model_validator(mode="after")
    def _model_for_llm_provider(self) -> QueryGen:
        if self.provider == "openai" and not self.model_id:
            raise ValueError("provider 'openai' needs model_id (the model name the endpoint serves)")
        return self

    @property
    def resolved_model_id(self) -> str | None:
        if self.provider in ("bedrock", "bedrock-batch"):
            return self.model_id or DEFAULT_BEDROCK_MODEL
        return self.model_id
