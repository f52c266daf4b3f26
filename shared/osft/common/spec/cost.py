"""Assumptions the cost estimate needs that the rest of the spec cannot tell (``osft estimate``)."""

from __future__ import annotations

from pydantic import Field

from osft.common.spec.base import SpecModel


class TokenPrice(SpecModel):
    """What an LLM endpoint charges, in USD per million tokens."""

    input: float = Field(ge=0, description="USD per million input (prompt) tokens.")
    output: float = Field(ge=0, description="USD per million output (generated) tokens.")


class CostAssumptions(SpecModel):
    """How the deployed model will be used, for the endpoint's line in the estimate, and prices no table holds.

    A real-time endpoint costs its instance hours whatever the traffic; a serverless one costs
    per request, so the expected request rate decides which is cheaper.
    """

    expected_requests_per_day: int = Field(
        default=10_000, ge=0, description="Embedding requests the endpoint is expected to serve per day."
    )
    mean_request_kb: float = Field(
        default=2.0, gt=0, description="Request plus response size in KB (serverless bills data processed)."
    )
    # Here and not in querygen.openai: the querygen stage's fingerprint covers that section, so a price
    # there would re-run (and re-pay) query generation whenever it was added or changed.
    openai_usd_per_million_tokens: TokenPrice | None = Field(
        default=None,
        description="Token prices of the querygen.provider 'openai' endpoint, which no price table knows; "
        '{"input": 0, "output": 0} for a self-hosted server (llama.cpp, vLLM, Ollama). Unset: the estimate '
        "shows tokens without a price, and max_cost_usd cannot be checked.",
    )
