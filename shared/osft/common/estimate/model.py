"""The estimate as data: line items by stage, totals, and what the run is expected to count.

``estimate.json`` in a run folder is this model serialized; the report reads it back to put the
estimate beside what the stages counted (tokens, training seconds).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

ESTIMATE_FILE = "estimate.json"
ESTIMATE_VERSION = 1
RUN_WIDE_ITEMS = frozenset({"storage", "orchestration"})


class LineItem(BaseModel):
    """One priced quantity. ``usd`` is None when the table has no price for it.

    ``alternative`` items are shown for comparison (on-demand beside batch, spot beside on-demand)
    and left out of the totals; ``monthly`` items recur and are totalled separately.
    """

    model_config = ConfigDict(extra="forbid")

    stage: str
    item: str
    quantity: float
    unit: str
    unit_usd: float | None = None
    usd: float | None = None
    alternative: bool = False
    monthly: bool = False


class Expected(BaseModel):
    """The figures the stages count, as estimated, so a finished run can check the estimator."""

    model_config = ConfigDict(extra="forbid")

    input_tokens: int = 0
    output_tokens: int = 0
    train_pairs: int = 0
    train_examples_seen: int = 0
    train_seconds: float = 0.0
    evaluate_seconds: float = 0.0
    compute: str = "local-cpu"


class Estimate(BaseModel):
    """Everything ``osft estimate`` prints, and the budget verdict."""

    model_config = ConfigDict(extra="forbid")

    estimate_version: int = ESTIMATE_VERSION
    spec_name: str
    created_at: datetime
    prices_as_of: str
    bedrock_prices: str = Field(description="Which Bedrock price table was used, and its date.")
    tokenizer: str
    documents: int
    sampled_documents: int
    mean_document_tokens: float
    items: list[LineItem] = Field(default_factory=list)
    expected: Expected = Field(default_factory=Expected)
    run_usd: float = Field(description="One-off cost of the run: every priced, non-alternative, non-monthly item.")
    unpriced: list[str] = Field(default_factory=list, description="Items that cost money but have no price here.")
    endpoint_monthly_usd: float | None = None
    max_cost_usd: float | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def over_budget(self) -> bool:
        return self.max_cost_usd is not None and self.run_usd > self.max_cost_usd

    def budget_items(self, stages: Collection[str] | None = None) -> list[LineItem]:
        """The one-off items counted against ``max_cost_usd``: every one, or those of ``stages`` (the stages
        a run reaches) plus, when it reaches past extract, the run-wide ones (storage, orchestration)."""
        counted = [i for i in self.items if not i.alternative and not i.monthly]
        if stages is None:
            return counted
        reached = set(stages) | (RUN_WIDE_ITEMS if set(stages) - {"extract"} else set())
        return [i for i in counted if i.stage in reached]
