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


@pytest.mark.parametrize("candidates", ["dense", "bm25", "hybrid"])
def test_mined_negatives_skip_the_top_hits_and_stay_below_the_positive_by_the_margin(
    minilm_model, pairs, candidates
) -> None:
    options = HardNegatives(
        enabled=True, num_negatives=2, range_min=1, range_max=20, margin=0.05, candidates=candidates
    )
    result = mine(pairs, minilm_model, CORPUS, options, batch_size=16)
    assert result.source == candidates
    assert result.dataset.column_names == ["anchor", "positive", "negative_1", "negative_2"]
    assert result.queries_kept == len(result.dataset) > 0
    for row in result.dataset:
        positive_score = _score(minilm_model, row["anchor"], row["positive"])
        for column in ("negative_1", "negative_2"):
            assert row[column] != row["positive"]
            assert _score(minilm_model, row["anchor"], row[column]) <= positive_score - 0.05 + 1e-4


def test_an_impossible_margin_leaves_no_query(minilm_model, pairs) -> None:
    options = HardNegatives(enabled=True, num_negatives=1, range_min=0, range_max=10, margin=5.0, candidates="bm25")
    assert mine(pairs, minilm_model, CORPUS, options).queries_kept == 0


def test_hybrid_negatives_are_seeded_draws_from_the_range_never_another_positive_of_the_query(minilm_model) -> None:
    query = "how do bees make honey in the hive"
    judged = Dataset.from_dict({"anchor": [query, query], "positive": [CORPUS[1], CORPUS[3]]})
    options = HardNegatives(enabled=True, num_negatives=3, range_min=0, range_max=8)
    assert options.resolved_margin() is None, "hybrid: BM25 may rank a passage the base model prefers"
    first = mine(judged, minilm_model, CORPUS, options, seed=1)
    again = mine(judged, minilm_model, CORPUS, options, seed=1)
    other = mine(judged, minilm_model, CORPUS, options, seed=2)
    assert first.source == "hybrid" and first.queries_kept == 2
    negatives = [row[c] for row in first.dataset for c in ("negative_1", "negative_2", "negative_3")]
    assert not {CORPUS[1], CORPUS[3]} & set(negatives), "a query's other relevant passage is not its negative"
    assert first.dataset.to_list() == again.dataset.to_list()
    assert first.dataset.to_list() != other.dataset.to_list()


def test_hard_negatives_default_to_on_for_judged_pairs_and_beside_a_query_log() -> None:
    assert HardNegatives().active("user-pairs") and not HardNegatives().active("offline")
    assert HardNegatives().active("offline", query_log=True)
    assert not HardNegatives(enabled=False).active("offline", query_log=True), "the spec's choice stands"
    assert not HardNegatives(enabled=False).active("user-pairs") and HardNegatives(enabled=True).active("bedrock")
    assert HardNegatives(candidates="dense").resolved_margin() == 0.1


def test_the_document_an_inverse_cloze_positive_was_cut_from_is_never_its_negative(minilm_model) -> None:
    """The positive lacks the query sentence, so its text is not the corpus text; the document is still its own."""
    source = CORPUS[1]
    sentence = source.split("\n", 1)[1].split(".")[0]
    cut = " ".join(source.replace(sentence, " ").split())
    pairs = Dataset.from_dict({"anchor": [sentence], "positive": [cut]})
    # Every other document is a negative: only the query's own document may be left out.
    corpus = CORPUS[:11]
    options = HardNegatives(enabled=True, num_negatives=10, range_min=0, range_max=11)
    result = mine(pairs, minilm_model, corpus, options, batch_size=16, positive_docs=[1])
    assert result.queries_kept == 1
    negatives = [result.dataset[0][f"negative_{i + 1}"] for i in range(10)]
    assert source not in negatives and set(negatives) == set(corpus) - {source}
