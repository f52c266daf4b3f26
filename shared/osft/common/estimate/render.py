"""Text renderings: the estimate table, and estimated vs counted after a run."""

from __future__ import annotations

from osft.common.estimate.model import Estimate
from osft.common.manifests import EvaluateManifest, QuerygenManifest, TrainManifest


def usd(value: float | None) -> str:
    if value is None:
        return "no price"
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"


def render_estimate(estimate: Estimate) -> str:
    """The table ``osft estimate`` prints: one row per line item, alternatives marked, then totals."""
    lines = [
        f"cost estimate for '{estimate.spec_name}' (prices as of {estimate.prices_as_of}; "
        f"Bedrock: {estimate.bedrock_prices})",
        f"corpus: {estimate.documents:,} documents; {estimate.sampled_documents} sampled, "
        f"{estimate.mean_document_tokens:,.0f} tokens each on average by {estimate.tokenizer}",
        "",
        f"{'stage':<14}{'cost':>12}  {'quantity':>22}  item",
    ]
    for item in estimate.items:
        quantity = f"{item.quantity:,.4g} {item.unit}" if item.quantity < 1000 else f"{item.quantity:,.0f} {item.unit}"
        flag = " (alternative, not in total)" if item.alternative else (" (per month)" if item.monthly else "")
        lines.append(f"{item.stage:<14}{usd(item.usd):>12}  {quantity:>22}  {item.item}{flag}")
    lines.append("")
    lines.append(f"run total: {usd(estimate.run_usd)}")
    if estimate.endpoint_monthly_usd is not None:
        lines.append(f"endpoint: {usd(estimate.endpoint_monthly_usd)} per month while deployed (not in the run total)")
    for item in estimate.unpriced:
        lines.append(f"not priced: {item}")
    if estimate.max_cost_usd is not None:
        verdict = "OVER BUDGET" if estimate.over_budget else "within budget"
        if any(i.usd is None for i in estimate.budget_items()):
            verdict = "cannot be checked (an item has no price)"
        lines.append(f"max_cost_usd: {usd(estimate.max_cost_usd)}: {verdict}")
    lines += [f"note: {note}" for note in estimate.notes]
    return "\n".join(lines)


def render_comparison(
    estimate: Estimate,
    querygen: QuerygenManifest | None,
    train: TrainManifest | None,
    evaluate: EvaluateManifest | None = None,
) -> list[str]:
    """ "estimated vs counted" rows for whatever the run has finished; empty when nothing to compare."""
    rows: list[tuple[str, str, str]] = []
    expected = estimate.expected
    if querygen is not None and querygen.stats.provider not in ("offline", "user-pairs"):
        rows.append(("input tokens", f"{expected.input_tokens:,}", f"{querygen.stats.input_tokens:,}"))
        rows.append(("output tokens", f"{expected.output_tokens:,}", f"{querygen.stats.output_tokens:,}"))
        if querygen.stats.estimated_cost_usd is not None:
            guessed = next((i.usd for i in estimate.items if i.stage == "querygen" and not i.alternative), None)
            rows.append(("querygen USD", usd(guessed), usd(querygen.stats.estimated_cost_usd)))
    if train is not None:
        # The estimate's seconds cover building the rows (mining, teacher scores), training and choosing the
        # merge ratio: the train stage's steps but its export.
        steps = train.timings.steps
        seconds = sum(v for k, v in steps.items() if k != "export") if steps else train.timings.seconds
        pairs = train.stats.train_pairs + train.counts.get("log_pairs", 0)  # the estimate counts query-log pairs too
        rows.append(("training pairs", f"{expected.train_pairs:,}", f"{pairs:,}"))
        rows.append((f"train seconds ({expected.compute})", f"{expected.train_seconds:,.0f}", f"{seconds:,.0f}"))
    if evaluate is not None:
        rows.append(("evaluate seconds", f"{expected.evaluate_seconds:,.0f}", f"{evaluate.timings.seconds:,.0f}"))
    if not rows:
        return []
    lines = ["estimated vs counted (estimate.json):", f"  {'':<28}{'estimated':>14}{'counted':>14}"]
    lines += [f"  {name:<28}{guess:>14}{actual:>14}" for name, guess, actual in rows]
    return lines
