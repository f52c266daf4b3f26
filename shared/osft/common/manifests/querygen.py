"""Manifest of the querygen stage."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from osft.common.manifests.base import StageManifest, StageStats


class QuerygenStats(StageStats):
    """What the querygen stage generated, removed, spent and wrote.

    Token counts and requests cover every call made for this run's outputs, including calls
    made before an interruption that a resumed attempt reused. ``estimated_cost_usd`` is
    None when the model is not in the price table (``price_table`` names the table used).
    """

    provider: str
    model_id: str | None = None
    documents: int = 0
    documents_queried: int = Field(default=0, description="Documents queries were generated for (querygen.max_docs).")
    queries_generated: int = 0
    queries_by_kind: dict[str, int] = Field(default_factory=dict, description="Generated queries by style or kind.")
    removed: dict[str, int] = Field(default_factory=dict, description="Queries removed by filter reason.")
    train_pairs: int = 0
    heldout_pairs: int = 0
    train_file: str = "querygen/train.jsonl"
    heldout_file: str = "querygen/heldout.jsonl"
    records: int = Field(default=0, description="Prompts (one per document) sent to the model.")
    requests: int = Field(default=0, description="Model calls, including retries and batch records.")
    failures: int = Field(default=0, description="Records with no reply after every retry.")
    unparseable_replies: int = 0
    retried_on_demand: int = Field(default=0, description="Batch records that failed and were retried on demand.")
    batch_jobs: list[str] = Field(default_factory=list, description="ARNs of the Bedrock batch jobs used.")
    batch_fallback: str | None = Field(default=None, description="Why batch inference ran on demand instead.")
    input_tokens: int = 0
    output_tokens: int = 0
    batch_input_tokens: int = 0
    batch_output_tokens: int = 0
    estimated_cost_usd: float | None = 0.0
    price_table: str | None = Field(default=None, description="Price table used for the estimate, with its date.")


class QuerygenManifest(StageManifest):
    stage_name: ClassVar[str] = "querygen"
    stats: QuerygenStats
