"""The recipes benchmark's linear-map recipe and its split of held-out queries by seen documents."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def recipes() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_offline_recipes", REPO / "scripts" / "bench_offline_recipes.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tiny_beir(tmp_path: Path, python_docs: list[dict[str, str]]) -> Path:
    """120 real documents; 40 judged queries, two per document for the first 20 documents."""
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    docs = [d for d in python_docs if len(d["text"]) > 80][:120]
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as handle:
        for doc in docs:
            handle.write(json.dumps({"_id": doc["id"], "title": doc["title"], "text": doc["text"]}) + "\n")
    queries, qrels = [], ["query-id\tcorpus-id\tscore"]
    for i, doc in enumerate(docs[:20]):
        for j, text in enumerate((f"what is {doc['title']} for", doc["text"].split(".")[0])):
            queries.append({"_id": f"q{i}-{j}", "text": text})
            qrels.append(f"q{i}-{j}\t{doc['id']}\t1")
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")
    (folder / "qrels" / "dev.tsv").write_text("\n".join(qrels) + "\n", encoding="utf-8")
    return folder


def run_judged_recipe(
    recipes: ModuleType, data: Path, tmp_path: Path, config: dict, *run_flags: str
) -> tuple[Path, list[str]]:
    """``prepare --judged`` then ``run`` of ``config`` on ``data``; the work folder and the common arguments."""
    work = tmp_path / "work"
    common = ["--data", str(data), "--work", str(work), "--max-seq-length", "64"]
    recipes.main([*common, "prepare", "--judged"])
    recipes.main([*common, "run", *run_flags, json.dumps(config)])
    return work, common


@pytest.mark.slow
def test_a_linear_map_recipe_trains_on_judged_pairs_and_splits_its_held_out_queries_by_seen_documents(
    recipes: ModuleType, tiny_beir: Path, tmp_path: Path
) -> None:
    config = {"name": "tiny-linear-map", "queries": "judged", "loss": "linear-map", "steps": 5, "lr": 1e-3}
    work, _common = run_judged_recipe(recipes, tiny_beir, tmp_path, config)

    record = json.loads((work / "results.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    train_ids, heldout_ids = recipes.judged_split(tiny_beir, "dev")
    trained_docs = {query_id.split("-")[0] for query_id in train_ids}
    expected_unseen = [q for q in heldout_ids if q.split("-")[0] not in trained_docs]
    assert record["pairs"] == len(train_ids) == 30
    assert record["scored_queries"] == "the held-out quarter of the judged queries"
    unseen = record["unseen_documents"]
    assert (unseen["heldout_queries"], unseen["queries"]) == (len(heldout_ids), len(expected_unseen))
    assert 0 < unseen["queries"] < unseen["heldout_queries"]  # the fixture gives both kinds
    assert record["tuned"] != record["base"]  # the map moved

    table = "\n".join(recipes.report_lines(work / "results.jsonl"))
    assert "linear map on the frozen base, 5 steps" in table
    assert f"| tiny-linear-map | {record['base']['ndcg@10']:.2f} → {record['tuned']['ndcg@10']:.2f}" in table


def test_the_seen_document_score_is_the_held_out_mean_without_the_unseen_share(recipes: ModuleType) -> None:
    # 4 held-out queries: unseen ones score 40 and 60 (mean 50), seen ones 80 and 100 (mean 90); the mean is 70.
    record = {
        "base": {"ndcg@10": 70.0},
        "tuned": {"ndcg@10": 75.0},
        "unseen_documents": {"queries": 2, "heldout_queries": 4, "base": {"ndcg@10": 50.0}, "tuned": {"ndcg@10": 50.0}},
    }
    assert recipes.seen_document_ndcg(record, "base") == pytest.approx(90.0)
    assert recipes.seen_document_ndcg(record, "tuned") == pytest.approx(100.0)


@pytest.mark.slow
def test_passages_scores_a_saved_recipe_model_with_and_without_passage_vectors(
    recipes: ModuleType, tiny_beir: Path, tmp_path: Path
) -> None:
    config = {"name": "tiny-mnrl", "queries": "judged", "epochs": 1, "batch": 8, "train_seq": 64}
    work, common = run_judged_recipe(recipes, tiny_beir, tmp_path, config, "--save")
    assert (work / "models" / "tiny-mnrl" / "config.json").exists()

    recipes.main([*common, "passages"])
    recipes.main([*common, "passages", "--model", str(work / "models" / "tiny-mnrl")])
    base, tuned = (json.loads(line) for line in (work / "passage-vectors-results.jsonl").read_text().splitlines())
    assert base["model"] == recipes.BASE_MODEL and tuned["model"].endswith("tiny-mnrl")
    assert base["documents"] == 120 and base["passages"] > base["documents"]
    for record in (base, tuned):
        for figures in ("document_vectors", "with_passage_vectors", "hybrid", "hybrid_with_passage_vectors", "bm25"):
            assert 0 < record[figures]["ndcg@10"] <= 1
    assert base["bm25"] == tuned["bm25"], "BM25 does not depend on the model"
    assert base["document_vectors"] != tuned["document_vectors"], "the saved model is the trained one"
