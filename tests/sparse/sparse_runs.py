"""Helpers for the sparse tests: tiny sparse specs and the stages that run them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from osft.common.stage import StageDefinition


def sparse_spec(corpus: Path, base: Path, mode: str, **training: Any) -> dict[str, Any]:
    """A tiny sparse spec: 40 docs, a handful of steps, max_seq_length 64."""
    spec: dict[str, Any] = {
        "name": f"tiny-sparse-{mode}",
        "source": {"type": "local", "path": str(corpus)},
        "querygen": {"provider": "offline", "queries_per_doc": 2, "heldout_fraction": 0.25},
        "evaluation": {"batch_size": 32},
    }
    spec["model"] = {"base": str(base), "type": "sparse", "sparse_mode": mode, "max_seq_length": 64}
    spec["training"] = {
        "max_steps": 2,
        "batch_size": 4,
        "checkpoint_steps": 100,
        "learning_rate": 5e-5,
        "export": {"opensearch_zip": True},
        **training,
    }
    spec["training"]["sparse"] = {"verify_texts": 3, **training.get("sparse", {})}
    return spec


def stage(name: str) -> StageDefinition:
    """The installed train/evaluate stage when it dispatches sparse specs, else one calling the sparse functions."""
    from osft.common.registry import load_stage

    installed = load_stage(name)
    source = Path(sys.modules[installed.run.__module__].__file__).read_text()
    if "osft.trainer.sparse" in source:
        return installed
    if name == "train":
        from osft.trainer.sparse.train import train_sparse

        return StageDefinition(
            name="train", upstream=("extract", "querygen"), spec_sections=("model", "training"), run=train_sparse
        )
    from osft.trainer.sparse.evaluate import evaluate_sparse

    return StageDefinition(
        name="evaluate",
        upstream=("extract", "querygen", "train"),
        spec_sections=("model", "training", "evaluation"),
        run=evaluate_sparse,
    )


def _title_queries(ctx) -> Any:
    """A deterministic querygen stand-in: the title's words plus the text's first words, one query per doc.

    The sparse tests exercise the trainer; the real querygen stage has its own tests.
    """
    import json

    from osft.common.corpus import load_corpus
    from osft.common.manifests.querygen import QuerygenStats
    from osft.common.stage import StageResult

    rows = {"train": [], "heldout": []}
    for index, doc in enumerate(sorted(load_corpus(ctx).values(), key=lambda d: d["id"])):
        words = doc["text"].split()[:6]
        query = " ".join([doc["title"].replace(".", " ").replace("_", " "), *words])
        split = "heldout" if index % 4 == 0 else "train"
        rows[split].append({"query_id": f"q{index}", "query": query, "doc_id": doc["id"], "kind": "title"})
    for split, pairs in rows.items():
        ctx.output_path(f"{split}.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    stats = QuerygenStats(
        provider="title-queries",
        documents=len(rows["train"]) + len(rows["heldout"]),
        train_pairs=len(rows["train"]),
        heldout_pairs=len(rows["heldout"]),
    )
    return StageResult(stats=stats, outputs=["train.jsonl", "heldout.jsonl"])


TITLE_QUERYGEN = StageDefinition(
    name="querygen", upstream=("extract",), spec_sections=("querygen",), run=_title_queries
)
