"""Hard negatives: passages that look relevant to the base model but are not the positive.

Mined with sentence-transformers' ``mine_hard_negatives`` using the base model. Two guards
keep false negatives (unlabelled relevant passages) out:

- ``range_min`` skips the top-ranked candidates, which are often relevant too;
- ``margin`` keeps a candidate only when it scores at least that much below the positive.

With ``bm25_candidates`` the candidates come from BM25 (``bm25s``) instead, ranked lexically,
and the base model still applies the margin. BM25 finds passages that share words with the
query but are about something else: the mistakes a dense model learns most from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from osft.common.spec.training import HardNegatives

if TYPE_CHECKING:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer


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
) -> MiningResult:
    """(anchor, positive) → (anchor, positive, negative_1..n); queries without enough negatives are dropped."""
    if options.bm25_candidates:
        mined = _mine_bm25(dataset, model, corpus, options, batch_size=batch_size)
        return MiningResult(mined, len(dataset), len(mined), "bm25")
    from sentence_transformers.util import mine_hard_negatives

    mined = mine_hard_negatives(
        dataset,
        model,
        anchor_column_name="anchor",
        positive_column_name="positive",
        corpus=corpus,
        range_min=options.range_min,
        range_max=options.range_max,
        absolute_margin=options.margin,
        num_negatives=options.num_negatives,
        sampling_strategy="top",
        output_format="n-tuple",
        batch_size=batch_size,
        verbose=show_progress,
    )
    renamed = {
        old: new for old, new in zip(mined.column_names[2:], negative_columns(options.num_negatives), strict=True)
    }
    mined = mined.rename_columns(renamed)
    return MiningResult(mined, len(dataset), len(mined), "dense")


def _mine_bm25(
    dataset: Dataset, model: SentenceTransformer, corpus: list[str], options: HardNegatives, *, batch_size: int
) -> Dataset:
    import bm25s
    import numpy as np
    from datasets import Dataset

    anchors, positives = list(dataset["anchor"]), list(dataset["positive"])
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False)
    k = min(options.range_max, len(corpus))
    ranked, _ = retriever.retrieve(
        bm25s.tokenize(anchors, stopwords="en", show_progress=False), k=k, show_progress=False
    )

    query_emb = model.encode(anchors, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    doc_emb = model.encode(corpus, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    positive_emb = model.encode(positives, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    positive_scores = np.sum(query_emb * positive_emb, axis=1)

    rows: dict[str, list[str]] = {"anchor": [], "positive": []}
    columns = negative_columns(options.num_negatives)
    for column in columns:
        rows[column] = []
    for i, candidates in enumerate(ranked):
        chosen: list[str] = []
        for doc_index in candidates[options.range_min :]:
            text = corpus[int(doc_index)]
            if text == positives[i]:
                continue
            if float(query_emb[i] @ doc_emb[int(doc_index)]) > positive_scores[i] - options.margin:
                continue
            chosen.append(text)
            if len(chosen) == options.num_negatives:
                break
        if len(chosen) < options.num_negatives:
            continue
        rows["anchor"].append(anchors[i])
        rows["positive"].append(positives[i])
        for column, text in zip(columns, chosen, strict=True):
            rows[column].append(text)
    return Dataset.from_dict(rows)
