"""Keyword and hybrid baselines beside the dense scores: what an OpenSearch index can do without a new model.

The gate compares the tuned model with its base. A team also wants to know how both stand
against the keyword search they already have, and whether a hybrid query would serve them
better still. On SciFact, for example, BM25 beats all-MiniLM-L6-v2, and the hybrid of the two
beats both by several points, with or without fine-tuning (docs/trainer.md).

- **BM25**: bm25s with Lucene's BM25 (k1 1.2, b 0.75) over lowercased words, with no stemming
  and no stop words, close to a text field with OpenSearch's default ``standard`` analyzer
  (bm25s drops one-character words, which ``standard`` keeps). An index with an ``english``
  analyzer scores somewhat differently.
- **Hybrid**: a ``hybrid`` query of that BM25 clause and the dense model's clause, through a
  search pipeline with a ``normalization-processor`` (``min_max``, ``arithmetic_mean``, the
  weights in ``HYBRID_WEIGHTS``). Each clause returns its top ``TOP_K``; each clause's scores are
  scaled by its own min and max (a scaled 0 becomes 0.001, a single hit 1.0, as the
  neural-search plugin does); a document's score is the weighted mean over both clauses, 0 for a
  clause that did not return it. OpenSearch gives the same ranking for a one-shard index queried
  with ``size`` (or, from 2.19, ``pagination_depth``) ``TOP_K`` and a k-NN ``k`` of ``TOP_K`` on
  the ``lucene`` engine with ``cosinesimil``, whose (1 + cos) / 2 score ``min_max`` cancels out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from osft.common.beir import JudgedSet
from osft.common.hybrid_search import (
    CANDIDATES_PER_CLAUSE,
    DEFAULT_KEYWORD_WEIGHT,
    clause_weights,
    search_pipeline_body,
)
from osft.trainer.hard_negatives import QUERY_CHUNK

if TYPE_CHECKING:
    import numpy as np

TOP_K = CANDIDATES_PER_CLAUSE


def weights_by_clause(keyword_weight: float) -> dict[str, float]:
    """The pipeline's ``weights`` list (BM25 first) by clause name."""
    return dict(zip(("bm25", "dense"), clause_weights(keyword_weight), strict=True))


HYBRID_WEIGHTS = weights_by_clause(DEFAULT_KEYWORD_WEIGHT)
"""OpenSearch's default: equal weights; ``deploy.opensearch.hybrid_search`` creates this pipeline by default."""
MIN_MAX_FLOOR = 0.001
PIPELINE = search_pipeline_body(DEFAULT_KEYWORD_WEIGHT)
"""The search pipeline that reproduces the hybrid figures (the BM25 clause first in the query)."""

Hits = dict[str, float]


class KeywordBaselines:
    """BM25 rankings of the query sets over the corpus, and hybrids of them with a dense model's."""

    def __init__(self, corpus: dict[str, str], sets: dict[str, JudgedSet]) -> None:
        import bm25s

        self.ids = list(corpus)
        self.sets = sets
        retriever = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
        retriever.index(bm25s.tokenize(list(corpus.values()), stopwords=None, show_progress=False), show_progress=False)
        self.bm25: dict[str, dict[str, Hits]] = {}
        for name, judged in sets.items():
            tokens = bm25s.tokenize(
                list(judged.queries.values()), stopwords=None, show_progress=False, return_ids=False
            )
            self.bm25[name] = {
                query_id: _top(self.ids, retriever.get_scores(words)) if words else {}
                for query_id, words in zip(judged.queries, tokens, strict=True)
            }

    def bm25_metrics(self) -> dict[str, dict[str, float]]:
        return {name: ranking_metrics(judged, self.bm25[name]) for name, judged in self.sets.items()}

    def hybrid_metrics(
        self,
        model,
        corpus_embeddings,
        query_prefix: str,
        batch_size: int,
        keyword_weights: Sequence[float] = (DEFAULT_KEYWORD_WEIGHT,),
    ) -> dict[float, dict[str, dict[str, float]]]:
        """Scores of the hybrid query of BM25 and ``model`` (``corpus_embeddings``: its, in corpus order).

        By BM25 clause weight, then by query set; the model's hits are found once for every weight.
        """
        results: dict[float, dict[str, dict[str, float]]] = {weight: {} for weight in keyword_weights}
        for name, judged in self.sets.items():
            dense = dense_hits(model, judged, corpus_embeddings, self.ids, query_prefix, batch_size)
            for weight in keyword_weights:
                weights = weights_by_clause(weight)
                combined = {q: hybrid_hits(self.bm25[name][q], dense[q], weights) for q in dense}
                results[weight][name] = ranking_metrics(judged, combined)
        return results


def dense_hits(
    model, judged: JudgedSet, corpus_embeddings, ids: list[str], query_prefix: str, batch_size: int
) -> dict[str, Hits]:
    """Each query's top ``TOP_K`` documents by cosine (``corpus_embeddings`` come L2-normalized from ``encode_texts``)."""
    queries = encode_queries(model, judged, query_prefix, batch_size, corpus_embeddings.device)
    return ranked_hits(queries, list(judged.queries), corpus_embeddings, ids)


def ranked_hits(queries, query_ids: list[str], corpus_embeddings, ids: list[str]) -> dict[str, Hits]:
    """By query id, the top ``TOP_K`` documents by cosine of encoded ``queries``, ``QUERY_CHUNK`` at a time."""
    hits: dict[str, Hits] = {}
    for start in range(0, len(query_ids), QUERY_CHUNK):
        block = top_hits(queries[start : start + QUERY_CHUNK] @ corpus_embeddings.T, ids)
        hits.update(zip(query_ids[start : start + QUERY_CHUNK], block, strict=True))
    return hits


def top_hits(scores, ids: list[str]) -> list[Hits]:
    """Each row's top ``TOP_K`` columns of a (queries x documents) score tensor, by document id."""
    import torch

    top = torch.topk(scores, min(TOP_K, len(ids)), dim=1)
    return [
        {ids[i]: score for i, score in zip(positions, values, strict=True)}
        for values, positions in zip(top.values.tolist(), top.indices.tolist(), strict=True)
    ]


def encode_queries(model, judged: JudgedSet, query_prefix: str, batch_size: int, device):
    """The set's queries, L2-normalized, in its order, on ``device``."""
    return model.encode_query(
        list(judged.queries.values()),
        prompt=query_prefix,
        batch_size=batch_size,
        convert_to_tensor=True,
        normalize_embeddings=True,
    ).to(device)


def min_max(hits: Hits) -> Hits:
    """The neural-search plugin's ``min_max`` over one clause's hits."""
    if not hits:
        return {}
    low, high = min(hits.values()), max(hits.values())
    if high == low:
        return dict.fromkeys(hits, 1.0)
    return {doc: ((score - low) / (high - low)) or MIN_MAX_FLOOR for doc, score in hits.items()}


def hybrid_hits(lexical: Hits, semantic: Hits, weights: dict[str, float] = HYBRID_WEIGHTS) -> Hits:
    """``arithmetic_mean`` of the min-max scaled clauses; a clause that missed a document gives it 0.

    ``weights``: by clause (``bm25``, ``dense``), as the pipeline's ``weights`` list gives them.
    """
    return combined_hits({"bm25": lexical, "dense": semantic}, weights)


def combined_hits(clauses: dict[str, Hits], weights: dict[str, float]) -> Hits:
    """The normalization processor over any clauses: each min-max scaled, then their weighted mean."""
    scaled = {clause: min_max(hits) for clause, hits in clauses.items()}
    total = sum(weights.values())
    documents = sorted(set().union(*clauses.values()))  # ties then rank the same in every run
    return {
        doc: sum(weight * scaled[clause].get(doc, 0.0) for clause, weight in weights.items()) / total
        for doc in documents
    }


def ranking_metrics(judged: JudgedSet, hits: dict[str, Hits]) -> dict[str, float]:
    """nDCG@10, MRR@10, Recall@10/100 and MAP@100 of rankings, computed as the dense evaluator does."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    from osft.trainer.evaluate_stage import CUTOFFS

    documents = {doc for relevant in judged.relevant.values() for doc in relevant}
    evaluator = InformationRetrievalEvaluator(
        queries=judged.queries,
        corpus=dict.fromkeys(documents, ""),
        relevant_docs=judged.relevant,
        **CUTOFFS,
        write_csv=False,
    )
    results = [
        [{"corpus_id": doc, "score": score} for doc, score in hits[query_id].items()]
        for query_id in evaluator.queries_ids
    ]
    raw = evaluator.compute_metrics(results)
    return {
        "ndcg@10": round(float(raw["ndcg@k"][10]), 5),
        "mrr@10": round(float(raw["mrr@k"][10]), 5),
        "recall@10": round(float(raw["recall@k"][10]), 5),
        "recall@100": round(float(raw["recall@k"][100]), 5),
        "map@100": round(float(raw["map@k"][100]), 5),
    }


def _top(ids: list[str], scores: np.ndarray) -> Hits:
    """The ``TOP_K`` best-scored documents with a positive score (BM25 gives 0 to a document sharing no word)."""
    import numpy as np

    if len(scores) > TOP_K:
        candidates = np.argpartition(-scores, TOP_K)[:TOP_K]
        order = candidates[np.argsort(-scores[candidates], kind="stable")]
    else:
        order = np.argsort(-scores, kind="stable")
    return {ids[i]: float(scores[i]) for i in order if scores[i] > 0}
