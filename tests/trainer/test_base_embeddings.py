"""The base model's corpus embeddings are encoded once a run: mining writes them, evaluate reuses them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from osft.common.logging import configure_logging
from osft.common.stage import run_stage
from osft.trainer import base_embeddings
from osft.trainer.evaluate_stage import STAGE as EVALUATE
from osft.trainer.train_stage import STAGE as TRAIN


def _events(text: str, name: str) -> list[dict]:
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [e for e in events if e["event"] == name]


@pytest.mark.slow
def test_evaluate_scores_the_base_model_with_the_mined_embeddings_and_gets_the_same_metrics(
    make_run, tmp_path, capfd
) -> None:
    spec, run_dir = make_run(training={"hard_negatives": {"enabled": True, "range_min": 1, "range_max": 20}})
    configure_logging(json_output=True)
    train, _ = run_stage(TRAIN, spec, run_dir)
    written = {record.path for record in train.outputs}
    assert {f"train/{name}" for name in base_embeddings.FILES} <= written
    stored = np.load(Path(run_dir) / "train" / base_embeddings.EMBEDDINGS_FILE)
    key = json.loads((Path(run_dir) / "train" / base_embeddings.KEY_FILE).read_text())
    assert stored.dtype == np.float32 and stored.shape == (key["documents"], 384)

    # A copy of the run whose key names another model: its evaluate must encode the corpus itself.
    other_dir = tmp_path / "other"
    shutil.copytree(run_dir, other_dir)
    key_path = other_dir / "train" / base_embeddings.KEY_FILE
    key_path.write_text(json.dumps({**json.loads(key_path.read_text()), "model": "another/model"}))
    capfd.readouterr()

    reused, _ = run_stage(EVALUATE, spec, run_dir)
    assert [e["reused"] for e in _events(capfd.readouterr().err, "base_corpus_embeddings")] == [True]
    encoded, _ = run_stage(EVALUATE, spec, str(other_dir))
    assert [e["reused"] for e in _events(capfd.readouterr().err, "base_corpus_embeddings")] == [False]

    assert reused.stats.base == pytest.approx(encoded.stats.base, abs=1e-4)
    assert reused.stats.tuned == pytest.approx(encoded.stats.tuned, abs=1e-4)


@pytest.mark.slow
def test_a_train_stage_killed_while_mining_keeps_the_encoded_corpus(make_run, capfd) -> None:
    spec, run_dir = make_run(training={"hard_negatives": {"enabled": True, "range_min": 1, "range_max": 20}})
    configure_logging(json_output=True)
    run_stage(TRAIN, spec, run_dir)
    assert [e["reused"] for e in _events(capfd.readouterr().err, "base_corpus_embeddings")] == [False]

    # As if killed after encoding the corpus, before the mined rows and the manifest were written.
    (Path(run_dir) / "train" / "_work" / "train_rows.jsonl").unlink()
    (Path(run_dir) / "train" / "manifest.json").unlink()
    manifest, skipped = run_stage(TRAIN, spec, run_dir)
    events = capfd.readouterr().err
    assert not skipped and [e["reused"] for e in _events(events, "base_corpus_embeddings")] == [True]
    assert _events(events, "hard_negatives_mined"), "the rows are mined again, from the kept embeddings"
    assert f"train/{base_embeddings.EMBEDDINGS_FILE}" in {record.path for record in manifest.outputs}


def test_embeddings_past_the_size_limit_are_not_shared(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(base_embeddings, "MAX_SHARED_BYTES", 1000)
    key = {"model": "m", "modules": "", "documents": 4, "texts_sha256": "x"}
    assert base_embeddings.save(tmp_path, key, np.ones((4, 384), dtype=np.float32)) == []
    assert not list(tmp_path.iterdir())
    assert base_embeddings.save(tmp_path, key, np.ones((4, 8), dtype=np.float32)) == list(base_embeddings.FILES)


def test_a_key_that_differs_in_the_texts_fetches_nothing(tmp_path, minilm_model) -> None:
    texts = ["bees make honey", "tides follow the moon"]
    key = base_embeddings.embeddings_key("m", minilm_model, texts)
    embeddings = base_embeddings.encode_texts(minilm_model, texts, batch_size=2)
    base_embeddings.save(tmp_path, key, embeddings)

    def no_download() -> Path:
        raise AssertionError("the embeddings were fetched although the keys differ")

    torn = tmp_path / "torn.json"
    torn.write_text('{"model": "m", "modu')
    assert base_embeddings.load(torn, no_download, key) is None, "a key cut short by a kill is no match"
    changed = base_embeddings.embeddings_key("m", minilm_model, [texts[0], "tides follow the sun"])
    assert base_embeddings.load(tmp_path / base_embeddings.KEY_FILE, no_download, changed) is None
    loaded = base_embeddings.load(
        tmp_path / base_embeddings.KEY_FILE, lambda: tmp_path / base_embeddings.EMBEDDINGS_FILE, key
    )
    assert loaded is not None and np.array_equal(loaded, embeddings)


def test_the_key_changes_with_the_max_length_and_prompts_never_reach_the_texts(minilm_path) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(minilm_path, device="cpu")
    texts = ["bees make honey", "tides follow the moon"]
    model.max_seq_length = 64
    short = base_embeddings.embeddings_key("m", model, texts)
    plain = base_embeddings.encode_texts(model, texts, batch_size=2)
    model.max_seq_length = 128
    assert base_embeddings.embeddings_key("m", model, texts) != short

    # A prompt saved in a model's configuration is not applied: the texts carry the prefixes.
    model.prompts = {"query": "query: ", "document": "passage: "}
    model.default_prompt_name = "document"
    assert np.allclose(base_embeddings.encode_texts(model, texts, batch_size=2), plain, atol=1e-6)
    assert not np.allclose(model.encode(texts, normalize_embeddings=True), plain, atol=1e-3)
