"""The price table the estimator reads: ``osft/common/data/prices.json`` plus the Bedrock token prices.

Bedrock prices have one home, the querygen package's ``data/bedrock_prices.json`` (its accounting
prices the tokens it counted from the same table). Images without the querygen package (the
extractor image runs ``osft estimate --enforce`` on AWS) use the ``bedrock_fallback`` copy in
``prices.json``; a test keeps the two identical.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

PRICE_FILE = "prices.json"
BEDROCK_PRICE_PACKAGE = "osft.querygen"
BEDROCK_PRICE_FILE = "bedrock_prices.json"
_PROFILE_PREFIX = re.compile(r"^(?:us|eu|apac|us-gov|ca|jp|au|global)\.")


@dataclass(frozen=True)
class PriceTable:
    """Prices and throughput assumptions, with where the Bedrock rows came from."""

    data: dict[str, Any]
    bedrock: dict[str, Any]
    bedrock_origin: str

    @property
    def as_of(self) -> str:
        return str(self.data["as_of"])

    def bedrock_price(self, model_id: str) -> dict[str, float] | None:
        """``{"input", "output"}`` USD per ``unit_tokens`` for a model id, profile id or ARN; None if unknown."""
        return self.bedrock["models"].get(bedrock_base_model_id(model_id))

    def throughput(self, compute: str, size: str) -> float | None:
        """Training pairs per second on ``compute`` (an instance type or ``local-cpu``); None if not in the table."""
        row = self.data["throughput"]["training_pairs_per_second"].get(compute)
        return None if row is None else float(row[size])


def bedrock_base_model_id(model_id: str) -> str:
    """``anthropic.claude-...`` from an inference-profile id (``us.anthropic...``) or a model/profile ARN."""
    name = model_id.rsplit("/", 1)[-1] if model_id.startswith("arn:") else model_id
    return _PROFILE_PREFIX.sub("", name)


def load_querygen_bedrock_prices() -> dict[str, Any] | None:
    """The querygen package's Bedrock price table, or None when that package is not installed."""
    try:
        text = (resources.files(BEDROCK_PRICE_PACKAGE) / "data" / BEDROCK_PRICE_FILE).read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        return None
    return json.loads(text)


def load_price_table() -> PriceTable:
    data = json.loads((resources.files("osft.common") / "data" / PRICE_FILE).read_text())
    bedrock = load_querygen_bedrock_prices()
    if bedrock is not None:
        return PriceTable(data, bedrock, f"{BEDROCK_PRICE_PACKAGE}/data/{BEDROCK_PRICE_FILE}")
    return PriceTable(data, data["bedrock_fallback"], f"osft.common/data/{PRICE_FILE} (bedrock_fallback)")
