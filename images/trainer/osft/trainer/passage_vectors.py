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

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from osft.common.beir import JudgedSet
from osft.common.hybrid_search import DEFAULT_KEYWORD_WEIGHT, clause_weights
from osft.common.passage_search import VECTOR_CLAUSES
from osft.common.passages import PASSAGE_DELIMITER, document_passages
from osft.trainer.base_embeddings import encode_texts
from osft.trainer.hard_negatives import QUERY_CHUNK
from osft.trainer.keyword_baselines import Hits, combined_hits, encode_queries, ranked_hits, ranking_metrics

if TYPE_CHECKING:
    import torch

PASSAGES_PER_CHUNK = 20_000
"""Passages embedded at a time. Only one chunk's embeddings are held, so memory does not grow with the corpus:
20,000 x 384 floats is 31 MB."""


def hybrid_weights(keyword_weight: float = DEFAULT_KEYWORD_WEIGHT) -> dict[str, float]:
    """The weights of ``passage_search_pipeline_body`` by clause: BM25, the document vector, the passages."""
    weights = clause_weights(keyword_weight, VECTOR_CLAUSES)
    return dict(zip(("bm25", "dense", "passages"), weights, strict=True))


HYBRID_WEIGHTS = hybrid_weights()
"""The default pipeline's weights: BM25 keeps its default and the model's share is split over its two clauses."""


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

    def chunks(self, size: int | None = None) -> Iterator[tuple[int, int]]:
        """``(start, end)`` passage ranges of about ``size`` (``PASSAGES_PER_CHUNK``) that never split a document."""
        size = size or PASSAGES_PER_CHUNK
        start = 0
        while start < len(self.passages):
            end = min(start + size, len(self.passages))
            while end < len(self.passages) and self.owners[end] == self.owners[end - 1]:
                end += 1
            yield start, end
            start = end

    def best_passage_hits(
        self, model, queries: torch.Tensor, document_prefix: str, batch_size: int, show_progress: bool
    ) -> list[Hits]:
        """Each query's top ``TOP_K`` documents by cosine with their best passage, as the ``nested`` query finds them.

        ``queries``: L2-normalized rows. The passages are embedded as documents are, a chunk at a time; each
        chunk's best documents are merged into the running top ``TOP_K``. A document without passages is never
        returned.
        """
        import torch
        from tqdm.auto import tqdm

        from osft.trainer import keyword_baselines

        if not len(queries):
            return []
        top_k = keyword_baselines.TOP_K
        best_scores = torch.empty((len(queries), 0), dtype=queries.dtype, device=queries.device)
        best_documents = torch.empty((len(queries), 0), dtype=torch.long, device=queries.device)
        with tqdm(
            total=len(self.passages), desc="passages", unit="passage", disable=not show_progress, dynamic_ncols=True
        ) as bar:
            for start, end in self.chunks():
                texts = [document_prefix + passage for passage in self.passages[start:end]]
                embedded = torch.from_numpy(encode_texts(model, texts, batch_size=batch_size)).to(queries.device)
                first, last = self.owners[start], self.owners[end - 1]
                owners = torch.tensor(self.owners[start:end], device=queries.device) - first
                documents = torch.arange(first, last + 1, device=queries.device)
                merged_scores, merged_documents = [], []
                for row in range(0, len(queries), QUERY_CHUNK):
                    block = queries[row : row + QUERY_CHUNK]
                    chunk_best = torch.full(
                        (len(block), len(documents)), -torch.inf, dtype=block.dtype, device=block.device
                    ).scatter_reduce(1, owners.expand(len(block), -1), block @ embedded.T, reduce="amax")
                    scores = torch.cat([best_scores[row : row + QUERY_CHUNK], chunk_best], dim=1)
                    positions = torch.cat(
                        [best_documents[row : row + QUERY_CHUNK], documents.expand(len(block), -1)], 1
                    )
                    kept = torch.topk(scores, min(top_k, scores.shape[1]), dim=1)
                    merged_scores.append(kept.values)
                    merged_documents.append(positions.gather(1, kept.indices))
                best_scores, best_documents = torch.cat(merged_scores), torch.cat(merged_documents)
                bar.update(end - start)
        return [
            {self.ids[d]: s for d, s in zip(documents, scores, strict=True) if s != float("-inf")}
            for scores, documents in zip(best_scores.tolist(), best_documents.tolist(), strict=True)
        ]

    def clause_hits(
        self,
        model,
        sets: dict[str, JudgedSet],
        document_embeddings: torch.Tensor,
        *,
        query_prefix: str,
        document_prefix: str,
        batch_size: int,
        show_progress: bool,
    ) -> dict[str, tuple[dict[str, Hits], dict[str, Hits]]]:
        """By set, each query's top documents by cosine with their own vector and with their best passage.

        The passages are embedded once for all the sets.
        """
        import torch

        device = document_embeddings.device
        encoded = {
            name: encode_queries(model, judged, query_prefix, batch_size, device) for name, judged in sets.items()
        }
        passage = self.best_passage_hits(
            model, torch.cat(list(encoded.values())), document_prefix, batch_size, show_progress
        )
        results: dict[str, tuple[dict[str, Hits], dict[str, Hits]]] = {}
        offset = 0
        for name, judged in sets.items():
            query_ids = list(judged.queries)
            whole = ranked_hits(encoded[name], query_ids, document_embeddings, self.ids)
            results[name] = whole, dict(zip(query_ids, passage[offset : offset + len(query_ids)], strict=True))
            offset += len(query_ids)
        return results


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
    keyword_weights: Sequence[float] = (DEFAULT_KEYWORD_WEIGHT,),
) -> dict[str, dict]:
    """``{"dense": {set: metrics}}`` of ``model`` with passage vectors, and with ``bm25`` also
    ``"hybrid": {keyword_weight: {set: metrics}}``, one per BM25 weight in ``keyword_weights``.

    The hybrid is a ``hybrid`` query of three clauses, BM25, the document vector and the passage vectors, at
    ``hybrid_weights``: the model's share is split over its two clauses. (The ``bool`` query as one clause does
    worse: a document only one of its clauses returned sets that clause's minimum low, and min-max scaling then
    squeezes the documents that matter; on SciFact it lost to the plain hybrid.)
    """
    hits = index.clause_hits(
        model,
        sets,
        document_embeddings,
        query_prefix=query_prefix,
        document_prefix=document_prefix,
        batch_size=batch_size,
        show_progress=show_progress,
    )
    results: dict[str, dict] = {"dense": {}}
    if bm25 is not None:
        results["hybrid"] = {weight: {} for weight in keyword_weights}
    for name, judged in sets.items():
        whole, passage = hits[name]
        results["dense"][name] = ranking_metrics(judged, {q: bool_hits(whole[q], passage[q]) for q in whole})
        for weight in keyword_weights if bm25 is not None else ():
            clauses = {q: {"bm25": bm25[name][q], "dense": whole[q], "passages": passage[q]} for q in whole}
            combined = {q: combined_hits(by_clause, hybrid_weights(weight)) for q, by_clause in clauses.items()}
            results["hybrid"][weight][name] = ranking_metrics(judged, combined)
    return results
