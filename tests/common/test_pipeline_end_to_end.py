"""A real end-to-end run on a tiny corpus with the packaged model, and re-runs that skip finished stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from osft.common.report import render_report, render_status
from osft.common.runner import run_pipeline, run_status

pytestmark = pytest.mark.slow


def judged_queries(folder: Path, corpus: Path) -> Path:
    """A small BEIR-layout judged set: each query is a document's first sentence."""
    docs = [json.loads(line) for line in corpus.read_text().splitlines()][:12]
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "queries.jsonl", "w") as handle:
        for index, doc in enumerate(docs):
            handle.write(json.dumps({"_id": f"j{index}", "text": doc["text"].split(".")[0]}) + "\n")
    rows = ["query-id\tcorpus-id\tscore"] + [f"j{i}\t{doc['id']}\t1" for i, doc in enumerate(docs)]
    (folder / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n")
    return folder


def test_pipeline_runs_end_to_end_and_skips_finished_stages_on_rerun(
    tmp_path: Path, tiny_corpus: Path, write_spec, tiny_spec
):
    judged = judged_queries(tmp_path / "judged", tiny_corpus)
    spec = write_spec(tiny_spec(tiny_corpus, evaluation={"judged": {"path": str(judged)}, "batch_size": 32}))
    run_dir = tmp_path / "runs" / "tiny"

    first = run_pipeline(str(spec), run_dir=str(run_dir))
    assert [o.stage for o in first.outcomes] == ["extract", "querygen", "train", "evaluate"]
    assert not any(o.skipped for o in first.outcomes)
    evaluation = first.manifest("evaluate")
    assert evaluation.stats.decided_by == "judged"
    assert evaluation.stats.queries == 12
    assert 0 < evaluation.stats.base["ndcg@10"] <= 1 and 0 < evaluation.stats.tuned["ndcg@10"] <= 1
    assert "synthetic-heldout base" in evaluation.stats.extra
    assert (run_dir / "train" / "model" / "model.safetensors").exists()
    assert json.loads((run_dir / "evaluate" / "gate.json").read_text())["decided_by"] == "judged"

    report = render_report(first)
    assert "decided by real judged queries" in report and "ndcg@10" in report and "gate:" in report

    second = run_pipeline(str(spec), run_dir=str(run_dir))
    assert all(o.skipped for o in second.outcomes)
    assert "skipped" in render_report(second)
    assert all(s.state == "completed" for s in run_status(str(run_dir))[:4])
    assert "ndcg@10" in render_status(str(run_dir), run_status(str(run_dir)))

    # Judgements added in place (same path, same spec) score the model again; nothing else re-runs.
    qrels = judged / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text().replace("\nj0\t", "\nj1\t", 1))
    third = run_pipeline(str(spec), run_dir=str(run_dir))
    assert {o.stage: o.skipped for o in third.outcomes} == {
        "extract": True,
        "querygen": True,
        "train": True,
        "evaluate": False,
    }
    assert third.manifest("evaluate").stats.queries == 11


def test_changed_training_section_reruns_train_and_evaluate_only(
    tmp_path: Path, tiny_corpus: Path, write_spec, tiny_spec
):
    data = tiny_spec(tiny_corpus, training={"max_steps": 2, "batch_size": 8})
    spec = write_spec(data)
    run_dir = tmp_path / "run"
    run_pipeline(str(spec), run_dir=str(run_dir))
    data["training"]["max_steps"] = 3
    write_spec(data)
    rerun = run_pipeline(str(spec), run_dir=str(run_dir))
    skipped = {o.stage: o.skipped for o in rerun.outcomes}
    assert skipped == {"extract": True, "querygen": True, "train": False, "evaluate": False}
    assert rerun.manifest("train").counts["steps"] == 3


def test_a_rerun_that_writes_identical_outputs_leaves_later_stages_done(tmp_path, tiny_corpus, write_spec, tiny_spec):
    spec = write_spec(tiny_spec(tiny_corpus))
    run_dir = tmp_path / "run"
    run_pipeline(str(spec), run_dir=str(run_dir), until="querygen")
    tiny_corpus.write_bytes(tiny_corpus.read_bytes())  # same content, new modification time
    rerun = run_pipeline(str(spec), run_dir=str(run_dir), until="querygen")
    assert {o.stage: o.skipped for o in rerun.outcomes} == {"extract": False, "querygen": True}
