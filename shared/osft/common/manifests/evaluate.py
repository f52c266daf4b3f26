"""Manifest of the evaluate stage."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from osft.common.manifests.base import StageManifest, StageStats


class EvaluateStats(StageStats):
    decided_by: Literal["judged", "synthetic-heldout"]
    queries: int
    corpus_size: int
    metric: str
    base: dict[str, float] = Field(default_factory=dict)
    tuned: dict[str, float] = Field(default_factory=dict)
    gain: float
    min_gain: float
    accepted: bool
    reason: str
    extra: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Other evaluations reported but not deciding, e.g. synthetic held-out."
    )


class EvaluateManifest(StageManifest):
    stage_name: ClassVar[str] = "evaluate"
    stats: EvaluateStats
