"""Assumptions the cost estimate needs that the rest of the spec cannot tell (``osft estimate``)."""

from __future__ import annotations

from pydantic import Field

from osft.common.spec.base import SpecModel


class CostAssumptions(SpecModel):
    """How the deployed model will be used, for the endpoint's line in the estimate.

    A real-time endpoint costs its instance hours whatever the traffic; a serverless one costs
    per request, so the expected request rate decides which is cheaper.
    """

    expected_requests_per_day: int = Field(
        default=10_000, ge=0, description="Embedding requests the endpoint is expected to serve per day."
    )
    mean_request_kb: float = Field(
        default=2.0, gt=0, description="Request plus response size in KB (serverless bills data processed)."
    )
