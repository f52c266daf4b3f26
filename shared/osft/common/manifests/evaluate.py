"""Manifest of the evaluate stage."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from osft.common.manifests.base import StageManifest, StageStats

DecidedOn = Literal["model", "hybrid", "passages", "hybrid+passages"]
SEARCH_LABELS: dict[str, str] = {
    "model": "the models alone",
    "hybrid": "the hybrid query with BM25",
    "passages": "the models with passage vectors",
    "hybrid+passages": "the hybrid query with BM25 and passage vectors",
}
"""How reports name each ``DecidedOn``: the search the gate compared base and tuned in."""


class EvaluateStats(StageStats):
    decided_by: Literal["judged", "synthetic-heldout"]
    decided_on: DecidedOn = Field(
        default="model",
        description="The search base and tuned were compared in: the one deploy.opensearch builds "
        "(evaluation.decide_on). base and tuned hold its figures; the models alone are in extra then.",
    )
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
    base_model_dir: str | None = Field(
        default=None,
        description="Run-relative folder of the base model as evaluated, saved when the gate rejected the tuned "
        "model and deploy.when_rejected is 'base'; register deploys it.",
    )
    base_exports: dict[str, Any] = Field(
        default_factory=dict, description="The base model's exports, by kind, as TrainStats.exports records them."
    )


class EvaluateManifest(StageManifest):
    stage_name: ClassVar[str] = "evaluate"
    stats: EvaluateStats
