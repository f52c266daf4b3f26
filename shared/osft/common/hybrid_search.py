"""A ``hybrid`` query of BM25 and a registered model, as OpenSearch runs it: the search pipeline and the query.

The evaluate stage scores this hybrid on judged queries (``osft.trainer.keyword_baselines``); the register stage
creates the pipeline in the cluster (``deploy.opensearch.hybrid_search``) and writes a query that uses it, so a
search box sends what was scored. The BM25 clause comes first: the pipeline's weights follow the clause order.
"""

from __future__ import annotations

from typing import Any, Literal

DEFAULT_KEYWORD_WEIGHT = 0.5
"""OpenSearch's default (equal weights), and what the evaluate stage scores."""
CANDIDATES_PER_CLAUSE = 100
"""Documents each clause returns before the scores are combined (the docs recommend 100 to 200)."""


def clause_weights(keyword_weight: float, model_clauses: int = 1) -> list[float]:
    """``[BM25, model...]``: the model's share split evenly over its ``model_clauses`` clauses.

    Rounded, with the last weight taking what is left, so that they sum to exactly 1.0, which the normalization
    processor requires.
    """
    keyword = round(keyword_weight, 6)
    shares = [round((1.0 - keyword) / model_clauses, 6) for _ in range(model_clauses - 1)]
    return [keyword, *shares, round(1.0 - keyword - sum(shares), 6)]


def search_pipeline_body(
    keyword_weight: float = DEFAULT_KEYWORD_WEIGHT,
    model_clauses: int = 1,
    description: str = "osft: hybrid of BM25 and the registered model, as scored in the evaluate stage",
) -> dict:
    """A search pipeline whose ``normalization-processor`` scales each clause by its min and max and averages.

    The description starts with ``osft:``, which is how the register stage tells a pipeline it may update.
    """
    return {
        "description": description,
        "phase_results_processors": [
            {
                "normalization-processor": {
                    "normalization": {"technique": "min_max"},
                    "combination": {
                        "technique": "arithmetic_mean",
                        "parameters": {"weights": clause_weights(keyword_weight, model_clauses)},
                    },
                }
            }
        ],
    }


def model_clause(
    kind: Literal["dense", "sparse"],
    text: str,
    *,
    field: str,
    model_id: str,
    k: int,
    query_model_id: str | None = None,
) -> dict[str, Any]:
    """The model's query: ``neural`` on a ``knn_vector`` field, or ``neural_sparse`` on a ``rank_features`` one.

    ``query_model_id`` is the tokenizer a doc-only sparse model encodes queries with.
    """
    if kind == "sparse":
        return {"neural_sparse": {field: {"query_text": text, "model_id": query_model_id or model_id}}}
    return {"neural": {field: {"query_text": text, "model_id": model_id, "k": k}}}


def hybrid_query(
    kind: Literal["dense", "sparse"],
    text: str,
    *,
    text_field: str,
    embedding_field: str,
    model_id: str,
    k: int = CANDIDATES_PER_CLAUSE,
    query_model_id: str | None = None,
) -> dict[str, Any]:
    """A search body: ``hybrid`` of a ``match`` on ``text_field`` and the model's clause, ``k`` hits each.

    Each clause contributes its top ``size`` documents to the combination (from OpenSearch 2.19 the hybrid
    query's ``pagination_depth`` can set that apart from ``size``), so ``size`` is ``k``: what was scored.
    """
    clause = model_clause(kind, text, field=embedding_field, model_id=model_id, k=k, query_model_id=query_model_id)
    return {
        "size": k,
        "query": {"hybrid": {"queries": [{"match": {text_field: {"query": text}}}, clause]}},
    }
