"""A query log: real queries with no judgements, paired with the hybrid's surest first hits and trained on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trainer_data import spec_document, tiny_corpus

from osft.common.errors import InputDataError
from osft.common.jsonl import read_jsonl
from osft.common.stage import run_stage
from osft.querygen.stage import STAGE as QUERYGEN
from osft.trainer.base_embeddings import encode_texts
from osft.trainer.evaluate_stage import STAGE as EVALUATE
from osft.trainer.hard_negatives import CorpusRanker
from osft.trainer.query_log import kept_count, label_queries
from osft.trainer.train_stage import STAGE as TRAIN

DOCS = [f"{d['title']}\n{d['text']}" for d in tiny_corpus()]
LOGGED = [
    "patching a punctured inner tube",  # doc2, bicycle repair
    "sourdough starter wild yeast",  # doc3, bread baking
    "why do the oceans have two tides a day",  # doc33, tides
    "what is it",  # says nothing: the hybrid cannot be sure of any document
]


def test_kept_count_keeps_at_least_one_and_never_more_than_there_are() -> None:
    assert kept_count(0, 0.5) == 0
    assert kept_count(1, 0.1) == 1
    assert kept_count(10, 0.5) == 5
    assert kept_count(7, 1.0) == 7


@pytest.mark.slow
def test_logged_queries_get_the_hybrid_first_hit_and_the_vague_ones_are_dropped(minilm_model) -> None:
    ranker = CorpusRanker(minilm_model, DOCS, encode_texts(minilm_model, DOCS, batch_size=16))
    everything = label_queries(LOGGED, ranker, keep_fraction=1.0)
    assert [item.lead for item in everything] == sorted((item.lead for item in everything), reverse=True)
    assert everything[-1].query == "what is it", "the vaguest query leads least"
    by_query = {item.query: item.doc_index for item in everything}
    assert by_query[LOGGED[0]] == 2
    assert by_query[LOGGED[1]] == 3
    assert by_query[LOGGED[2]] == 33
    surest = label_queries(LOGGED, ranker, keep_fraction=0.75)
    assert {item.query for item in surest} == set(LOGGED[:3])


def _write_log(path: Path, queries: list[str]) -> Path:
    path.write_text("".join(json.dumps({"query": q}) + "\n" for q in queries))
    return path


def _judged_folder(root: Path, queries: dict[str, tuple[str, str]]) -> Path:
    folder = root / "judged"
    (folder / "qrels").mkdir(parents=True)
    lines = [json.dumps({"_id": q, "text": text}) for q, (text, _) in queries.items()]
    (folder / "queries.jsonl").write_text("\n".join(lines) + "\n")
    rows = [f"{q}\t{doc}\t1" for q, (_, doc) in queries.items()]
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
    return folder


@pytest.mark.slow
def test_a_query_log_trains_the_model_and_its_queries_are_not_scored(make_run, tmp_path) -> None:
    log = _write_log(tmp_path / "log.jsonl", [*LOGGED, "  Patching a punctured   inner tube ", "", "Q: ﬁre ants"])
    judged = _judged_folder(
        tmp_path,
        {
            "logged": ("Patching a punctured inner tube!", "doc2"),  # the same words as a logged query
            "as logged": ("Q: ﬁre ants", "doc31"),  # querygen drops the label; evaluation still matches it
            "fresh": ("how do honey bees live", "doc1"),
        },
    )
    spec, run_dir = make_run(
        querygen={"query_log": {"path": str(log), "keep_fraction": 0.75}},
        evaluation={"judged": {"path": str(judged), "split": "test"}},
    )
    querygen, _ = run_stage(QUERYGEN, spec, run_dir)
    assert querygen.counts["log_queries"] == 5, "the repeated and the empty query are removed"
    assert any(o.path.endswith("querygen/log_queries.jsonl") for o in querygen.outputs)
    assert "'duplicate': 1" in querygen.notes[-1] and "'empty': 1" in querygen.notes[-1]

    train, _ = run_stage(TRAIN, spec, run_dir)
    heldout = {row["doc_id"] for row in read_jsonl(Path(run_dir) / "querygen" / "heldout.jsonl")}
    expected = [q for q, doc in zip(LOGGED[:3], ("doc2", "doc3", "doc33"), strict=True) if doc not in heldout]
    rows = list(read_jsonl(Path(run_dir) / "train" / "_work" / "train_rows.jsonl"))
    logged = [row for row in rows if row["anchor"] in {*LOGGED, "fire ants"}]
    assert set(expected) <= {row["anchor"] for row in logged} and LOGGED[3] not in {r["anchor"] for r in logged}
    assert train.counts["log_pairs"] == len(logged) <= 4, "4 of 5 kept, less those leading to held-out documents"
    heldout_titles = {d["title"] for d in tiny_corpus() if d["id"] in heldout}
    assert not {row["positive"].split("\n")[0] for row in logged} & heldout_titles
    assert all(row.get("negative_1") for row in rows), "a query log turns hybrid hard negatives on"
    assert any(note.startswith(f"query log: {len(logged)} of 5 logged queries") for note in train.notes)
    assert train.stats.hyperparameters["hard_negatives"] == 1

    evaluate, _ = run_stage(EVALUATE, spec, run_dir)
    assert any("2 judged queries are also in the query log" in note for note in evaluate.notes)
    assert evaluate.counts["queries"] == 1


@pytest.mark.slow
def test_changing_the_kept_share_trains_again_and_a_log_of_only_judged_queries_is_refused(make_run, tmp_path) -> None:
    log = _write_log(tmp_path / "log.jsonl", ["how do honey bees live"])
    judged = _judged_folder(tmp_path, {"q": ("How do honey bees live?", "doc1")})
    spec, run_dir = make_run(
        querygen={"query_log": {"path": str(log), "keep_fraction": 1.0}},
        evaluation={"judged": {"path": str(judged), "split": "test"}},
    )
    read_once, _ = run_stage(QUERYGEN, spec, run_dir)
    first, _ = run_stage(TRAIN, spec, run_dir)
    _write_log(log, ["how do honey bees live", "a new logged query"])
    read_twice, _ = run_stage(QUERYGEN, spec, run_dir)
    assert read_twice.fingerprint != read_once.fingerprint, "a changed log file is read again"
    _write_log(log, ["how do honey bees live"])
    document = json.loads(Path(spec).read_text())
    document["querygen"]["query_log"]["keep_fraction"] = 0.5
    Path(spec).write_text(json.dumps(document))
    run_stage(QUERYGEN, spec, run_dir)
    second, _ = run_stage(TRAIN, spec, run_dir)
    assert second.fingerprint != first.fingerprint, "the train stage applies keep_fraction, so it runs again"
    with pytest.raises(InputDataError, match="every judged query is also in the query log"):
        run_stage(EVALUATE, spec, run_dir)


def test_a_missing_query_log_is_a_clear_error_naming_the_field(tmp_path) -> None:
    from osft.common.jsonl import write_jsonl
    from osft.common.runner import run_pipeline

    corpus = tmp_path / "corpus.jsonl"
    write_jsonl(corpus, tiny_corpus())
    from osft.common.errors import SpecError
    from osft.common.registry import load_stage
    from osft.common.stage import run_stage

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(spec_document(corpus, querygen={"query_log": {"path": "nowhere.jsonl"}})))
    run_dir = str(tmp_path / "run")
    # osft run names it before any stage starts ...
    with pytest.raises(SpecError, match=r"querygen\.query_log\.path: .*nowhere\.jsonl: no such file"):
        run_pipeline(str(spec), run_dir=run_dir, until="querygen")
    # ... and the querygen stage alone (as ECS runs it) when it gets there.
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(spec_document(corpus)))
    run_pipeline(str(plain), run_dir=run_dir, until="extract")
    with pytest.raises(InputDataError, match=r"querygen\.query_log\.path: no such file") as raised:
        run_stage(load_stage("querygen"), str(spec), run_dir)
    assert raised.value.path == str(tmp_path / "nowhere.jsonl")


def test_a_bad_line_in_the_query_log_names_the_file_and_line(tmp_path) -> None:
    from osft.common.jsonl import write_jsonl
    from osft.common.runner import run_pipeline

    corpus = tmp_path / "corpus.jsonl"
    write_jsonl(corpus, tiny_corpus())
    log = tmp_path / "log.jsonl"
    log.write_text('{"query": "fine"}\n{"q": "no query field"}\n')
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(spec_document(corpus, querygen={"query_log": {"path": str(log)}})))
    with pytest.raises(InputDataError) as raised:
        run_pipeline(str(spec), run_dir=str(tmp_path / "run"), until="querygen")
    assert raised.value.path == str(log) and raised.value.line == 2


def test_a_single_training_pair_without_negatives_is_refused_before_training(make_run) -> None:
    spec, run_dir = make_run(training={"max_steps": 1, "hard_negatives": {"enabled": False}})
    train_file = Path(run_dir) / "querygen" / "train.jsonl"
    train_file.write_text(train_file.read_text().splitlines()[0] + "\n")
    with pytest.raises(InputDataError, match="one training pair") as raised:
        run_stage(TRAIN, spec, run_dir)
    assert raised.value.path == str(train_file)
