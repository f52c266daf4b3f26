"""A vector per passage beside each document's: passages cut as OpenSearch cuts them, scored as its bool query."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_keyword_baselines import JUDGED, _judged_folder
from trainer_data import tiny_corpus

from osft.common.beir import JudgedSet
from osft.common.passages import delimiter_chunks, document_passages
from osft.common.stage import run_stage
from osft.trainer import keyword_baselines, passage_vectors
from osft.trainer.base_embeddings import encode_texts
from osft.trainer.evaluate_stage import STAGE as EVALUATE
from osft.trainer.evaluate_stage import RetrievalScorer
from osft.trainer.keyword_baselines import MIN_MAX_FLOOR, combined_hits
from osft.trainer.passage_vectors import PassageIndex, bool_hits, passage_metrics
from osft.trainer.train_stage import STAGE as TRAIN


def test_passages_keep_their_delimiter_and_the_text_after_the_last_one() -> None:
    assert delimiter_chunks("Bees make honey. Tides follow the moon. no full stop") == [
        "Bees make honey.",
        " Tides follow the moon.",
        " no full stop",
    ]
    assert delimiter_chunks("Ends with one.") == ["Ends with one."], "no empty passage after a final delimiter"
    assert delimiter_chunks("p < 0.05 here.") == ["p < 0.", "05 here."], "a decimal point splits, as in the cluster"
    assert delimiter_chunks("no delimiter at all") == ["no delimiter at all"]
    assert delimiter_chunks("a\n\nb", delimiter="\n\n") == ["a\n\n", "b"]


def test_a_document_is_trimmed_as_java_trims_before_it_is_cut() -> None:
    assert delimiter_chunks("One. Two.  ") == ["One.", " Two.", "  "], "a blank last passage, untrimmed"
    assert document_passages("\t One. Two.  \n") == ["One.", " Two."]
    assert document_passages("One.\u00a0") == ["One.", "\u00a0"], "String.trim keeps a no-break space"


def test_past_the_chunk_limit_the_rest_stays_whole_in_the_last_passage() -> None:
    text = "One. Two. Three. Four."
    assert delimiter_chunks(text, max_chunk_limit=2) == ["One.", " Two. Three. Four."]
    assert delimiter_chunks(text, max_chunk_limit=-1) == ["One.", " Two.", " Three.", " Four."]
    assert len(delimiter_chunks("x." * 150)) == 100, "the processor's default limit"
    with pytest.raises(ValueError, match="delimiter"):
        delimiter_chunks(text, delimiter="")


def test_the_three_clause_hybrid_scales_each_clause_apart_then_takes_the_weighted_mean() -> None:
    clauses = {"bm25": {"a": 2.0, "b": 1.0}, "dense": {"b": 0.9, "c": 0.5}, "passages": {"a": 0.8}}
    combined = combined_hits(clauses, passage_vectors.HYBRID_WEIGHTS)
    floor = MIN_MAX_FLOOR
    assert combined == pytest.approx({"a": 0.5 + 0.25, "b": 0.5 * floor + 0.25, "c": 0.25 * floor})


LONG_DOCUMENT = (
    "Quarterly report on the regional office.\nThe office moved to a new building in spring. "
    "Staff numbers grew by a tenth over the year. The canteen now serves vegetarian meals daily. "
    "Parking permits are issued by the front desk. A honeybee colony was found nesting in the roof vents."
)


def clause_hits(index: PassageIndex, model, judged: JudgedSet, documents) -> tuple[dict, dict]:
    hits = index.clause_hits(
        model, {"judged": judged}, documents, query_prefix="", document_prefix="", batch_size=16, show_progress=False
    )
    return hits["judged"]


def test_a_document_scores_its_own_vector_plus_its_best_passage(minilm_model, monkeypatch) -> None:
    corpus = {d["id"]: f"{d['title']}\n{d['text']}" for d in tiny_corpus()} | {"report": LONG_DOCUMENT}
    judged = JudgedSet({"q": "bees nesting in a roof"}, {"q": {"report"}})
    index = PassageIndex(corpus)
    assert [index.passages[i] for i, owner in enumerate(index.owners) if owner == len(corpus) - 1] == (
        delimiter_chunks(LONG_DOCUMENT)
    )
    documents = RetrievalScorer(corpus, "", "", batch_size=16).embed_corpus(minilm_model, show_progress=False)
    passages = torch.from_numpy(encode_texts(minilm_model, index.passages, batch_size=16))
    whole, passage = clause_hits(index, minilm_model, judged, documents)
    hits = bool_hits(whole["q"], passage["q"])

    query = minilm_model.encode("bees nesting in a roof", normalize_embeddings=True)
    own = documents.numpy() @ query
    best = [
        max(float(passages[i].numpy() @ query) for i, o in enumerate(index.owners) if o == d) for d in range(len(own))
    ]
    report = list(corpus).index("report")
    assert hits["report"] == pytest.approx((1 + own[report]) / 2 + (1 + best[report]) / 2, abs=1e-5)
    assert best[report] > own[report], "the honeybee sentence matches better than the whole report"

    monkeypatch.setattr(keyword_baselines, "TOP_K", 1)  # each clause returns its first document only
    expected: dict[str, float] = {}
    for scores in (own, best):
        first = max(range(len(scores)), key=lambda d: scores[d])
        expected[index.ids[first]] = expected.get(index.ids[first], 0.0) + (1 + float(scores[first])) / 2
    whole, passage = clause_hits(index, minilm_model, judged, documents)
    assert bool_hits(whole["q"], passage["q"]) == pytest.approx(expected, abs=1e-5)


def test_chunks_cover_every_passage_once_and_never_split_a_document() -> None:
    corpus = {"a": "One. Two. Three.", "empty": "", "b": "Four.", "c": "Five. Six. Seven. Eight."}
    index = PassageIndex(corpus)
    assert index.owners == [0, 0, 0, 2, 3, 3, 3, 3], "a document without text has no passage"
    chunks = list(index.chunks(size=2))
    assert chunks == [(0, 3), (3, 8)], "a chunk runs on to the end of the document it stopped in"
    assert list(index.chunks(size=100)) == [(0, 8)]
    assert list(PassageIndex({"x": ""}).chunks()) == []


def test_passages_embedded_a_chunk_at_a_time_rank_as_all_at_once(minilm_model, monkeypatch) -> None:
    corpus = {d["id"]: f"{d['title']}\n{d['text']}" for d in tiny_corpus()} | {"report": LONG_DOCUMENT, "blank": " "}
    judged = JudgedSet({"q": "bees nesting in a roof", "r": "staff numbers"}, {"q": {"report"}, "r": {"report"}})
    index = PassageIndex(corpus)
    documents = RetrievalScorer(corpus, "", "", batch_size=16).embed_corpus(minilm_model, show_progress=False)
    _, passage_once = clause_hits(index, minilm_model, judged, documents)
    assert "blank" not in passage_once["q"], "the nested query never returns a document without passages"
    assert len(passage_once["q"]) == len(corpus) - 1

    monkeypatch.setattr(passage_vectors, "PASSAGES_PER_CHUNK", 3)
    monkeypatch.setattr(keyword_baselines, "TOP_K", 4)  # fewer than a chunk's documents: the merge must choose
    assert len(list(index.chunks())) > 5
    whole, passage = clause_hits(index, minilm_model, judged, documents)
    for query in judged.queries:
        expected = sorted(passage_once[query].items(), key=lambda item: -item[1])[:4]
        assert passage[query] == pytest.approx(dict(expected), abs=1e-5)
        assert len(whole[query]) == 4


def test_passage_metrics_give_the_hybrid_only_with_bm25_hits(minilm_model) -> None:
    corpus = {d["id"]: f"{d['title']}\n{d['text']}" for d in tiny_corpus()}
    documents = RetrievalScorer(corpus, "", "", batch_size=16).embed_corpus(minilm_model, show_progress=False)
    index = PassageIndex(corpus)

    def scored(bm25=None):
        return passage_metrics(
            index,
            minilm_model,
            {"judged": JUDGED},
            documents,
            query_prefix="",
            document_prefix="",
            batch_size=16,
            show_progress=False,
            bm25=bm25,
        )

    plain = scored()
    assert set(plain) == {"dense"} and set(plain["dense"]["judged"]) >= {"ndcg@10", "recall@100"}
    both = scored({"judged": {query: dict.fromkeys(relevant, 1.0) for query, relevant in JUDGED.relevant.items()}})
    assert both["dense"] == plain["dense"]
    assert both["hybrid"][0.5]["judged"]["ndcg@10"] >= plain["dense"]["judged"]["ndcg@10"], (
        "a BM25 clause that finds every relevant document can only lift them"
    )


@pytest.mark.slow
def test_the_evaluate_stage_reports_passage_vectors_when_asked(make_run, tmp_path) -> None:
    judged = {"judged": {"path": str(_judged_folder(tmp_path)), "split": "test"}}
    spec, run_dir = make_run(evaluation={**judged, "passage_vectors": True})
    run_stage(TRAIN, spec, run_dir)
    manifest, _ = run_stage(EVALUATE, spec, run_dir)
    metrics = json.loads((Path(run_dir) / "evaluate" / "metrics.json").read_text())
    passages = metrics["passage_vectors"]
    assert passages["delimiter"] == "."
    assert set(passages) == {"delimiter", "base", "tuned"}
    assert set(passages["base"]) == {"dense", "hybrid"}
    assert set(passages["tuned"]["dense"]) == {"judged", "synthetic-heldout"}
    extra = manifest.stats.extra
    assert extra["base with passage vectors"] == passages["base"]["dense"]["judged"]
    assert extra["hybrid tuned with passage vectors"] == passages["tuned"]["hybrid"]["judged"]
    assert {"passages_base", "passages_tuned"} <= set(manifest.timings.steps)
    (note,) = [note for note in manifest.notes if "vector per passage" in note]
    deployed = "tuned" if manifest.stats.accepted else "base"
    assert f"the {deployed} model scores ndcg@10 {passages[deployed]['dense']['judged']['ndcg@10']:.4f}" in note
    assert f"without them {metrics[deployed]['judged']['ndcg@10']:.4f}" in note and "hybrid query" in note

    spec_off, run_off = make_run("off", evaluation=judged)
    run_stage(TRAIN, spec_off, run_off)
    quiet, _ = run_stage(EVALUATE, spec_off, run_off)
    assert "passage_vectors" not in json.loads((Path(run_off) / "evaluate" / "metrics.json").read_text())
    assert quiet.stats.base == manifest.stats.base, "passage vectors never change the gate's figures"


@pytest.mark.slow
def test_deployed_passage_vectors_are_scored_and_gate_without_being_asked(make_run, tmp_path) -> None:
    judged = {"judged": {"path": str(_judged_folder(tmp_path)), "split": "test"}}
    opensearch = {"connection": {"url": "https://search.example:9200"}, "mode": "local"}
    deploy = {"opensearch": {**opensearch, "passage_vectors": {}, "hybrid_search": {"keyword_weight": 0.3}}}
    spec, run_dir = make_run(evaluation=judged, deploy=deploy)
    run_stage(TRAIN, spec, run_dir)
    manifest, _ = run_stage(EVALUATE, spec, run_dir)
    metrics = json.loads((Path(run_dir) / "evaluate" / "metrics.json").read_text())
    served = metrics["passage_vectors"]["tuned"]["hybrid_configured"]
    assert served["keyword_weight"] == 0.3
    assert manifest.stats.decided_on == "hybrid+passages"
    assert manifest.stats.tuned == served["judged"]
    assert manifest.stats.base == metrics["passage_vectors"]["base"]["hybrid_configured"]["judged"]
    assert manifest.stats.extra["tuned model alone"] == metrics["tuned"]["judged"]
    assert "hybrid tuned (keyword_weight 0.3) with passage vectors" not in manifest.stats.extra, "it is the table"
    assert "tuned with passage vectors" in manifest.stats.extra
    assert not [note for note in manifest.notes if "vector per passage" in note], "no advice to deploy them again"
