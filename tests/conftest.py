"""Fixtures shared by every test folder: offline model hub, tiny real corpora, spec files."""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OSFT_LOG_JSON", "1")

REPO = Path(__file__).resolve().parents[1]


def _demo_corpus_module():
    spec = importlib.util.spec_from_file_location("make_demo_corpus", REPO / "scripts" / "make_demo_corpus.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def python_docs() -> list[dict[str, str]]:
    """Real documentation texts from Python's own standard library (the demo corpus), no download."""
    return list(_demo_corpus_module()._documents())


@pytest.fixture
def tiny_corpus(tmp_path: Path, python_docs: list[dict[str, str]]) -> Path:
    """40 real documents in a JSONL file."""
    path = tmp_path / "corpus.jsonl"
    picked = [d for d in python_docs if d["id"].startswith(("json.", "pathlib.", "itertools.", "re."))][:40]
    path.write_text("".join(json.dumps(d) + "\n" for d in picked), encoding="utf-8")
    return path


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """Write a spec JSON next to the test's files and return its path."""

    def write(data: dict[str, Any], name: str = "spec.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(data, indent=2), encoding="utf-8")
        return path

    return write


@pytest.fixture
def tiny_spec() -> Callable[..., dict[str, Any]]:
    """Build a spec that runs the whole pipeline in seconds on CPU with the packaged model."""
    return make_tiny_spec


def make_tiny_spec(corpus: Path, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "tiny",
        "source": {"type": "local", "path": str(corpus)},
        "querygen": {"provider": "offline", "queries_per_doc": 2, "heldout_fraction": 0.25},
        "model": {"base": "sentence-transformers/all-MiniLM-L6-v2", "max_seq_length": 64},
        "training": {"max_steps": 3, "batch_size": 8, "checkpoint_steps": 2},
        "evaluation": {"batch_size": 32},
    }
    for key, value in overrides.items():
        spec[key] = value
    return spec
