"""Hard-negative mining with the base model (and BM25 candidates): margin and range keep false negatives out."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Dataset
from trainer_data import tiny_corpus

from osft.common.spec.training import HardNegatives
from osft.trainer.hard_negatives import mine

CORPUS = [f"{d['title']}\n{d['text']}" for d in tiny_corpus()]


@pytest.fixture(scope="module")
def pairs() -> Dataset:
    queries = ["how do bees make honey in the hive", "how to patch a bicycle inner tube", "why do tides happen"]
    positives = [CORPUS[1], CORPUS[2], CORPUS[33]]
    return Dataset.from_dict({"anchor": queries, "positive": positives})


def _score(model, a: str, b: str) -> float:
    emb = model.encode([a, b], normalize_embeddings=True)
    return float(np.dot(emb[0], emb[1]))


@pytest.mark.parametrize("bm25", [False, True], ids=["dense", "bm25"])
def test_mined_negatives_skip_the_top_hits_and_stay_below_the_positive_by_the_margin(minilm_model, pairs, bm25) -> None:
    options = HardNegatives(enabled=True, num_negatives=2, range_min=1, range_max=20, margin=0.05, bm25_candidates=bm25)
    result = mine(pairs, minilm_model, CORPUS, options, batch_size=16)
    assert result.source == ("bm25" if bm25 else "dense")
    assert result.dataset.column_names == ["anchor", "positive", "negative_1", "negative_2"]
    assert result.queries_kept == len(result.dataset) > 0
    for row in result.dataset:
        positive_score = _score(minilm_model, row["anchor"], row["positive"])
        for column in ("negative_1", "negative_2"):
            assert row[column] != row["positive"]
            assert _score(minilm_model, row["anchor"], row[column]) <= positive_score - 0.05 + 1e-4


def test_an_impossible_margin_leaves_no_query(minilm_model, pairs) -> None:
    options = HardNegatives(enabled=True, num_negatives=1, range_min=0, range_max=10, margin=5.0, bm25_candidates=True)
    assert mine(pairs, minilm_model, CORPUS, options).queries_kept == 0
