"""A vector per passage beside each document's: passages cut as OpenSearch cuts them, scored as its bool query."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_keyword_baselines import JUDGED, _judged_folder
from trainer_data import tiny_corpus

from osft.common.beir import JudgedSet
from osft.common.passages import delimiter_chunks, document_passages
from osft.common.stage import run_stage
from osft.trainer import keyword_baselines, passage_vectors
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


def test_a_document_scores_its_own_vector_plus_its_best_passage(minilm_model, monkeypatch) -> None:
    corpus = {d["id"]: f"{d['title']}\n{d['text']}" for d in tiny_corpus()} | {"report": LONG_DOCUMENT}
    judged = JudgedSet({"q": "bees nesting in a roof"}, {"q": {"report"}})
    index = PassageIndex(corpus)
    assert [index.passages[i] for i, owner in enumerate(index.owners) if owner == len(corpus) - 1] == (
        delimiter_chunks(LONG_DOCUMENT)
    )
    documents = RetrievalScorer(corpus, "", "", batch_size=16).embed_corpus(minilm_model, show_progress=False)
    passages = index.embed(minilm_model, "", 16, show_progress=False)
    whole, passage = index.clause_hits(minilm_model, judged, documents, passages, "", 16)
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
    whole, passage = index.clause_hits(minilm_model, judged, documents, passages, "", 16)
    assert bool_hits(whole["q"], passage["q"]) == pytest.approx(expected, abs=1e-5)


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
    assert both["hybrid"]["judged"]["ndcg@10"] >= plain["dense"]["judged"]["ndcg@10"], (
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
