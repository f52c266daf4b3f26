"""Manifest of the querygen stage."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from osft.common.manifests.base import StageManifest, StageStats


class QuerygenStats(StageStats):
    provider: str
    model_id: str | None = None
    documents: int = 0
    queries_generated: int = 0
    removed: dict[str, int] = Field(default_factory=dict, description="Queries removed by filter reason.")
    train_pairs: int = 0
    heldout_pairs: int = 0
    train_file: str = "querygen/train.jsonl"
    heldout_file: str = "querygen/heldout.jsonl"
    requests: int = 0
    failures: int = 0
    unparseable_replies: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    estimated_cost_usd: float = 0.0


class QuerygenManifest(StageManifest):
    stage_name: ClassVar[str] = "querygen"
    stats: QuerygenStats
