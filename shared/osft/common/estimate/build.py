"""Assemble an ``Estimate`` from the spec, a corpus sample and the price table (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

from osft.common.estimate.corpus_sample import CorpusSample, count_tokens_function
from osft.common.estimate.cost_model import (
    Context,
    aws_items,
    endpoint_items,
    querygen_items,
    training_items,
)
from osft.common.estimate.model import Estimate, Expected
from osft.common.estimate.prices import PriceTable
from osft.common.estimate.prompt_size import PromptSize, measure_prompt
from osft.common.spec import RunSpec

STAGE_ORDER = ("extract", "querygen", "train", "evaluate", "storage", "orchestration", "endpoint")


def build_estimate(
    spec: RunSpec,
    sample: CorpusSample,
    prices: PriceTable,
    *,
    on_aws: bool,
    train_pairs_known: int | None = None,
    log_queries: int = 0,
    prompt: PromptSize | None = None,
    user_pairs: int | None = None,
    sagemaker: bool | None = None,
) -> Estimate:
    """Price every stage; ``run_usd`` totals the one-off items the run would choose.

    ``prompt`` defaults to the built-in templates (and, for a spec-relative ``examples_path``, the assumed
    example size); ``sagemaker`` to ``training.compute``.
    """
    notes = []
    if prompt is None and spec.querygen.uses_llm:
        count, _ = count_tokens_function(prices.data["querygen_assumptions"]["chars_per_token_fallback"])
        prompt = measure_prompt(spec.querygen, None, count, prices.data["querygen_assumptions"])
    if prompt is not None and spec.querygen.uses_llm and spec.source.type != "pairs":
        notes.append(f"prompt: {prompt.described}")
    if sagemaker is None:
        sagemaker = spec.training.compute == "sagemaker"
    ctx = Context(spec, sample, prices, on_aws, train_pairs_known, log_queries, prompt, user_pairs, sagemaker)
    expected = Expected()
    items = querygen_items(ctx, expected) + training_items(ctx, expected) + endpoint_items(ctx) + aws_items(ctx)
    items.sort(key=lambda i: STAGE_ORDER.index(i.stage))
    chosen = [i for i in items if not i.alternative]
    unpriced = [f"{i.stage}: {i.item}" for i in chosen if i.usd is None]
    monthly = [i.usd for i in chosen if i.monthly]
    if not on_aws:
        notes.append("local run: compute on this machine is shown in hours at $0; only paid services are priced")
    bedrock_table = f"{prices.bedrock_origin}, as of {prices.bedrock.get('as_of', '?')}"
    return Estimate(
        spec_name=spec.name,
        created_at=datetime.now(UTC),
        prices_as_of=prices.as_of,
        bedrock_prices=bedrock_table,
        tokenizer=sample.tokenizer,
        documents=sample.documents,
        sampled_documents=sample.sampled,
        mean_document_tokens=round(sample.mean_prompt_tokens, 1),
        items=items,
        expected=expected,
        run_usd=round(sum(i.usd or 0.0 for i in chosen if not i.monthly), 4),
        unpriced=unpriced,
        endpoint_monthly_usd=None if not monthly or None in monthly else round(sum(monthly), 4),  # type: ignore[arg-type]
        max_cost_usd=spec.max_cost_usd,
        notes=notes,
    )
