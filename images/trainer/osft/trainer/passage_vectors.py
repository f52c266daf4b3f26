"""Passage vectors beside the document vector: what an index that also embeds each sentence would return.

A query often restates one sentence of its document (a scientific claim, a fact from a manual), and one
vector for the whole document blurs that sentence among the others. An index can keep both: the document's
vector and, in a nested field, a vector per passage that OpenSearch's ``text_chunking`` processor cut
(``osft.common.passages``). The query is a ``bool`` with two ``should`` clauses, a ``neural`` query on the
document vector and a ``nested`` ``neural`` query on the passage vectors (``score_mode: max``); each returns its
top ``TOP_K`` documents, and a document's score is the sum of the clauses that returned it, each
(1 + cosine) / 2 on the ``lucene`` engine with ``cosinesimil``. Scored here exactly so, with no model change:
on SciFact it lifts all-MiniLM-L6-v2 by 3.6 points of nDCG@10 (docs/trainer.md, passage vectors).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from osft.common.beir import JudgedSet
from osft.common.hybrid_search import DEFAULT_KEYWORD_WEIGHT, clause_weights
from osft.common.passage_search import VECTOR_CLAUSES
from osft.common.passages import PASSAGE_DELIMITER, document_passages
from osft.trainer.base_embeddings import encode_texts
from osft.trainer.hard_negatives import QUERY_CHUNK
from osft.trainer.keyword_baselines import Hits, combined_hits, encode_queries, ranking_metrics, top_hits

if TYPE_CHECKING:
    import torch

HYBRID_WEIGHTS = dict(
    zip(("bm25", "dense", "passages"), clause_weights(DEFAULT_KEYWORD_WEIGHT, VECTOR_CLAUSES), strict=True)
)
"""The weights of ``passage_search_pipeline_body`` for the hybrid of BM25, the document vector and the passages."""


class PassageIndex:
    """Every document's passages, in corpus order, and which document each belongs to."""

    def __init__(self, corpus: dict[str, str], delimiter: str = PASSAGE_DELIMITER) -> None:
        self.ids = list(corpus)
        self.passages: list[str] = []
        self.owners: list[int] = []
        for position, text in enumerate(corpus.values()):
            chunks = document_passages(text, delimiter)
            self.passages += chunks
            self.owners += [position] * len(chunks)

    def embed(self, model, document_prefix: str, batch_size: int, show_progress: bool) -> torch.Tensor:
        """The passages' L2-normalized embeddings on the model's device, embedded as documents are."""
        import torch

        texts = [document_prefix + passage for passage in self.passages]
        return torch.from_numpy(encode_texts(model, texts, batch_size=batch_size, show_progress=show_progress)).to(
            model.device
        )

    def clause_hits(
        self,
        model,
        judged: JudgedSet,
        document_embeddings: torch.Tensor,
        passage_embeddings: torch.Tensor,
        query_prefix: str,
        batch_size: int,
    ) -> tuple[dict[str, Hits], dict[str, Hits]]:
        """Each query's top documents by cosine with their own vector and with their best passage."""
        import torch

        queries = encode_queries(model, judged, query_prefix, batch_size, document_embeddings.device)
        owners = torch.tensor(self.owners, device=document_embeddings.device)
        query_ids = list(judged.queries)
        whole: dict[str, Hits] = {}
        passage: dict[str, Hits] = {}
        for start in range(0, len(query_ids), QUERY_CHUNK):
            block, chunk_ids = queries[start : start + QUERY_CHUNK], query_ids[start : start + QUERY_CHUNK]
            best = torch.full((len(block), len(self.ids)), -1.0, device=block.device, dtype=block.dtype)
            best = best.scatter_reduce(1, owners.expand(len(block), -1), block @ passage_embeddings.T, reduce="amax")
            whole.update(zip(chunk_ids, top_hits(block @ document_embeddings.T, self.ids), strict=True))
            passage.update(zip(chunk_ids, top_hits(best, self.ids), strict=True))
        return whole, passage


def bool_hits(whole: Hits, passage: Hits) -> Hits:
    """The ``bool`` query's scores: the sum of (1 + cosine) / 2 over the clauses that returned the document."""
    return {
        doc: sum((1 + hits[doc]) / 2 for hits in (whole, passage) if doc in hits)
        for doc in sorted(set(whole) | set(passage))
    }


def passage_metrics(
    index: PassageIndex,
    model,
    sets: dict[str, JudgedSet],
    document_embeddings: torch.Tensor,
    *,
    query_prefix: str,
    document_prefix: str,
    batch_size: int,
    show_progress: bool,
    bm25: dict[str, dict[str, Hits]] | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """``{"dense": {set: metrics}}`` of ``model`` with passage vectors, and ``"hybrid"`` too when ``bm25`` is given.

    The hybrid is a ``hybrid`` query of three clauses, BM25, the document vector and the passage vectors, at
    ``HYBRID_WEIGHTS``: BM25 keeps its default weight and the model's is shared by its two clauses. (The ``bool``
    query as one clause does worse: a document only one of its clauses returned sets that clause's minimum
    low, and min-max scaling then squeezes the documents that matter; on SciFact it lost to the plain hybrid.)
    """
    passage_embeddings = index.embed(model, document_prefix, batch_size, show_progress)
    results: dict[str, dict[str, dict[str, float]]] = {"dense": {}}
    if bm25 is not None:
        results["hybrid"] = {}
    for name, judged in sets.items():
        whole, passage = index.clause_hits(
            model, judged, document_embeddings, passage_embeddings, query_prefix, batch_size
        )
        results["dense"][name] = ranking_metrics(judged, {q: bool_hits(whole[q], passage[q]) for q in whole})
        if bm25 is not None:
            combined = {
                q: combined_hits({"bm25": bm25[name][q], "dense": whole[q], "passages": passage[q]}, HYBRID_WEIGHTS)
                for q in whole
            }
            results["hybrid"][name] = ranking_metrics(judged, combined)
    return results
