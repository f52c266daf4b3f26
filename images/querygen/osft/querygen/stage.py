"""The querygen stage: generate queries per document, filter them, split train/held-out by document.

Generators: ``offline`` (no model), ``bedrock`` (Converse on demand), ``bedrock-batch``
(batch inference jobs) and ``openai`` (any OpenAI-compatible endpoint). When the extract
stage read ready-made pairs, they are used as they are instead of generating.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from pathlib import Path
from typing import Any

from osft.common.corpus import Document, Pair, document_text, load_corpus
from osft.common.errors import InputDataError, OsftError
from osft.common.jsonl import read_jsonl, write_jsonl
from osft.common.manifests import QuerygenStats
from osft.common.spec.cost import TokenPrice
from osft.common.stage import StageContext, StageDefinition, StageResult
from osft.common.storage import is_s3
from osft.querygen.accounting import Usage, load_prices
from osft.querygen.filters import QueryFilter, copied_words
from osft.querygen.llm_generation import LlmOutcome, generate_with_llm, local_input
from osft.querygen.offline import DocumentFrequencies, GeneratedQuery, OfflineGenerator
from osft.querygen.prompts import load_examples, read_query_texts
from osft.querygen.splitting import split_documents

TRAIN_FILE = "train.jsonl"
HELDOUT_FILE = "heldout.jsonl"
LOG_FILE = "log_queries.jsonl"


def documents_to_query(corpus: dict[str, Document], max_docs: int | None, seed: int) -> dict[str, Document]:
    """The documents to generate queries for: all, or the ``max_docs`` with the lowest seeded hash.

    Ranking by hash makes samples nested: raising ``max_docs`` keeps every document already
    queried, so a resumed or enlarged LLM run reuses its replies.
    """
    if max_docs is None or max_docs >= len(corpus):
        return corpus
    ranked = sorted(corpus, key=lambda doc_id: hashlib.sha256(f"{seed}:{doc_id}".encode()).digest())
    chosen = set(ranked[:max_docs])
    return {doc_id: doc for doc_id, doc in corpus.items() if doc_id in chosen}


def _generate_offline(
    ctx: StageContext, corpus: dict[str, Document], queried: dict[str, Document]
) -> list[GeneratedQuery]:
    options = ctx.spec.querygen
    frequencies = DocumentFrequencies(corpus.values())
    generator = OfflineGenerator(frequencies, seed=options.seed, styles=options.offline.styles)
    queries: list[GeneratedQuery] = []
    for doc in ctx.progress(queried.values(), desc="generating", total=len(queried), unit="doc"):
        queries.extend(generator.generate(doc, options.queries_per_doc))
    return queries


def _user_pairs(ctx: StageContext, pairs_file: str) -> list[GeneratedQuery]:
    return [
        GeneratedQuery(str(p["doc_id"]), str(p["query"]), "user")
        for p in read_jsonl(ctx.input_path(f"extract/{pairs_file}"))
    ]


def _query_log_file(ctx: StageContext) -> Path:
    """The spec's query log as a local file, or a clear error naming the field."""
    query_log = ctx.spec.querygen.query_log
    assert query_log is not None
    path = local_input(ctx, query_log.path)
    if not path.is_file():
        raise InputDataError(
            "querygen.query_log.path: no such file",
            path=ctx.resolve(query_log.path),
            hint='give a JSONL file with one {"query": "..."} object per line (relative to the spec, or s3://)',
        )
    return path


def _query_log(ctx: StageContext) -> tuple[list[dict[str, str]], dict[str, int]]:
    """The spec's query log, normalized and de-duplicated; short queries stay (keyword searches are real).

    Rows keep the text as logged beside the normalized one, so evaluation can recognise it either way.
    """
    texts = read_query_texts(_query_log_file(ctx), allow_blank=True)  # blank searches are counted as empty
    query_filter = QueryFilter(ctx.spec.querygen.filters.model_copy(update={"min_chars": 1}), None)
    rows = []
    for text in texts:
        kept = query_filter.keep(GeneratedQuery("", text, "log"), "")
        if kept is not None:
            rows.append({"query_id": f"log{len(rows)}", "query": kept.query, "logged": text})
    return rows, dict(query_filter.removed)


def _round_trip(ctx: StageContext, kept: list[GeneratedQuery], corpus: dict[str, Document]) -> list[GeneratedQuery]:
    from osft.querygen.roundtrip import round_trip_keep

    filters = ctx.spec.querygen.filters
    base_dir = None if is_s3(ctx.spec_uri) else Path(ctx.spec_uri).parent
    flags = round_trip_keep(
        kept, corpus, ctx.spec.model, filters.round_trip_top_k or 1, filters.round_trip_batch_size, base_dir
    )
    return [q for q, keep in zip(kept, flags, strict=True) if keep]


def _cost(
    outcome: LlmOutcome | None, provider: str, model_id: str | None, openai_price: TokenPrice | None
) -> tuple[float | None, str | None]:
    if outcome is None:
        return 0.0, None
    if provider == "openai":  # no price table knows an OpenAI-compatible endpoint: the spec may give its price
        if openai_price is None:
            return None, None
        usage = outcome.usage
        usd = (usage.input_tokens * openai_price.input + usage.output_tokens * openai_price.output) / 1e6
        return usd, "cost.openai_usd_per_million_tokens in the spec"
    prices = load_prices()
    table = f"bedrock_prices.json as of {prices['as_of']} ({prices['source']})"
    return outcome.usage.estimated_cost(model_id, prices), table


def run(ctx: StageContext) -> StageResult:
    options = ctx.spec.querygen
    extract = ctx.upstream("extract")
    corpus = load_corpus(ctx)
    log = _query_log(ctx) if options.query_log is not None else None  # a bad log fails before any LLM call
    clock = time.perf_counter()
    outcome: LlmOutcome | None = None
    notes: list[str] = []
    queried = corpus
    if extract.stats.pairs_file:
        generated, provider = _user_pairs(ctx, extract.stats.pairs_file), "user-pairs"
    else:
        queried = documents_to_query(corpus, options.max_docs, options.seed)
        if len(queried) < len(corpus):
            notes.append(f"queries generated for {len(queried):,} of {len(corpus):,} documents (querygen.max_docs)")
        if options.provider == "offline":
            generated, provider = _generate_offline(ctx, corpus, queried), "offline"
        else:
            outcome = generate_with_llm(ctx, corpus, queried.keys())
            generated, provider = outcome.queries, options.provider
            notes.extend(outcome.notes)
    steps = {"generate": round(time.perf_counter() - clock, 3)}

    clock = time.perf_counter()
    examples = load_examples(local_input(ctx, options.examples_path)) if outcome and options.examples_path else []
    query_filter = QueryFilter(options.filters, copied_words(provider, options.filters), examples)
    kept = list(query_filter.apply((q, document_text(corpus[q.doc_id])) for q in generated if q.doc_id in corpus))
    removed = dict(query_filter.removed)
    unknown_docs = sum(1 for q in generated if q.doc_id not in corpus)
    if unknown_docs:
        removed["unknown_document"] = unknown_docs
    if options.filters.round_trip_top_k and kept:
        before = len(kept)
        kept = _round_trip(ctx, kept, corpus)
        removed["round_trip"] = before - len(kept)
    steps["filter"] = round(time.perf_counter() - clock, 3)

    heldout_docs = split_documents(
        [q.doc_id for q in kept], options.heldout_fraction, options.max_heldout_docs, options.seed
    )
    train: list[Pair] = []
    heldout: list[Pair] = []
    for index, query in enumerate(kept):
        pair: Pair = {"query_id": f"q{index}", "query": query.query, "doc_id": query.doc_id, "kind": query.kind}
        if query.kind == "cloze":
            pair["cut_query"] = True
        (heldout if query.doc_id in heldout_docs else train).append(pair)
    if not train:
        raise OsftError(
            f"no training pairs left after filtering {len(generated)} generated queries",
            hint=f"removed by reason: {removed}; loosen querygen.filters or add documents",
        )
    write_jsonl(ctx.output_path(TRAIN_FILE), train)
    write_jsonl(ctx.output_path(HELDOUT_FILE), heldout)
    outputs, counts = [TRAIN_FILE, HELDOUT_FILE], {"train_pairs": len(train), "heldout_pairs": len(heldout)}
    if log is not None:
        log_rows, log_removed = log
        write_jsonl(ctx.output_path(LOG_FILE), log_rows)
        outputs.append(LOG_FILE)
        counts["log_queries"] = len(log_rows)
        notes.append(
            f"query log: {len(log_rows)} queries for the train stage to pair with documents"
            + (f" (removed: {log_removed})" if log_removed else "")
        )

    usage = outcome.usage if outcome else Usage()
    cost, price_table = _cost(outcome, provider, options.resolved_model_id, ctx.spec.cost.openai_usd_per_million_tokens)
    if outcome is not None and cost is None and price_table:
        notes.append(f"No price for {options.resolved_model_id} in the price table; cost not estimated.")
    stats = QuerygenStats(
        provider=provider,
        model_id=options.resolved_model_id if outcome else None,
        documents=len(corpus),
        documents_queried=len(queried),
        queries_generated=len(generated),
        queries_by_kind=dict(Counter(q.kind for q in generated)),
        removed=removed,
        train_pairs=len(train),
        heldout_pairs=len(heldout),
        records=usage.records,
        requests=usage.requests,
        failures=usage.failures,
        unparseable_replies=usage.unparseable,
        retried_on_demand=outcome.retried_on_demand if outcome else 0,
        batch_jobs=outcome.batch_jobs if outcome else [],
        batch_fallback=outcome.batch_fallback if outcome else None,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        batch_input_tokens=usage.batch_input_tokens,
        batch_output_tokens=usage.batch_output_tokens,
        estimated_cost_usd=cost,
        price_table=price_table,
    )
    ctx.log.info(
        "pairs_written",
        train=len(train),
        heldout=len(heldout),
        removed=removed,
        requests=usage.requests,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        estimated_cost_usd=cost,
    )
    return StageResult(
        stats=stats,
        outputs=outputs,
        counts=counts,
        notes=notes,
        steps=steps,
    )


def input_fingerprint(ctx: StageContext) -> dict[str, Any]:
    """What the spec cannot show: prompt and example file contents, and the round-trip model."""
    options = ctx.spec.querygen
    material: dict[str, Any] = {}
    for name in ("prompt_dir", "examples_path"):
        value = getattr(options, name)
        if value and options.uses_llm:
            path = local_input(ctx, value)
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            digest = hashlib.sha256()
            for file in files:
                digest.update(file.name.encode() + b"\x00" + file.read_bytes())
            material[name] = digest.hexdigest()
    if options.query_log is not None:
        material["query_log"] = hashlib.sha256(_query_log_file(ctx).read_bytes()).hexdigest()
    if options.filters.round_trip_top_k:
        material["model"] = ctx.spec.model.model_dump(mode="json")
    return material


# max_docs only chooses which documents get records: nested samples keep every record valid.
SPLIT_AND_FILTER_FIELDS = {"filters", "heldout_fraction", "max_heldout_docs", "query_log", "max_docs"}
# How records are sent, not what is asked: changing these (a fixed service role, fewer concurrent jobs as
# the quota error advises) must keep the replies paid for and the batch jobs in flight. The region stays
# in the key: a job is polled in the region that runs it.
SENDING_FIELDS = {
    "bedrock": {
        "service_role_arn",
        "staging_uri",
        "min_records_per_job",
        "max_records_per_job",
        "max_job_file_bytes",
        "max_concurrent_jobs",
        "max_concurrency",
        "poll_seconds",
        "max_poll_seconds",
        "job_timeout_hours",
        "max_retries",
        "retry_base_seconds",
    },
    "openai": {"api_key_env", "max_concurrency", "timeout_s", "max_retries", "retry_base_seconds"},
}


def generation_key(ctx: StageContext) -> dict[str, Any]:
    """What generated records depend on: changing only filters, the split or how calls are sent reuses
    them (no new LLM calls, no batch job submitted again)."""
    exclude = {**dict.fromkeys(SPLIT_AND_FILTER_FIELDS, True), **SENDING_FIELDS}
    settings = ctx.spec.querygen.model_dump(mode="json", exclude=exclude)
    inputs = input_fingerprint(ctx)
    inputs.pop("model", None)  # the round-trip model filters; it does not generate
    inputs.pop("query_log", None)  # read as it is, not generated
    return {"settings": settings, "inputs": inputs}


STAGE = StageDefinition(
    name="querygen",
    upstream=("extract",),
    spec_sections=("querygen",),
    run=run,
    version="2",
    input_fingerprint=input_fingerprint,
    work_key=generation_key,
)
