"""Token and cost accounting against the price table kept in the repository."""

from __future__ import annotations

import pytest

from osft.querygen.accounting import Usage, base_model_id, load_prices
from osft.querygen.record_log import RecordResult


def test_price_table_has_its_date_source_and_the_default_model():
    prices = load_prices()
    assert prices["as_of"] and prices["source"].startswith("https://")
    assert "anthropic.claude-haiku-4-5-20251001-v1:0" in prices["models"]
    assert prices["batch_discount"] == 0.5


@pytest.mark.parametrize(
    "model_id",
    [
        "us.amazon.nova-micro-v1:0",
        "amazon.nova-micro-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-micro-v1:0",
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0",
    ],
)
def test_inference_profiles_and_arns_find_the_base_model_price(model_id):
    assert base_model_id(model_id) == "amazon.nova-micro-v1:0"


def test_batch_tokens_cost_half_and_unknown_models_have_no_estimate():
    results = [
        RecordResult("R1", "d1", "ok", "on-demand", input_tokens=1_000_000, output_tokens=0),
        RecordResult("R2", "d2", "ok", "batch", input_tokens=1_000_000, output_tokens=1_000_000),
        RecordResult("R3", "d3", "failed", "on-demand", requests=3),
    ]
    usage = Usage.of(results)
    assert (usage.records, usage.requests, usage.failures) == (3, 5, 1)
    prices = load_prices()
    assert usage.estimated_cost("us.anthropic.claude-haiku-4-5-20251001-v1:0", prices) == pytest.approx(1.0 + 0.5 * 6.0)
    assert usage.estimated_cost("my-custom-model", prices) is None
