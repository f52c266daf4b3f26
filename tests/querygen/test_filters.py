"""Query filters: normalization, length, copied spans, duplicates, round trip; counts per reason."""

from __future__ import annotations

import sys

import pytest

from osft.common.errors import OsftError
from osft.common.spec.querygen import QueryFilters
from osft.querygen.filters import QueryFilter, copied_words, normalize_query
from osft.querygen.offline import GeneratedQuery
from tests.querygen.conftest import make_docs, read_pairs, run_querygen

DOC = "Glacier melt rates in the northern Alps doubled between 2000 and 2020 according to satellite surveys."


def test_queries_are_normalized_before_filtering():
    assert normalize_query('  1. "What   doubled\nin the Alps?" ') == "What doubled in the Alps?"
    assert normalize_query("Query 2: glacier melt") == "glacier melt"


def test_each_filter_counts_its_removals():
    qf = QueryFilter(QueryFilters(min_chars=8, max_chars=100), max_copied_words=copied_words("bedrock", QueryFilters()))
    queries = [
        "",
        "alps",
        "why " * 30,
        "melt rates in the northern Alps doubled between 2000 and 2020 according",
        "how fast are alpine glaciers melting",
        "How fast are Alpine glaciers melting?",
        "satellite evidence of glacier loss",
    ]
    kept = list(qf.apply((GeneratedQuery("d0", q, "factoid"), DOC) for q in queries))
    assert [q.query for q in kept] == ["how fast are alpine glaciers melting", "satellite evidence of glacier loss"]
    assert dict(qf.removed) == {
        "empty": 1,
        "too_short": 1,
        "too_long": 1,
        "copied_from_document": 1,
        "duplicate": 1,
    }


def test_copy_filter_defaults_to_llm_providers_only():
    assert copied_words("openai", QueryFilters()) == 10
    assert copied_words("offline", QueryFilters()) is None
    assert copied_words("offline", QueryFilters(max_copied_words=6)) == 6


def test_round_trip_filter_drops_pairs_whose_document_ranks_low(run_folder, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    docs = make_docs(8)
    pairs = [{"query_id": f"u{i}", "query": f"{docs[i]['title'].split('(')[0]}", "doc_id": f"d{i}"} for i in range(8)]
    pairs.append({"query_id": "bad", "query": "coral bleaching after marine heatwaves", "doc_id": "d0"})
    spec, run_dir = run_folder(
        {"provider": "offline", "filters": {"round_trip_top_k": 2}, "heldout_fraction": 0.0}, docs, pairs=pairs
    )
    manifest = run_querygen(spec, run_dir)
    kept = {(p["query"], p["doc_id"]) for p in read_pairs(run_dir)}
    assert ("coral bleaching after marine heatwaves", "d0") not in kept
    assert manifest.stats.removed["round_trip"] >= 1
    assert len(kept) >= 6


def test_round_trip_without_sentence_transformers_says_how_to_install(run_folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    spec, run_dir = run_folder({"provider": "offline", "filters": {"round_trip_top_k": 3}}, make_docs(4))
    with pytest.raises(OsftError, match=r"osft-querygen\[roundtrip\]"):
        run_querygen(spec, run_dir)


def test_queries_repeating_a_few_shot_example_are_dropped():
    example = "Glacier retreat in the Alps doubled after 2000 according to satellite surveys."
    qf = QueryFilter(QueryFilters(), max_copied_words=10, examples=[example, "Q: ice loss"])
    queries = [
        "ICE   loss",
        "review: glacier retreat in the Alps doubled after 2000 according to satellite surveys",
        "glacier retreat in the alps",
    ]
    kept = list(qf.apply((GeneratedQuery("d0", q, "factoid"), "an unrelated document") for q in queries))
    assert [q.query for q in kept] == ["glacier retreat in the alps"]
    assert dict(qf.removed) == {"repeats_example": 2}
