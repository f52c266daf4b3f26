"""A full dense run (distillation on mined negatives, weight merge, every export, evaluation) and its outputs.

One session-scoped run feeds every test here; each test checks one promise of its outputs.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from osft.common.stage import read_manifest, run_stage
from osft.trainer.evaluate_stage import STAGE as EVALUATE_STAGE
from osft.trainer.export import SAMPLE_TEXTS, min_cosine, onnx_embed, torchscript_embed
from osft.trainer.train_stage import STAGE as TRAIN_STAGE

pytestmark = pytest.mark.slow

EXPORT_KINDS = {"onnx", "onnx_int8", "opensearch_torchscript_zip", "opensearch_onnx_zip"}


@pytest.fixture(scope="session")
def full_run(prepared_run: Path, tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> Path:
    import shutil

    from trainer_data import spec_document

    root = tmp_path_factory.mktemp("full")
    run_dir = root / "run"
    for stage in ("extract", "querygen"):
        shutil.copytree(prepared_run / "run" / stage, run_dir / stage)
    spec = root / "spec.json"
    training = {
        "max_steps": 2,
        "batch_size": 8,
        "hard_negatives": {"enabled": True, "num_negatives": 1, "range_min": 1, "range_max": 20, "margin": 0.05},
        "distillation": {"enabled": True, "teacher": minilm_path, "loss": "margin-mse"},
        "merge": {"enabled": True, "ratios": [0.0, 1.0]},
        "export": {"onnx": True, "onnx_int8": True, "opensearch_zip": True},
    }
    spec.write_text(json.dumps(spec_document(prepared_run / "corpus.jsonl", training=training)))
    run_stage(TRAIN_STAGE, str(spec), str(run_dir))
    run_stage(EVALUATE_STAGE, str(spec), str(run_dir))
    return run_dir


def test_exports_are_recorded_with_the_registration_contract(full_run: Path) -> None:
    exports = read_manifest(str(full_run), "train").stats.exports
    assert set(exports) == EXPORT_KINDS
    for kind, record in exports.items():
        path = full_run / record["path"]
        assert record["path"].startswith("train/exports/") and path.is_file(), kind
        assert record["bytes"] == path.stat().st_size
        assert len(record["sha256"]) == 64
        assert record["function_name"] == "TEXT_EMBEDDING"
        assert record["model_format"] == ("TORCH_SCRIPT" if kind == "opensearch_torchscript_zip" else "ONNX")
        config = record["model_config"]
        assert config["embedding_dimension"] == 384 and config["model_type"] == "bert"
        assert config["pooling_mode"] == "MEAN" and config["normalize_result"] is True
        assert json.loads(config["all_config"])["hidden_size"] == 384
    assert exports["opensearch_torchscript_zip"]["model_config"]["framework_type"] == "sentence_transformers"
    assert exports["opensearch_onnx_zip"]["model_config"]["framework_type"] == "huggingface_transformers"


def test_opensearch_zips_reproduce_the_pytorch_embeddings(full_run: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(full_run / "train" / "model")).encode(list(SAMPLE_TEXTS))
    exports = read_manifest(str(full_run), "train").stats.exports
    for kind in ("opensearch_torchscript_zip", "opensearch_onnx_zip"):
        folder = tmp_path / kind
        with zipfile.ZipFile(full_run / exports[kind]["path"]) as archive:
            names = sorted(archive.namelist())
            archive.extractall(folder)
        assert "tokenizer.json" in names and len(names) == 2
        model_file = folder / next(n for n in names if n != "tokenizer.json")
        if kind == "opensearch_torchscript_zip":
            assert model_file.suffix == ".pt"
            embeddings = torchscript_embed(model_file, folder / "tokenizer.json", SAMPLE_TEXTS)
        else:
            assert model_file.suffix == ".onnx"
            embeddings = onnx_embed(model_file, folder / "tokenizer.json", SAMPLE_TEXTS, "MEAN", True)
        assert min_cosine(reference, embeddings) > 0.999, kind
        assert exports[kind]["check"]["min_cosine"] > 0.999


def test_int8_export_stays_within_the_stated_tolerance(full_run: Path) -> None:
    record = read_manifest(str(full_run), "train").stats.exports["onnx_int8"]
    assert record["check"]["threshold"] == 0.98
    assert 0.98 <= record["check"]["min_cosine"] < 1.0
    assert record["bytes"] < read_manifest(str(full_run), "train").stats.exports["onnx"]["bytes"] / 3


def test_training_rows_carry_mined_negatives_and_teacher_scores(full_run: Path) -> None:
    rows = [json.loads(line) for line in (full_run / "train" / "_work" / "train_rows.jsonl").open()]
    assert rows and all(row["negative_1"] != row["positive"] for row in rows)
    assert all(len(row["label"]) == 2 for row in rows)  # teacher(q, positive), teacher(q, negative_1)
    assert read_manifest(str(full_run), "train").stats.hyperparameters["loss"] == "margin-mse"


def test_merge_ratio_is_picked_on_held_out_pairs_and_recorded(full_run: Path) -> None:
    manifest = read_manifest(str(full_run), "train")
    hp = manifest.stats.hyperparameters
    assert hp["merge_ratio"] in (0.0, 1.0)
    assert set(hp["merge_scores"]) == {"0.0", "1.0"} and hp["merge_validation_pairs"] > 0
    assert any(note.startswith("weight merge: ratio") for note in manifest.notes)


def test_evaluation_writes_the_gate_metrics_and_an_html_report_with_a_chart(full_run: Path) -> None:
    gate = json.loads((full_run / "evaluate" / "gate.json").read_text())
    assert set(gate) == {"accepted", "metric", "base", "tuned", "decided_by", "decided_on"}
    assert gate["decided_on"] == "model"
    metrics = json.loads((full_run / "evaluate" / "metrics.json").read_text())
    assert set(metrics["tuned"]["synthetic-heldout"]) == {"ndcg@10", "mrr@10", "recall@10", "recall@100", "map@100"}
    report = (full_run / "evaluate" / "report.html").read_text()
    assert 'src="metrics.png"' in report and ("ACCEPTED" in report or "REJECTED" in report)
    assert (full_run / "evaluate" / "metrics.png").read_bytes().startswith(b"\x89PNG")
    outputs = {record.path for record in read_manifest(str(full_run), "evaluate").outputs}
    assert {"evaluate/report.html", "evaluate/metrics.png", "evaluate/gate.json"} <= outputs


def test_max_seq_length_is_kept_when_the_spec_sets_it(full_run: Path) -> None:
    hp = read_manifest(str(full_run), "train").stats.hyperparameters
    assert hp["max_seq_length"] == 64 and np.isfinite(hp["learning_rate"])
