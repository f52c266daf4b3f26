"""Sparse evaluation: retrieval metrics, sparsity and the same gate as dense models."""

from __future__ import annotations

import json

REPORTED = {"ndcg@10", "mrr@10", "recall@10", "recall@100", "map@100"}


def test_evaluation_reports_metrics_sparsity_and_the_gate(bi_encoder_run):
    stats = bi_encoder_run.manifests["evaluate"].stats
    gate = json.loads(bi_encoder_run.path("evaluate/gate.json").read_text())
    metrics = json.loads(bi_encoder_run.path("evaluate/metrics.json").read_text())

    assert stats.decided_by == "synthetic-heldout" and stats.queries == 10
    assert set(stats.base) >= REPORTED and set(stats.tuned) >= REPORTED
    assert gate == {
        "accepted": stats.accepted,
        "metric": "ndcg@10",
        "base": stats.base["ndcg@10"],
        "tuned": stats.tuned["ndcg@10"],
        "decided_by": "synthetic-heldout",
        "decided_on": "model",
    }
    assert stats.accepted == (stats.tuned["ndcg@10"] > stats.base["ndcg@10"])
    for side in ("sparsity base", "sparsity tuned"):
        assert set(stats.extra[side]) == {"query_active_dims", "corpus_active_dims", "avg_flops"}
        assert 0 < stats.extra[side]["query_active_dims"] <= 30522
    assert metrics["sparsity"]["tuned"]["synthetic-heldout"] == stats.extra["sparsity tuned"]


def test_doc_only_evaluation_counts_query_dims_from_the_token_table(doc_only_run):
    stats = doc_only_run.manifests["evaluate"].stats

    # Queries are a handful of tokens; documents from the untrained head are nearly dense.
    assert stats.extra["sparsity tuned"]["query_active_dims"] < 30
    assert stats.extra["sparsity tuned"]["corpus_active_dims"] > 1000


def test_each_query_set_reuses_the_corpus_vectors_of_the_first(bi_encoder_run) -> None:
    from osft.common.beir import JudgedSet
    from osft.trainer.sparse.evaluate import CorpusEncodedOnce, score_sparse

    model = bi_encoder_run.model()
    corpus = {f"d{i}": text for i, text in enumerate(["bees make honey", "tides follow the moon", "json dumps"] * 3)}
    judged = JudgedSet(queries={"q1": "honey bees", "q2": "moon tides"}, relevant={"q1": {"d0", "d3"}, "q2": {"d1"}})
    calls = []
    original = model.encode_document
    model.encode_document = lambda sentences, **kw: calls.append(len(sentences)) or original(sentences, **kw)

    alone, _ = score_sparse(model, corpus, {"one": judged}, batch_size=4, max_active_dims=None)
    assert len(calls) == 1
    twice, sparsity = score_sparse(model, corpus, {"one": judged, "two": judged}, batch_size=4, max_active_dims=None)
    assert len(calls) == 2, "the second set took the first set's corpus vectors"
    assert twice["one"] == twice["two"] == alone["one"]
    assert sparsity["one"] == sparsity["two"]

    with CorpusEncodedOnce(model, budget_bytes=0) as memo:
        for _ in range(2):
            model.encode_document(list(corpus.values()), batch_size=4, convert_to_sparse_tensor=True)
    assert memo.encoded == 2 and not memo.kept, "past the budget every set encodes again"
