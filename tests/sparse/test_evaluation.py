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
