"""Fixtures for the sparse trainer tests: the home-built MiniLM SPLADE model and a tiny run folder.

The train and evaluate stages are run through ``run_stage`` with the installed stage
definitions; when the train stage does not yet dispatch sparse specs, ``SPARSE_STAGES`` runs
the sparse functions through stage definitions of the same name.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sparse_runs import TITLE_QUERYGEN, sparse_spec, stage

from osft.common.stage import run_stage


@pytest.fixture(scope="session")
def home_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The home-built SPLADE model (MiniLM + fresh MLM head), built once per session."""
    from osft.trainer.sparse.home_built import build_minilm_splade

    return build_minilm_splade(tmp_path_factory.mktemp("models") / "minilm-splade", max_seq_length=64)


def run_pipeline_to(spec_path: Path, run_dir: Path, until: str = "evaluate") -> dict[str, Any]:
    """Run extract → querygen (title queries) → train → evaluate for a spec file; returns manifests by stage."""
    from osft.common.registry import load_stage

    manifests = {}
    for name in ("extract", "querygen", "train", "evaluate"):
        if name == "extract":
            definition = load_stage(name)
        elif name == "querygen":
            definition = TITLE_QUERYGEN
        else:
            definition = stage(name)
        manifests[name], _ = run_stage(definition, str(spec_path), str(run_dir))
        if name == until:
            break
    return manifests


@dataclass
class SparseRun:
    run_dir: Path
    manifests: dict[str, Any]

    def model(self):
        from sentence_transformers import SparseEncoder

        return SparseEncoder(str(self.run_dir / "train" / "model"), device="cpu")

    def export(self, kind: str) -> dict[str, Any]:
        return self.manifests["train"].stats.exports[kind]

    def path(self, relative: str) -> Path:
        return self.run_dir / relative


def _run(tmp_path_factory, corpus_docs, home_built: Path, mode: str, **training: Any) -> SparseRun:
    root = tmp_path_factory.mktemp(mode)
    corpus = root / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in corpus_docs), encoding="utf-8")
    spec = root / "spec.json"
    spec.write_text(json.dumps(sparse_spec(corpus, home_built, mode, **training)), encoding="utf-8")
    return SparseRun(root / "run", run_pipeline_to(spec, root / "run"))


@pytest.fixture(scope="session")
def corpus_docs(python_docs: list[dict[str, str]]) -> list[dict[str, str]]:
    """40 real documents (the same selection as the shared ``tiny_corpus``)."""
    return [d for d in python_docs if d["id"].startswith(("json.", "pathlib.", "itertools.", "re."))][:40]


@pytest.fixture(scope="session")
def bi_encoder_run(tmp_path_factory, corpus_docs, home_built) -> SparseRun:
    """A bi-encoder run: in-batch negatives only, exported with 10% max-ratio pruning."""
    return _run(tmp_path_factory, corpus_docs, home_built, "bi-encoder", sparse={"prune_ratio": 0.1})


@pytest.fixture(scope="session")
def doc_only_run(tmp_path_factory, corpus_docs, home_built) -> SparseRun:
    """A doc-only run with mined hard negatives, a cross-encoder teacher (margin-MSE) and a trainable IDF table."""
    return _run(
        tmp_path_factory,
        corpus_docs,
        home_built,
        "doc-only",
        hard_negatives={"enabled": True, "num_negatives": 1, "range_min": 1, "range_max": 10, "margin": 0.0},
        distillation={"enabled": True, "teacher": "sentence-transformers/all-MiniLM-L6-v2", "loss": "margin-mse"},
        sparse={"idf_trainable": True},
    )
