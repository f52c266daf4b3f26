"""Tokens, requests, failures and the estimated cost of LLM query generation.

Prices come from ``data/bedrock_prices.json``: on-demand USD per million tokens for each base
model id, with the date they were read and their source, and the batch discount. The file is
data so it can be updated without code changes (the cost estimator reads it too).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from osft.querygen.record_log import RecordResult

PRICE_FILE = "bedrock_prices.json"
_PROFILE_PREFIX = re.compile(r"^(?:us|eu|apac|us-gov|ca|jp|au|global)\.")


def load_prices() -> dict[str, Any]:
    """The price table as stored: ``as_of``, ``source``, ``batch_discount`` and ``models``."""
    return json.loads((resources.files("osft.querygen") / "data" / PRICE_FILE).read_text())


def base_model_id(model_id: str) -> str:
    """``anthropic.claude-...`` from an inference-profile id or a model / profile ARN."""
    name = model_id.rsplit("/", 1)[-1] if model_id.startswith("arn:") else model_id
    return _PROFILE_PREFIX.sub("", name)


@dataclass
class Usage:
    """Totals over the record results of one run."""

    records: int = 0
    requests: int = 0
    failures: int = 0
    unparseable: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    batch_input_tokens: int = 0
    batch_output_tokens: int = 0

    @classmethod
    def of(cls, results: Iterable[RecordResult]) -> Usage:
        usage = cls()
        for result in results:
            usage.records += 1
            usage.requests += result.requests
            usage.failures += result.status == "failed"
            usage.unparseable += result.status == "unparseable"
            usage.input_tokens += result.input_tokens
            usage.output_tokens += result.output_tokens
            if result.mode == "batch":
                usage.batch_input_tokens += result.input_tokens
                usage.batch_output_tokens += result.output_tokens
        return usage

    def estimated_cost(self, model_id: str | None, prices: dict[str, Any]) -> float | None:
        """USD at list price (batch tokens at the batch discount); None when the model has no price."""
        row = prices["models"].get(base_model_id(model_id)) if model_id else None
        if row is None:
            return None
        unit = prices.get("unit_tokens", 1_000_000)
        discount = prices.get("batch_discount", 0.5)
        on_demand_in = self.input_tokens - self.batch_input_tokens
        on_demand_out = self.output_tokens - self.batch_output_tokens
        cost = (on_demand_in * row["input"] + on_demand_out * row["output"]) / unit
        cost += discount * (self.batch_input_tokens * row["input"] + self.batch_output_tokens * row["output"]) / unit
        return round(cost, 6)
