"""The querygen stage: generate queries per document, filter them, split train/held-out by document."""

from __future__ import annotations

import time

from osft.common.corpus import Document, Pair, document_text, load_corpus
from osft.common.errors import OsftError
from osft.common.jsonl import read_jsonl, write_jsonl
from osft.common.manifests import QuerygenStats
from osft.common.stage import StageContext, StageDefinition, StageResult
from osft.querygen.filters import QueryFilter
from osft.querygen.offline import DocumentFrequencies, GeneratedQuery, OfflineGenerator
from osft.querygen.splitting import split_documents

TRAIN_FILE = "train.jsonl"
HELDOUT_FILE = "heldout.jsonl"


def _generate_offline(ctx: StageContext, corpus: dict[str, Document]) -> list[GeneratedQuery]:
    options = ctx.spec.querygen
    frequencies = DocumentFrequencies(corpus.values())
    generator = OfflineGenerator(frequencies, seed=options.seed)
    queries: list[GeneratedQuery] = []
    for doc in ctx.progress(corpus.values(), desc="generating", total=len(corpus), unit="doc"):
        queries.extend(generator.generate(doc, options.queries_per_doc))
    return queries


def _user_pairs(ctx: StageContext, pairs_file: str) -> list[GeneratedQuery]:
    return [
        GeneratedQuery(str(p["doc_id"]), str(p["query"]), "user")
        for p in read_jsonl(ctx.input_path(f"extract/{pairs_file}"))
    ]


def run(ctx: StageContext) -> StageResult:
    options = ctx.spec.querygen
    extract = ctx.upstream("extract")
    corpus = load_corpus(ctx)
    clock = time.perf_counter()
    if extract.stats.pairs_file:
        generated, provider = _user_pairs(ctx, extract.stats.pairs_file), "user-pairs"
    elif options.provider == "offline":
        generated, provider = _generate_offline(ctx, corpus), "offline"
    else:
        raise OsftError(f"querygen.provider '{options.provider}' is not supported by this querygen version")
    generate_seconds = time.perf_counter() - clock

    query_filter = QueryFilter(options.filters)
    kept = list(query_filter.apply((q, document_text(corpus[q.doc_id])) for q in generated if q.doc_id in corpus))
    heldout_docs = split_documents(
        [q.doc_id for q in kept], options.heldout_fraction, options.max_heldout_docs, options.seed
    )
    train: list[Pair] = []
    heldout: list[Pair] = []
    for index, query in enumerate(kept):
        pair: Pair = {"query_id": f"q{index}", "query": query.query, "doc_id": query.doc_id, "kind": query.kind}
        (heldout if query.doc_id in heldout_docs else train).append(pair)
    if not train:
        raise OsftError(
            f"no training pairs left after filtering {len(generated)} generated queries",
            hint=f"removed by reason: {dict(query_filter.removed)}; loosen querygen.filters or add documents",
        )
    write_jsonl(ctx.output_path(TRAIN_FILE), train)
    write_jsonl(ctx.output_path(HELDOUT_FILE), heldout)

    stats = QuerygenStats(
        provider=provider,
        model_id=options.resolved_model_id,
        documents=len(corpus),
        queries_generated=len(generated),
        removed=dict(query_filter.removed),
        train_pairs=len(train),
        heldout_pairs=len(heldout),
    )
    ctx.log.info("pairs_written", train=len(train), heldout=len(heldout), removed=dict(query_filter.removed))
    return StageResult(
        stats=stats,
        outputs=[TRAIN_FILE, HELDOUT_FILE],
        counts={"train_pairs": len(train), "heldout_pairs": len(heldout)},
        steps={"generate": round(generate_seconds, 3)},
    )


STAGE = StageDefinition(name="querygen", upstream=("extract",), spec_sections=("querygen",), run=run)
