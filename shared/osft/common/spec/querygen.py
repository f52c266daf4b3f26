"""Synthetic query generation: which generator, how many queries, and the filters applied."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from osft.common.spec.base import SpecModel

Provider = Literal["offline", "bedrock", "bedrock-batch", "openai"]
OfflineStyle = Literal["claim", "question", "keywords", "title", "cloze"]
DEFAULT_BEDROCK_MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
DEFAULT_COPIED_WORDS_LLM = 10


class QueryFilters(SpecModel):
    """Filters applied after normalizing each query; the manifest counts removals per reason."""

    min_chars: int = Field(default=8, ge=1)
    max_chars: int = Field(default=300, ge=1)
    max_copied_words: int | None = Field(
        default=None,
        ge=3,
        description="Drop a query that copies this many consecutive words of its document. "
        f"Default: {DEFAULT_COPIED_WORDS_LLM} for LLM providers, off for offline and user pairs.",
    )
    dedupe: bool = Field(default=True, description="Drop a query already kept for any document (case-insensitive).")
    round_trip_top_k: int | None = Field(
        default=None,
        ge=1,
        description="Keep a pair only if its document ranks in the top k for its query, embedded with model.base "
        "(needs the 'roundtrip' extra: sentence-transformers).",
    )
    round_trip_batch_size: int = Field(default=64, ge=1)


class BedrockOptions(SpecModel):
    """Amazon Bedrock: on-demand Converse calls and batch inference jobs."""

    region: str | None = None
    service_role_arn: str | None = Field(
        default=None,
        pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+",
        description="Role Bedrock batch jobs assume to read and write S3; defaults to $OSFT_BEDROCK_BATCH_ROLE_ARN.",
    )
    staging_uri: str | None = Field(
        default=None,
        pattern=r"^s3://",
        description="S3 prefix for batch job input/output; defaults to <run_dir>/querygen/_bedrock on S3 run folders.",
    )
    min_records_per_job: int = Field(
        default=100, ge=1, description="Batch jobs need this many records; fewer run on demand instead."
    )
    max_records_per_job: int = Field(default=50_000, ge=1, description="Bedrock's per-job record quota.")
    max_job_file_bytes: int = Field(default=1_000_000_000, ge=1, description="Bedrock's per-job input size quota.")
    max_concurrent_jobs: int = Field(default=10, ge=1, description="Batch jobs in flight at once (account quota).")
    max_concurrency: int = Field(default=8, ge=1, description="Parallel on-demand Converse calls.")
    poll_seconds: float = Field(default=60, gt=0, description="First wait between job status checks.")
    max_poll_seconds: float = Field(default=600, gt=0, description="Longest wait between job status checks.")
    job_timeout_hours: int = Field(default=72, ge=24, le=168)
    max_retries: int = Field(default=8, ge=0, description="Retries of a throttled or unavailable on-demand call.")
    retry_base_seconds: float = Field(default=1.0, gt=0, description="First backoff delay; doubles per retry.")
    max_tokens: int = Field(default=512, ge=16)
    temperature: float = Field(default=0.7, ge=0, le=1)

    @model_validator(mode="after")
    def _poll_bounds(self) -> BedrockOptions:
        if self.max_poll_seconds < self.poll_seconds:
            raise ValueError("max_poll_seconds must be at least poll_seconds")
        if self.min_records_per_job > self.max_records_per_job:
            raise ValueError("min_records_per_job must not exceed max_records_per_job")
        return self


class OpenAIOptions(SpecModel):
    """Any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, llama.cpp server)."""

    base_url: str = Field(default="https://api.openai.com/v1", pattern=r"^https?://")
    api_key_env: str | None = Field(
        default="OPENAI_API_KEY", description="Environment variable holding the API key; null for no key."
    )
    max_concurrency: int = Field(default=4, ge=1)
    timeout_s: float = Field(default=60, gt=0)
    max_retries: int = Field(default=5, ge=0, description="Retries on 429, 5xx and lost connections.")
    retry_base_seconds: float = Field(default=1.0, gt=0)
    max_tokens: int = Field(default=512, ge=16)
    temperature: float = Field(default=0.7, ge=0, le=2)
    json_mode: bool = Field(
        default=False, description="Send response_format json_object (only for servers that support it)."
    )


class OfflineOptions(SpecModel):
    """The no-LLM generator: relative weights of its query styles (0 turns a style off)."""

    styles: dict[OfflineStyle, float] = Field(
        default_factory=lambda: {"claim": 0.35, "question": 0.25, "keywords": 0.25, "title": 0.15, "cloze": 0.0},
        description="claim: a finding sentence, shortened; question: templated from key phrases; "
        "keywords: distinctive terms; title: the title; cloze: a sentence as it stands.",
    )

    @model_validator(mode="after")
    def _some_style(self) -> OfflineOptions:
        if any(w < 0 for w in self.styles.values()):
            raise ValueError("style weights must be >= 0")
        if not any(w > 0 for w in self.styles.values()):
            raise ValueError("at least one style needs a weight above 0")
        return self


def heldout_count(documents: int, heldout_fraction: float, max_heldout: int) -> int:
    """How many of ``documents`` querygen holds out: the fraction, at most ``max_heldout``, at least one
    when any is asked for and there is more than one document."""
    count = min(max_heldout, round(documents * heldout_fraction))
    return max(1, count) if heldout_fraction > 0 and documents > 1 else count


def kept_count(queries: int, keep_fraction: float) -> int:
    """How many of ``queries`` log queries become pairs (at least one when there are any)."""
    return min(queries, max(1, round(queries * keep_fraction))) if queries else 0


class QueryLog(SpecModel):
    """Real queries without judgements, e.g. from the search box's logs, paired with documents by a ranking.

    The train stage pairs each with the document a BM25 + base-model hybrid ranks first, and keeps
    the queries whose first hit leads the second by most. On SciFact the hybrid's first hit was
    right for 62% of real queries, and for 87% of the half it was surest of.
    """

    path: str = Field(
        min_length=1,
        description='JSONL, one {"query": ...} (or "text") object per line; spec-relative or s3://. '
        "Judged queries also in the log are left out of evaluation.",
    )
    keep_fraction: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Share of log queries kept as training pairs: those whose first hit leads the second by most.",
    )


class QueryGen(SpecModel):
    provider: Provider = "offline"
    model_id: str | None = Field(default=None, description="Model id or inference-profile ARN for LLM providers.")
    queries_per_doc: int = Field(default=2, ge=1, le=20)
    max_docs: int | None = Field(
        default=None,
        ge=1,
        description="Generate queries for a seeded sample of at most this many documents (caps LLM calls); "
        "the whole corpus still serves as negatives and for evaluation. A larger value keeps the smaller sample.",
    )
    conceptual_fraction: float = Field(
        default=0.5, ge=0, le=1, description="Share of conceptual (vs factoid) queries asked of an LLM."
    )
    prompt_dir: str | None = Field(default=None, description="Folder of prompt templates overriding the built-in ones.")
    examples_path: str | None = Field(
        default=None, description="JSONL of real queries used as few-shot style examples."
    )
    query_log: QueryLog | None = Field(
        default=None, description="Real user queries to pair with documents and train on beside the generated ones."
    )
    few_shot: int = Field(default=4, ge=0, le=20, description="Example queries shown per prompt.")
    max_document_chars: int = Field(default=6000, ge=200, description="Document text beyond this is cut in prompts.")
    heldout_fraction: float = Field(default=0.1, ge=0, lt=1, description="Share of documents whose pairs are held out.")
    max_heldout_docs: int = Field(default=500, ge=1)
    seed: int = 13
    filters: QueryFilters = Field(default_factory=QueryFilters)
    offline: OfflineOptions = Field(default_factory=OfflineOptions)
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

    @property
    def uses_llm(self) -> bool:
        return self.provider != "offline"
