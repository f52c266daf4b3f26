"""BM25 and hybrid baselines beside the dense scores, scored as OpenSearch's hybrid query would rank."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trainer_data import tiny_corpus

from osft.common.beir import JudgedSet
from osft.common.stage import run_stage
from osft.trainer.evaluate_stage import STAGE as EVALUATE
from osft.trainer.evaluate_stage import RetrievalScorer, keyword_notes
from osft.trainer.keyword_baselines import MIN_MAX_FLOOR, KeywordBaselines, dense_hits, hybrid_hits, min_max
from osft.trainer.keyword_baselines import ranking_metrics as keyword_ranking_metrics
from osft.trainer.train_stage import STAGE as TRAIN

CORPUS = {d["id"]: f"{d['title']}\n{d['text']}" for d in tiny_corpus()}
JUDGED = JudgedSet(
    queries={
        "q1": "how do bees make honey in the hive",
        "q2": "patch a bicycle inner tube",
        "q3": "why do tides happen",
    },
    relevant={"q1": {"doc1"}, "q2": {"doc2"}, "q3": {"doc33"}},
)


def test_min_max_follows_the_neural_search_plugin() -> None:
    assert min_max({"a": 10.0, "b": 6.0, "c": 2.0}) == {"a": 1.0, "b": 0.5, "c": MIN_MAX_FLOOR}
    assert min_max({"a": 3.0}) == {"a": 1.0}, "a single hit scales to 1"
    assert min_max({}) == {}


def test_hybrid_is_the_weighted_mean_and_a_clause_that_missed_a_document_gives_it_zero() -> None:
    combined = hybrid_hits({"a": 10.0, "b": 6.0, "c": 2.0}, {"b": 0.9, "d": 0.5})
    assert combined == pytest.approx({"a": 0.5, "b": 0.75, "c": MIN_MAX_FLOOR / 2, "d": MIN_MAX_FLOOR / 2})
    assert max(combined, key=combined.get) == "b", "found by both clauses, it ranks first"
    tied = hybrid_hits({"z": 1.0, "m": 1.0}, {"a": 0.5, "k": 0.5})
    assert list(tied) == ["a", "k", "m", "z"], "tied documents come in one order, whatever the hash seed"


def test_the_bm25_weight_moves_the_mean_toward_its_clause() -> None:
    lexical, semantic = {"a": 10.0, "b": 6.0, "c": 2.0}, {"b": 0.9, "d": 0.5}
    keyword_heavy = hybrid_hits(lexical, semantic, {"bm25": 0.7, "dense": 0.3})
    assert keyword_heavy == pytest.approx(
        {"a": 0.7, "b": 0.7 * 0.5 + 0.3, "c": 0.7 * MIN_MAX_FLOOR, "d": 0.3 * MIN_MAX_FLOOR}
    )
    assert max(keyword_heavy, key=keyword_heavy.get) == "a", "at 0.7 the BM25 leader overtakes the shared hit"


def test_hybrid_metrics_are_given_for_each_bm25_weight_asked(minilm_model) -> None:
    baselines = KeywordBaselines(CORPUS, {"judged": JUDGED})
    scorer = RetrievalScorer(CORPUS, "", "", batch_size=16)
    corpus_embeddings = scorer.embed_corpus(minilm_model, show_progress=False)
    by_weight = baselines.hybrid_metrics(minilm_model, corpus_embeddings, "", 16, (0.5, 0.3))
    assert set(by_weight) == {0.5, 0.3} and set(by_weight[0.3]) == {"judged"}
    assert baselines.hybrid_metrics(minilm_model, corpus_embeddings, "", 16) == {0.5: by_weight[0.5]}


def test_metrics_of_dense_hits_equal_the_dense_evaluators(minilm_model) -> None:
    """The baselines' metrics path agrees with InformationRetrievalEvaluator on the same ranking."""
    scorer = RetrievalScorer(CORPUS, "", "", batch_size=16)
    corpus_embeddings = scorer.embed_corpus(minilm_model, show_progress=False)
    evaluator_scores = scorer.score(minilm_model, {"judged": JUDGED}, corpus_embeddings)["judged"]
    hits = dense_hits(minilm_model, JUDGED, corpus_embeddings, list(CORPUS), "", 16)
    assert keyword_ranking_metrics(JUDGED, hits) == pytest.approx(evaluator_scores, abs=1e-4)


def test_bm25_ranks_the_document_with_the_rare_words_first() -> None:
    baselines = KeywordBaselines(CORPUS, {"judged": JUDGED})
    assert max(baselines.bm25["judged"]["q2"], key=baselines.bm25["judged"]["q2"].get) == "doc2"
    assert baselines.bm25_metrics()["judged"]["recall@100"] == 1.0
    nothing = JudgedSet(queries={"q": "zzzz qqqq"}, relevant={"q": {"doc1"}})
    assert KeywordBaselines(CORPUS, {"x": nothing}).bm25["x"]["q"] == {}, "no shared word, no hit"


def test_a_note_names_the_keyword_query_that_beats_the_model_that_gets_deployed() -> None:
    keyword = {"bm25": {"ndcg@10": 0.67}, "hybrid base": {"ndcg@10": 0.74}, "hybrid tuned": {"ndcg@10": 0.73}}
    (note,) = keyword_notes(keyword, {"ndcg@10": 0.68}, "ndcg@10", accepted=True)
    assert note.startswith("a hybrid query of BM25 and the tuned model scores ndcg@10 0.7300")
    weighted = {**keyword, "hybrid tuned (keyword_weight 0.3)": {"ndcg@10": 0.71}}
    (note,) = keyword_notes(weighted, {"ndcg@10": 0.68}, "ndcg@10", True, " (keyword_weight 0.3)")
    assert note.startswith("a hybrid query of BM25 and the tuned model (keyword_weight 0.3) scores ndcg@10 0.7100")
    assert "deploy.opensearch.hybrid_search" in note, "the accepted model's hybrid is one setting away"
    (note,) = keyword_notes(keyword, {"ndcg@10": 0.66}, "ndcg@10", accepted=False)
    assert note.startswith("a hybrid query of BM25 and the base model scores ndcg@10 0.7400")
    assert "deploy.when_rejected 'base' with deploy.opensearch.hybrid_search" in note, "the base's hybrid ships"
    bm25_wins = {"bm25": {"ndcg@10": 0.8}, "hybrid base": {"ndcg@10": 0.7}, "hybrid tuned": {"ndcg@10": 0.7}}
    (note,) = keyword_notes(bm25_wins, {"ndcg@10": 0.68}, "ndcg@10", accepted=True)
    assert note.startswith("BM25 alone scores") and "hybrid_search" not in note
    weak = {"bm25": {"ndcg@10": 0.5}, "hybrid base": {"ndcg@10": 0.6}, "hybrid tuned": {"ndcg@10": 0.6}}
    assert keyword_notes(weak, {"ndcg@10": 0.66}, "ndcg@10", accepted=True) == []


def _judged_folder(root: Path) -> Path:
    """JUDGED in BEIR layout."""
    folder = root / "judged"
    (folder / "qrels").mkdir(parents=True)
    lines = [json.dumps({"_id": q, "text": text}) for q, text in JUDGED.queries.items()]
    (folder / "queries.jsonl").write_text("\n".join(lines) + "\n")
    rows = [f"{q}\t{doc}\t1" for q, docs in JUDGED.relevant.items() for doc in docs]
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
    return folder


@pytest.mark.slow
def test_the_evaluate_stage_reports_the_baselines_beside_judged_queries_only(make_run, tmp_path) -> None:
    judged = {"judged": {"path": str(_judged_folder(tmp_path)), "split": "test"}}
    # The pipeline register would create weighs BM25 0.3: evaluate scores that hybrid beside the default one.
    opensearch = {"connection": {"url": "https://search.example:9200"}, "mode": "local"}
    deploy = {"opensearch": {**opensearch, "hybrid_search": {"keyword_weight": 0.3}}}
    spec, run_dir = make_run(evaluation=judged, deploy=deploy)
    run_stage(TRAIN, spec, run_dir)
    manifest, _ = run_stage(EVALUATE, spec, run_dir)
    assert manifest.stats.decided_by == "judged"
    assert {"bm25", "hybrid base", "hybrid tuned"} <= set(manifest.stats.extra)
    configured = json.loads((Path(run_dir) / "evaluate" / "metrics.json").read_text())["keyword_baselines"]
    assert configured["hybrid_configured"]["keyword_weight"] == 0.3
    assert set(configured["hybrid_configured"]["base"]) == {"judged", "synthetic-heldout"}
    # The gate compares base and tuned in the hybrid register deploys; the models alone are reported beside.
    assert manifest.stats.decided_on == "hybrid"
    assert manifest.stats.base == configured["hybrid_configured"]["base"]["judged"]
    assert manifest.stats.tuned == configured["hybrid_configured"]["tuned"]["judged"]
    assert not {"hybrid base (keyword_weight 0.3)", "hybrid tuned (keyword_weight 0.3)"} & set(manifest.stats.extra)
    gate = json.loads((Path(run_dir) / "evaluate" / "gate.json").read_text())
    assert gate["decided_on"] == "hybrid" and gate["base"] == manifest.stats.base["ndcg@10"]
    assert manifest.stats.reason.startswith("in the hybrid query with BM25, ndcg@10")
    assert manifest.stats.extra["bm25"]["recall@100"] == 1.0
    metrics = json.loads((Path(run_dir) / "evaluate" / "metrics.json").read_text())
    baselines = metrics["keyword_baselines"]
    assert set(baselines["hybrid"]) == {"base", "tuned"}
    assert set(baselines["bm25"]) == {"judged", "synthetic-heldout"}
    assert baselines["bm25"]["judged"] == manifest.stats.extra["bm25"]
    assert "keyword" in manifest.timings.steps
    report = (Path(run_dir) / "evaluate" / "report.html").read_text()
    assert "hybrid tuned" in report and "compared in the hybrid query with BM25" in report

    spec_off, run_off = make_run("off", evaluation={**judged, "keyword_baselines": False})
    run_stage(TRAIN, spec_off, run_off)
    quiet, _ = run_stage(EVALUATE, spec_off, run_off)
    assert not {"bm25", "hybrid base", "hybrid tuned"} & set(quiet.stats.extra)
    assert "keyword_baselines" not in json.loads((Path(run_off) / "evaluate" / "metrics.json").read_text())
    assert quiet.stats.decided_on == "model"
    assert quiet.stats.base == manifest.stats.extra["base model alone"], "the models alone, scored the same way"

    spec_synthetic, run_synthetic = make_run("synthetic")
    run_stage(TRAIN, spec_synthetic, run_synthetic)
    synthetic, _ = run_stage(EVALUATE, spec_synthetic, run_synthetic)
    assert synthetic.stats.decided_by == "synthetic-heldout"
    assert not {"bm25", "hybrid base", "hybrid tuned"} & set(synthetic.stats.extra), "synthetic queries flatter BM25"
