"""Hard negatives: passages that rank high for a query but are not its positive.

Candidates come from one of three rankings (``training.hard_negatives.candidates``):

- ``hybrid`` (default): base-model cosine + ``HYBRID_BM25_WEIGHT`` x BM25 scaled by the query's best
  BM25 score; a negative is drawn at random (seeded) from the ranks in range. BM25 catches the
  domain terms a general model misses, so these are passages the base model ranks too high or
  too low for the right reasons. On SciFact they raised the gain of 684 judged pairs from +2.9 to
  +5.6 nDCG@10 (docs/benchmarks.md); the hybrid ranking alone scores 73.5 there, BM25 69.6 and
  the base model 66.0. The weight 0.4 sits in a flat optimum (0.3 to 0.8 all within 0.3 points).
- ``dense``: the base model's ranking alone, best first.
- ``bm25``: the BM25 ranking, best first.

All three share one ranked path over the base model's stored corpus embeddings. ``dense`` used
sentence-transformers' ``mine_hard_negatives`` before; it can exclude a positive only by its text,
which the inverse-cloze guard below needs to do by document.

Guards against false negatives (unlabelled relevant passages): ``range_min`` skips the top ranks;
every positive of the same query is excluded, and so is the corpus document each positive came from
(``positive_docs``: an inverse-cloze positive is its document minus the query sentence, so its text
is not the corpus text, and the full document, which contains the query verbatim, ranks near the
top); ``margin`` keeps a candidate only when the base model scores it at least that much below the
positive (unset: 0.1 for dense and bm25, none for hybrid, as measured). BM25 is stemmed with
PyStemmer when it is installed.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from osft.common.spec.training import HardNegatives
from osft.trainer.base_embeddings import encode_texts

if TYPE_CHECKING:
    import numpy as np
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer

HYBRID_BM25_WEIGHT = 0.4
RANKED_CANDIDATES = ("hybrid", "bm25", "dense")  # all ranked over the base model's corpus embeddings
QUERY_CHUNK = 64  # queries scored against the whole corpus at once (memory: chunk x corpus floats)


@dataclass(frozen=True)
class MiningResult:
    dataset: Dataset
    queries_in: int
    queries_kept: int
    source: str


def negative_columns(count: int) -> list[str]:
    return [f"negative_{i + 1}" for i in range(count)]


def mine(
    dataset: Dataset,
    model: SentenceTransformer,
    corpus: list[str],
    options: HardNegatives,
    *,
    batch_size: int = 64,
    show_progress: bool = False,
    seed: int = 13,
    corpus_embeddings: np.ndarray | None = None,
    ranker: CorpusRanker | None = None,
    positive_docs: Sequence[int | None] | None = None,
) -> MiningResult:
    """(anchor, positive) → (anchor, positive, negative_1..n); queries without enough negatives are dropped.

    ``corpus_embeddings`` (the base model's from ``encode_texts``, in corpus order) spare an encoding
    of the corpus, and ``ranker`` (over the same corpus) its BM25 index. ``positive_docs`` gives, per
    row, the corpus index of the document its positive was taken from (None when unknown): that
    document is never a negative of the row's query.
    """
    if ranker is None:
        if corpus_embeddings is None:
            corpus_embeddings = encode_texts(model, corpus, batch_size=batch_size, show_progress=show_progress)
        ranker = CorpusRanker(model, corpus, corpus_embeddings, lexical=options.candidates != "dense")
    mined = _mine_ranked(
        dataset, model, corpus, ranker, options, batch_size=batch_size, seed=seed, positive_docs=positive_docs
    )
    return MiningResult(mined, len(dataset), len(mined), options.candidates)


def hybrid_scores(dense, lexical):
    """Base-model cosine + ``HYBRID_BM25_WEIGHT`` x BM25 scaled by the query's best BM25 score (numpy arrays)."""
    return dense + HYBRID_BM25_WEIGHT * lexical / max(float(lexical.max()), 1e-6)


def english_stemmer():
    """PyStemmer's English stemmer when installed, else None (BM25 on surface forms)."""
    try:
        import Stemmer
    except ImportError:
        return None
    return Stemmer.Stemmer("english")


class CorpusRanker:
    """Scores a corpus for queries by BM25 (bm25s, stemmed when PyStemmer is there) and the base model.

    ``scores`` yields, per query, the base model's cosines and the ranking (``hybrid`` or ``bm25``).
    """

    def __init__(
        self, model: SentenceTransformer, corpus: list[str], corpus_embeddings: np.ndarray, *, lexical: bool = True
    ) -> None:
        """``lexical=False``: no BM25 index, for the ``dense`` ranking alone."""
        import bm25s

        self.model = model
        self.corpus_embeddings = corpus_embeddings
        self.stemmer = english_stemmer()
        self.retriever = None
        if lexical:
            self.retriever = bm25s.BM25()
            self.retriever.index(
                bm25s.tokenize(corpus, stopwords="en", stemmer=self.stemmer, show_progress=False), show_progress=False
            )

    def scores(
        self,
        queries: list[str],
        candidates: str = "hybrid",
        *,
        batch_size: int = 64,
        query_embeddings: np.ndarray | None = None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``query_embeddings`` (the base model's, from ``encode_texts``) spare encoding the queries again."""
        import bm25s
        import numpy as np

        lexical_needed = candidates != "dense"
        if lexical_needed and self.retriever is None:
            raise ValueError("this ranker was built without a BM25 index (lexical=False)")
        tokens = (
            bm25s.tokenize(queries, stopwords="en", stemmer=self.stemmer, show_progress=False, return_ids=False)
            if lexical_needed
            else None
        )
        query_emb = query_embeddings
        if query_emb is None:
            query_emb = encode_texts(self.model, queries, batch_size=batch_size)
        for start in range(0, len(queries), QUERY_CHUNK):
            dense = query_emb[start : start + QUERY_CHUNK] @ self.corpus_embeddings.T
            for offset, row in enumerate(dense):
                if tokens is None:
                    yield row, row
                    continue
                query_tokens = tokens[start + offset]
                lexical = (
                    self.retriever.get_scores(query_tokens) if query_tokens else np.zeros(len(row), dtype=np.float32)
                )
                yield row, (hybrid_scores(row, lexical) if candidates == "hybrid" else lexical)


def _mine_ranked(
    dataset: Dataset,
    model: SentenceTransformer,
    corpus: list[str],
    ranker: CorpusRanker,
    options: HardNegatives,
    *,
    batch_size: int,
    seed: int,
    positive_docs: Sequence[int | None] | None = None,
) -> Dataset:
    """Negatives from the hybrid, BM25 or dense ranking of the whole corpus, with the base model's margin."""
    import numpy as np
    from datasets import Dataset

    anchors, positives = list(dataset["anchor"]), list(dataset["positive"])
    positives_of: dict[str, set[str]] = defaultdict(set)
    documents_of: dict[str, set[int]] = defaultdict(set)  # corpus indices of the documents the positives came from
    for i, (anchor, positive) in enumerate(zip(anchors, positives, strict=True)):
        positives_of[anchor].add(positive)
        if positive_docs is not None and positive_docs[i] is not None:
            documents_of[anchor].add(int(positive_docs[i]))
    margin = options.resolved_margin()
    query_emb = encode_texts(model, anchors, batch_size=batch_size)
    if margin is not None:
        positive_scores = np.sum(query_emb * encode_texts(model, positives, batch_size=batch_size), axis=1)
    rng = random.Random(seed)

    rows: dict[str, list[str]] = {"anchor": [], "positive": []}
    columns = negative_columns(options.num_negatives)
    for column in columns:
        rows[column] = []
    scored = ranker.scores(anchors, options.candidates, batch_size=batch_size, query_embeddings=query_emb)
    for i, (dense, ranking) in enumerate(scored):
        order = _top_ranks(ranking, options.range_max)[options.range_min :]
        own, texts = documents_of[anchors[i]], positives_of[anchors[i]]
        candidates = [
            int(j)
            for j in order
            if int(j) not in own
            and corpus[int(j)] not in texts
            and (margin is None or dense[int(j)] <= positive_scores[i] - margin)
        ]
        if len(candidates) < options.num_negatives:
            continue
        if options.candidates == "hybrid":
            chosen = rng.sample(candidates, options.num_negatives)
        else:
            chosen = candidates[: options.num_negatives]
        rows["anchor"].append(anchors[i])
        rows["positive"].append(positives[i])
        for column, j in zip(columns, chosen, strict=True):
            rows[column].append(corpus[j])
    return Dataset.from_dict(rows)


def _top_ranks(ranking, count: int):
    """Indices of the ``count`` highest scores, best first (ties by index): O(corpus), not a full sort."""
    import numpy as np

    if count >= len(ranking):
        return np.argsort(-ranking, kind="stable")
    top = np.argpartition(-ranking, count - 1)[:count]
    return top[np.lexsort((top, -ranking[top]))]
