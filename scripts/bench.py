"""Reproducible benchmark: the pipeline on a BEIR-layout dataset over a small grid of configurations.

Two quality numbers are kept apart:

- ``byo``: the trainer with good queries (the bring-your-own-pairs path). The dev queries are split
  by query, about 3/4 for training and 1/4 for evaluation; the model trains on the training part's
  (query, relevant document) pairs and is scored on the evaluation part only.
- ``offline``: the offline pipeline (extract → offline querygen → train), scored on all dev queries.

Extract and querygen run once through the real stages (``osft.common.runner.run_pipeline``); each
grid point gets its own run folder whose ``extract``/``querygen`` folders are symlinks to the shared
ones, and runs the real ``train`` stage. Scores use sentence-transformers'
``InformationRetrievalEvaluator`` with the base model's scores computed once.

Where things go. Run folders, model folders and caches always go under ``--out`` (default
``bench-out/``, git-ignored). The small raw results (``results.jsonl``, one line per grid point;
``setup.json``; ``stage-seconds.json``; ``throughput.json``) are kept in the repository, in
``docs/benchmarks/data/``, when the benchmark runs on the default data (``../shared/data/scifact``,
split ``dev``) and ``--out`` is not given; ``docs/benchmarks.md`` and its plots are written from
them, together with ``docs/benchmarks/data/recipes.jsonl`` (``scripts/bench_offline_recipes.py``'s
results, section 3). With any other ``--data`` or ``--split``, or with ``--out DIR``, the raw results
go to ``DIR`` (default ``bench-out/``) and the report to ``DIR/benchmarks.md`` and ``DIR/benchmarks/``,
with section 3 from ``DIR/recipes/results.jsonl``: results of other data or another scoring setup
never mix into the committed SciFact files. Results are appended, so an interrupted benchmark resumes
where it stopped (a rerun skips the grid points already in ``results.jsonl``); a run whose scoring
setup (split, ``--eval-docs``, ``--max-seq-length``, ``--max-pairs``, query and document counts)
differs from the ``setup.json`` beside existing results is refused. ``--report`` only rewrites the
markdown and the plots from what is there, and refuses when there are no results at all. Records
with ``reconstructed_from`` were rebuilt from the tables of ``docs/benchmarks.md`` after the raw
files were lost: they hold only the fields the report prints.

Usage::

    .venv/bin/python scripts/bench.py                       # quick grid on ../shared/data/scifact
    .venv/bin/python scripts/bench.py --data DIR --split dev --grid quick   # results in bench-out/
    .venv/bin/python scripts/bench.py --download nfcorpus   # fetch a BEIR set first (needs internet)
    .venv/bin/python scripts/bench.py --report              # rewrite the markdown and plots only
    .venv/bin/python scripts/bench.py --report --out DIR    # the report of a run with --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "scifact"
DEFAULT_SPLIT = "dev"
DEFAULT_OUT = REPO / "bench-out"
# The raw results behind docs/benchmarks.md (default data and split only; see the module docstring).
COMMITTED_RESULTS = REPO / "docs" / "benchmarks" / "data"
# Settings that change what a score means: results measured with other values must not share a table.
# The dataset by its folder name (not its path, which differs between machines) and the cores (the time columns
# of one table come from one kind of machine).
SCORING_SETUP = ("dataset", "split", "queries", "corpus", "eval_docs", "max_seq_length", "max_pairs", "cores")
BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SPLIT_SEED = 13
TRAIN_SHARE = 0.75
HELDOUT_SHARE_OF_TRAIN = 0.1


@dataclass
class GridPoint:
    """One configuration: which track, and what it changes in the spec."""

    name: str
    track: str  # "offline" or "byo"
    training: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    offline_styles: dict[str, float] | None = None
    merge_ratios: tuple[float, ...] = ()
    note: str = ""


# The quick grid fits a shared 2-core machine in about an hour. Offline pairs are subsampled to 2,000.
QUICK_GRID: tuple[GridPoint, ...] = (
    GridPoint(
        "byo-ep3-lr2e-5",
        "byo",
        {"epochs": 3, "learning_rate": 2e-5, "hard_negatives": {"enabled": False}},
        merge_ratios=(0.5,),
        note="the issue's reference recipe (plain MNRL, batch 32)",
    ),
    GridPoint(
        "off-ep1-lr2e-5",
        "offline",
        {"epochs": 1, "learning_rate": 2e-5},
        note="offline, defaults before this benchmark",
    ),
    GridPoint("off-ep1-lr5e-6", "offline", {"epochs": 1, "learning_rate": 5e-6}, note="lower learning rate"),
    GridPoint(
        "byo-ep3-lr5e-5",
        "byo",
        {"epochs": 3, "learning_rate": 5e-5, "hard_negatives": {"enabled": False}},
        note="higher learning rate",
    ),
    GridPoint(
        "byo-ep3-lr2e-5-hn",
        "byo",
        {"epochs": 3, "learning_rate": 2e-5, "hard_negatives": {"enabled": True}},
        note="hybrid hard negatives (the default for judged pairs: 1 per pair, ranks 1-30)",
    ),
    GridPoint(
        "off-claims-ep1-lr1e-5",
        "offline",
        {"epochs": 1, "learning_rate": 1e-5},
        offline_styles={"claim": 0.6, "question": 0.4, "keywords": 0.0, "title": 0.0, "cloze": 0.0},
        note="generator: claims and questions only",
    ),
    GridPoint("byo-ep1-lr5e-5", "byo", {"epochs": 1, "learning_rate": 5e-5, "hard_negatives": {"enabled": False}}),
    GridPoint(
        "off-ep1-lr1e-5-hn",
        "offline",
        {"epochs": 1, "learning_rate": 1e-5, "hard_negatives": {"enabled": True}},
        note="hard negatives on offline pairs",
    ),
)
GRIDS = {"quick": QUICK_GRID}


# ----------------------------------------------------------------------------- data


def read_beir(data: Path, split: str) -> tuple[dict[str, str], dict[str, set[str]]]:
    from osft.common.beir import read_judged_set

    judged = read_judged_set(data, split)
    return judged.queries, judged.relevant


def split_queries(queries: dict[str, str], seed: int = SPLIT_SEED) -> tuple[list[str], list[str]]:
    """Query ids split about 3/4 train, 1/4 evaluation, seeded, by query (never by pair)."""
    ids = sorted(queries)
    random.Random(seed).shuffle(ids)
    cut = round(len(ids) * TRAIN_SHARE)
    return sorted(ids[:cut]), sorted(ids[cut:])


def base_spec(name: str, data: Path, split: str, max_pairs: int) -> dict[str, Any]:
    return {
        "name": name,
        "source": {
            "type": "local",
            "path": str(data / "corpus.jsonl"),
            "fields": {"id": "_id", "title": "title", "text": "text"},
        },
        "querygen": {"provider": "offline", "queries_per_doc": 2, "heldout_fraction": 0.05},
        "model": {"base": BASE_MODEL, "type": "dense", "max_seq_length": 256},
        "training": {"max_train_pairs": max_pairs, "batch_size": 32},
        "evaluation": {"judged": {"path": str(data), "split": split}, "metric": "ndcg@10"},
    }


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def prepare_offline(out: Path, spec: dict[str, Any], styles: dict[str, float] | None) -> tuple[Path, dict]:
    """Run extract + offline querygen once per generator setting; returns the run folder and stage timings."""
    from osft.common.runner import run_pipeline

    key = "default" if styles is None else "-".join(f"{k}{v:g}" for k, v in sorted(styles.items()) if v)
    run_dir = out / "shared" / f"offline-{key}"
    spec = json.loads(json.dumps(spec))
    if styles is not None:
        spec["querygen"]["offline"] = {"styles": styles}
        link(out / "shared" / "offline-default" / "extract", run_dir / "extract")
    spec_path = write_json(out / "specs" / f"offline-{key}.json", spec)
    result = run_pipeline(str(spec_path), run_dir=str(run_dir), until="querygen")
    timings = {o.stage: o.manifest.timings.seconds for o in result.outcomes}
    return run_dir, timings


def prepare_byo(
    out: Path, extract_run: Path, queries: dict[str, str], relevant: dict[str, set[str]], train_ids: list[str]
) -> Path:
    """A querygen folder holding the dev-train queries' judged pairs, as bring-your-own pairs would."""
    from osft.common.jsonl import write_jsonl
    from osft.common.manifests import FileRecord, QuerygenManifest, QuerygenStats, Timings
    from osft.common.storage import sha256_file

    run_dir = out / "shared" / "byo-dev-split"
    link(extract_run / "extract", run_dir / "extract")
    folder = run_dir / "querygen"
    if (folder / "manifest.json").exists():
        return run_dir
    folder.mkdir(parents=True, exist_ok=True)
    ids = list(train_ids)
    random.Random(SPLIT_SEED).shuffle(ids)
    held = set(ids[: round(len(ids) * HELDOUT_SHARE_OF_TRAIN)])
    rows = {"train": [], "heldout": []}
    for qid in train_ids:
        for doc_id in sorted(relevant[qid]):
            part = "heldout" if qid in held else "train"
            rows[part].append({"query_id": qid, "query": queries[qid], "doc_id": doc_id, "kind": "judged"})
    now = datetime.now(UTC)
    outputs = []
    for part, records in rows.items():
        write_jsonl(folder / f"{part}.jsonl", records)
        path = folder / f"{part}.jsonl"
        outputs.append(FileRecord(path=f"querygen/{part}.jsonl", sha256=sha256_file(path), bytes=path.stat().st_size))
    manifest = QuerygenManifest(
        stage="querygen",
        run_id="byo-dev-split",
        fingerprint=f"byo-dev-split-{SPLIT_SEED}",
        outputs=outputs,
        counts={"train_pairs": len(rows["train"]), "heldout_pairs": len(rows["heldout"])},
        timings=Timings(started_at=now, finished_at=now, seconds=0.0),
        notes=["judged dev pairs of the training part of the query split (bring-your-own pairs)"],
        stats=QuerygenStats(provider="user-pairs", train_pairs=len(rows["train"]), heldout_pairs=len(rows["heldout"])),
    )
    (folder / "manifest.json").write_text(manifest.model_dump_json(indent=2))
    return run_dir


def link(target: Path, at: Path) -> None:
    at.parent.mkdir(parents=True, exist_ok=True)
    if not at.exists():
        at.symlink_to(target.resolve(), target_is_directory=True)


def load_extracted_corpus(run_dir: Path) -> dict[str, str]:
    from osft.common.corpus import document_text
    from osft.common.jsonl import read_jsonl

    manifest = json.loads((run_dir / "extract" / "manifest.json").read_text())
    corpus = {}
    for shard in manifest["stats"]["shards"]:
        for doc in read_jsonl(run_dir / "extract" / shard):
            corpus[doc["id"]] = document_text(doc)
    return corpus


def scoring_corpus(corpus: dict[str, str], relevant: dict[str, set[str]], size: int) -> dict[str, str]:
    """Every judged document plus seeded random others up to ``size`` (0 or less: the whole corpus).

    Encoding the whole corpus once per model is what a 2-core machine cannot afford per grid point;
    a fixed subset keeps base vs tuned comparable (absolute scores are higher than on the full corpus).
    """
    if size <= 0 or size >= len(corpus):
        return corpus
    judged = {d for docs in relevant.values() for d in docs if d in corpus}
    others = sorted(set(corpus) - judged)
    picked = judged | set(random.Random(SPLIT_SEED).sample(others, max(0, size - len(judged))))
    return {doc_id: text for doc_id, text in corpus.items() if doc_id in picked}


# ----------------------------------------------------------------------------- scoring


class Scorer:
    """nDCG@10 / MRR@10 / Recall@100 of a model on named query sets, encoding the corpus once per model."""

    def __init__(self, corpus: dict[str, str], sets: dict[str, tuple[dict[str, str], dict[str, set[str]]]]):
        self.corpus = corpus
        self.sets = sets

    def score(self, model: Any) -> tuple[dict[str, dict[str, float]], float]:
        from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

        clock = time.perf_counter()
        embeddings = model.encode_document(list(self.corpus.values()), batch_size=64, convert_to_tensor=True)
        results = {}
        for name, (queries, relevant) in self.sets.items():
            evaluator = InformationRetrievalEvaluator(
                queries=queries,
                corpus=self.corpus,
                relevant_docs=relevant,
                mrr_at_k=[10],
                ndcg_at_k=[10],
                accuracy_at_k=[1],
                precision_recall_at_k=[10, 100],
                map_at_k=[100],
                batch_size=64,
                name=name,
                write_csv=False,
            )
            raw = evaluator(model, corpus_embeddings=embeddings)
            results[name] = {
                metric: round(float(raw[f"{name}_cosine_{metric}"]), 5)
                for metric in ("ndcg@10", "mrr@10", "recall@100")
            }
        return results, time.perf_counter() - clock


def load_model(path_or_id: str, max_len: int) -> Any:
    from osft.trainer.models import load_sentence_transformer

    return load_sentence_transformer(path_or_id, max_seq_length=max_len, device="cpu")


def base_scores(out: Path, scorer: Scorer, max_len: int) -> dict[str, dict[str, float]]:
    cache = out / f"base-seq{max_len}-docs{len(scorer.corpus)}.json"
    if cache.exists():
        return json.loads(cache.read_text())["scores"]
    scores, seconds = scorer.score(load_model(BASE_MODEL, max_len))
    write_json(cache, {"scores": scores, "seconds": round(seconds, 1)})
    return scores


# ----------------------------------------------------------------------------- grid


def run_point(point: GridPoint, out: Path, spec: dict[str, Any], upstream: Path, scorer: Scorer) -> dict[str, Any]:
    """Train with the real train stage in a run folder sharing extract/querygen, then score."""
    from osft.common.registry import load_stage
    from osft.common.stage import run_stage
    from osft.trainer.merge import interpolate

    run_dir = out / "runs" / point.name
    link(upstream / "extract", run_dir / "extract")
    link(upstream / "querygen", run_dir / "querygen")
    spec = json.loads(json.dumps(spec))
    spec["name"] = point.name
    spec["training"].update(point.training)
    spec["model"].update(point.model)
    if point.track == "byo":
        spec["training"].pop("max_train_pairs", None)
    spec_path = write_json(run_dir / "bench-spec.json", spec)
    manifest, _ = run_stage(load_stage("train"), str(spec_path), str(run_dir))
    stats = manifest.stats
    max_len = spec["model"]["max_seq_length"]
    tuned = load_model(str(run_dir / stats.model_dir), max_len)
    scores, eval_seconds = scorer.score(tuned)
    record: dict[str, Any] = {
        "name": point.name,
        "track": point.track,
        "note": point.note,
        "max_seq_length": max_len,
        "train_pairs": stats.train_pairs,
        "steps": stats.steps,
        "hyperparameters": stats.hyperparameters,
        "train_seconds": manifest.timings.seconds,
        "train_steps_seconds": manifest.timings.steps,
        "train_notes": manifest.notes,
        "eval_seconds": round(eval_seconds, 1),
        "tuned": scores,
        "hard_negatives_requested": bool(point.training.get("hard_negatives", {}).get("enabled")),
        "hard_negatives_used": any("negative" in n.lower() for n in manifest.notes)
        or any("negative" in str(k).lower() for k in stats.hyperparameters),
        "merged": {},
    }
    if point.merge_ratios:
        base_state = {k: v.clone() for k, v in load_model(BASE_MODEL, max_len).state_dict().items()}
        tuned_state = {k: v.clone() for k, v in tuned.state_dict().items()}
        for ratio in point.merge_ratios:
            interpolate(tuned, base_state, tuned_state, ratio)
            record["merged"][str(ratio)], _ = scorer.score(tuned)
    return record


def done_points(results: Path) -> set[str]:
    """Names of the grid points already in ``results`` (the ``results.jsonl`` file)."""
    return {record["name"] for record in read_results(results.parent)}


# ----------------------------------------------------------------------------- where results go


def committed(args: argparse.Namespace) -> bool:
    """True when the raw results belong in the repository: default data and split, no ``--out``."""
    return args.out is None and args.data.resolve() == DEFAULT_DATA.resolve() and args.split == DEFAULT_SPLIT


def results_dir(args: argparse.Namespace) -> Path:
    """Folder of the raw results: ``docs/benchmarks/data/`` for the committed SciFact run, else ``--out``."""
    return COMMITTED_RESULTS if committed(args) else (args.out or DEFAULT_OUT).resolve()


def report_paths(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    """(raw results folder, folder of benchmarks.md and its plots, the recipes' results file)."""
    if committed(args):
        return COMMITTED_RESULTS, REPO / "docs", COMMITTED_RESULTS / "recipes.jsonl"
    results = results_dir(args)
    return results, results, results / "recipes" / "results.jsonl"


def read_json(path: Path, default: Any = None) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else default


def setup_conflict(results: Path, setup: dict[str, Any]) -> str | None:
    """Why results in ``results`` were measured differently from ``setup`` (None when they may share a table)."""
    if not read_results(results):
        return None
    earlier = read_json(results / "setup.json", {})
    differ = [
        f"{key} {earlier[key]} (this run: {setup[key]})"
        for key in SCORING_SETUP
        if key in earlier and key in setup and earlier[key] != setup[key]
    ]
    return ", ".join(differ) or None


# ----------------------------------------------------------------------------- throughput


def encode_throughput(out: Path, model_dir: str, texts: list[str], max_len: int) -> dict[str, Any]:
    """Documents per second: torch fp32, ONNX fp32 and dynamically quantized ONNX int8, plus int8 fidelity."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    target = out / "onnx"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    model = load_model(model_dir, max_len)
    try:
        from osft.trainer.export import export_onnx, export_onnx_int8

        _, onnx_model = export_onnx(Path(model_dir), target)
        export_onnx_int8(onnx_model, target)
        exporter = "osft.trainer.export (sentence-transformers ONNX backend + export_dynamic_quantized_onnx_model)"
    except ImportError:
        from sentence_transformers.backend import export_dynamic_quantized_onnx_model

        staging = target / ".onnx-staging"
        shutil.copytree(model_dir, staging)
        onnx_model = SentenceTransformer(str(staging), backend="onnx", device="cpu")
        onnx_model.save_pretrained(str(staging))
        export_dynamic_quantized_onnx_model(onnx_model, "avx2", str(staging), file_suffix="int8")
        exporter = "sentence-transformers export_dynamic_quantized_onnx_model"
    staging = target / ".onnx-staging"
    onnx_fp32 = SentenceTransformer(
        str(staging), backend="onnx", device="cpu", model_kwargs={"file_name": "onnx/model.onnx"}
    )
    onnx_int8 = SentenceTransformer(
        str(staging), backend="onnx", device="cpu", model_kwargs={"file_name": "onnx/model_int8.onnx"}
    )
    rows = {}
    embeddings = {}
    for name, encoder in (("torch fp32", model), ("onnx fp32", onnx_fp32), ("onnx int8", onnx_int8)):
        encoder.max_seq_length = max_len
        encoder.encode(texts[:16], batch_size=16)  # warm-up
        clock = time.perf_counter()
        embeddings[name] = encoder.encode(texts, batch_size=32, normalize_embeddings=True)
        seconds = time.perf_counter() - clock
        rows[name] = {"docs_per_second": round(len(texts) / seconds, 1), "seconds": round(seconds, 2)}
    reference = embeddings["torch fp32"]
    for name in rows:
        cos = np.sum(reference * embeddings[name], axis=1)
        rows[name]["min_cosine_to_torch"] = round(float(cos.min()), 4)
        rows[name]["mean_cosine_to_torch"] = round(float(cos.mean()), 4)
    return {
        "documents": len(texts),
        "max_seq_length": max_len,
        "exporter": exporter,
        "rows": rows,
        "threads": os.cpu_count(),
    }


# ----------------------------------------------------------------------------- report


def read_results(results: Path) -> list[dict[str, Any]]:
    """The grid points recorded in ``<results>/results.jsonl`` (none when it does not exist)."""
    path = results / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _shown(path: Path) -> str:
    """A path as the report names it: relative to the repository when inside it."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def _pct(value: float) -> str:
    return f"{value * 100:.1f}"


def _quality_rows(records: list[dict[str, Any]], set_name: str) -> list[str]:
    rows = [
        "| configuration | pairs | epochs | lr | steps | train s | nDCG@10 base → tuned (Δ) | MRR@10 base → tuned "
        "| Recall@100 base → tuned | WiSE-FT 0.5 nDCG@10 | notes |",
        "|---|---:|---:|---:|---:|---:|---|---|---|---:|---|",
    ]
    for r in records:
        base, tuned, hp = r["base"][set_name], r["tuned"][set_name], r["hyperparameters"]
        delta = (tuned["ndcg@10"] - base["ndcg@10"]) * 100
        merged = r.get("merged", {}).get("0.5", {}).get(set_name, {}).get("ndcg@10")
        notes = [r.get("note", "")] if r.get("note") else []
        if r.get("hard_negatives_requested") and not r.get("hard_negatives_used"):
            notes.append("hard negatives requested but not reported by the trainer")
        if "merge_ratio" in str(r.get("train_notes")):
            notes.append("; ".join(n for n in r["train_notes"] if "merge" in n))
        rows.append(
            f"| {r['name']} | {r['train_pairs']:,} | {hp.get('epochs')} | {hp.get('learning_rate')} | {r['steps']} "
            f"| {r['train_seconds']:.0f} | {_pct(base['ndcg@10'])} → **{_pct(tuned['ndcg@10'])}** ({delta:+.1f}) "
            f"| {_pct(base['mrr@10'])} → {_pct(tuned['mrr@10'])} | {_pct(base['recall@100'])} → "
            f"{_pct(tuned['recall@100'])} | {_pct(merged) if merged is not None else ''} | {' '.join(notes)} |"
        )
    return rows


def _plot_quality(records: list[dict[str, Any]], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tracks = [
        ("byo", "dev-eval", "trainer with judged pairs (eval quarter)"),
        ("offline", "all-dev", "offline pipeline (all dev)"),
    ]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, (track, set_name, title) in zip(axes, tracks, strict=True):
        chosen = [r for r in records if r["track"] == track]
        if not chosen:
            ax.set_visible(False)
            continue
        names = [r["name"] for r in chosen]
        base = [r["base"][set_name]["ndcg@10"] * 100 for r in chosen]
        tuned = [r["tuned"][set_name]["ndcg@10"] * 100 for r in chosen]
        xs = range(len(names))
        ax.bar([x - 0.2 for x in xs], base, width=0.4, label="base", color="#999999")
        ax.bar([x + 0.2 for x in xs], tuned, width=0.4, label="tuned", color="#1f77b4")
        ax.set_xticks(list(xs), names, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(min(base + tuned) - 5, max(base + tuned) + 3)
        ax.set_ylabel("nDCG@10 (%)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)


def _plot_throughput(throughput: dict[str, Any], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(throughput["rows"])
    values = [throughput["rows"][n]["docs_per_second"] for n in names]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(names, values, color=["#999999", "#1f77b4", "#2ca02c"][: len(names)])
    ax.set_ylabel("documents / second")
    ax.set_title(f"encode throughput, {throughput['documents']} docs, seq {throughput['max_seq_length']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)


def _defaults_rows() -> list[str]:
    from osft.common.training_defaults import DEFAULTS_BY_PAIRS

    rows = ["| training pairs up to | epochs | learning rate |", "|---:|---:|---:|"]
    rows += [f"| {bound:,} | {epochs:g} | {rate:g} |" for bound, epochs, rate in DEFAULTS_BY_PAIRS]
    return rows


class NoResultsError(Exception):
    """Nothing to report: writing the page would drop every table."""


def write_report(results: Path, docs: Path, recipes: Path) -> Path:
    """Rewrite ``<docs>/benchmarks.md`` and ``<docs>/benchmarks/*.png`` from the raw results in ``results``
    (and the recipes' ``recipes`` file); raises ``NoResultsError`` instead of writing an empty page."""
    records = read_results(results)
    recipe_lines = _recipe_lines(recipes)
    if not records and not recipe_lines:
        raise NoResultsError(
            f"no benchmark results in {_shown(results / 'results.jsonl')} nor {_shown(recipes)}: "
            f"refusing to rewrite {_shown(docs / 'benchmarks.md')} without them "
            "(run the benchmark first, or give the --data/--split/--out of the run to report)"
        )
    setup = read_json(results / "setup.json", {})
    stage_seconds = read_json(results / "stage-seconds.json", {})
    throughput = read_json(results / "throughput.json")
    figures = docs / "benchmarks"
    figures.mkdir(parents=True, exist_ok=True)
    if records:
        _plot_quality(records, figures / "bench-quality.png")
    if throughput:
        _plot_throughput(throughput, figures / "bench-throughput.png")
    byo = [r for r in records if r["track"] == "byo"]
    offline = [r for r in records if r["track"] == "offline"]
    lines = [
        "# Benchmarks",
        "",
        "Written by `scripts/bench.py` (`make bench`); rerun `scripts/bench.py --report` to rewrite this page from",
        f"the raw results in `{_shown(results)}/`. Every number is from this repository's pipeline stages on this machine.",
        "",
        "## Setup",
        "",
        f"- data: `{setup.get('data', '?')}`, split `{setup.get('split', '?')}` ({setup.get('queries', '?')} judged "
        f"queries, {setup.get('corpus', '?')} documents); model `{BASE_MODEL}` (the packaged weights), CPU only.",
        f"- machine: {setup.get('cores', os.cpu_count())} cores shared with other jobs (load average was often 5-15 while this ran), so",
        "  wall-clock times are upper bounds; the ratios between configurations are what to read.",
        "- offline track: extract → offline querygen (all styles, 2 queries/doc) → train, with training pairs",
        f"  **subsampled to {setup.get('max_pairs', '?'):,}** (`training.max_train_pairs`) to fit the machine; scored on",
        "  all dev queries.",
        f"- bring-your-own-pairs track: the dev queries split by query (seed {SPLIT_SEED}), "
        f"{setup.get('train_queries', '?')} for training (10% of them held out as validation pairs) and "
        f"{setup.get('eval_queries', '?')} for evaluation; the model never sees the evaluation queries.",
        f"- batch 32, max_seq_length {setup.get('max_seq_length', '?')}; MNRL loss; no-duplicates batch sampler.",
        f"- scored against **{setup.get('corpus', '?'):,} documents**: every document judged relevant to a dev query plus",
        "  seeded random others (`--eval-docs`). Encoding the whole corpus once per model does not fit a shared 2-core",
        "  machine per grid point; absolute scores are therefore higher than full-corpus scores (e.g. the issue's 64.5),",
        "  and base vs tuned on the same documents is the comparison to read.",
        "- WiSE-FT 0.5 column: base and tuned weights averaged after training (`osft.trainer.merge.interpolate`),",
        "  with the ratio fixed at 0.5 (not tuned on these queries). The trainer's own merge (`training.merge`) picks",
        "  the ratio on held-out pairs instead; it was not benchmarked here (each ratio costs another encode).",
        "",
        "## 1. The trainer with good queries (judged pairs, scored on unseen judged queries)",
        "",
        *(_quality_rows(byo, "dev-eval") if byo else ["(not run yet)"]),
        "",
        "## 2. The offline pipeline (no LLM, CPU), scored on all dev queries",
        "",
        *(_quality_rows(offline, "all-dev") if offline else ["(not run yet)"]),
        "",
        "![nDCG@10 base vs tuned](benchmarks/bench-quality.png)",
        "",
        "## 3. Recipes scored on the whole corpus",
        "",
        "Written by `scripts/bench_offline_recipes.py` (its docstring lists the recipe keys): the faster loop used to",
        "choose the offline defaults. Same model and packaged weights, trained with sentence-transformers directly",
        "(not through the stages), scored on **all 5,183 documents** at max_seq_length 256, so these numbers compare",
        "with published ones (all-MiniLM-L6-v2: 64.5 on the test queries; 66.02 on these dev queries). Batch 32,",
        "MNRL unless stated; *hybrid* = base-model cosine + 0.4 × max-normalized stemmed BM25, which scores 73.5",
        "nDCG@10 on the dev queries (BM25 alone 69.6). Rows marked *prototype* in `results.jsonl` ran in the",
        "script's first draft (same data, model, scoring and base score); their negatives came from the hybrid",
        "ranks 1-30.",
        "",
        *(recipe_lines or ["(not run yet)"]),
        "",
        "## Time per stage",
        "",
        "| stage | seconds | what |",
        "|---|---:|---|",
    ]
    for name, stages in stage_seconds.items():
        for stage, seconds in stages.items():
            if isinstance(seconds, int | float):  # not a marker such as ``reconstructed_from``
                lines.append(f"| {stage} | {seconds:.1f} | {name} |")
    for r in records:
        steps = ", ".join(f"{k} {v:.0f}s" for k, v in r.get("train_steps_seconds", {}).items())
        lines.append(
            f"| train | {r['train_seconds']:.0f} | {r['name']}: {r['train_pairs']:,} pairs, {r['steps']} steps"
            f"{'; ' + steps if steps else ''} |"
        )
        lines.append(
            f"| evaluate | {r['eval_seconds']:.0f} | {r['name']}: corpus + queries encoded with the tuned model |"
        )
    lines += ["", "## Encode throughput: torch fp32 vs ONNX fp32 vs ONNX int8", ""]
    if throughput:
        lines += [
            f"{throughput['documents']} corpus documents, max_seq_length {throughput['max_seq_length']}, batch 32, "
            f"exported with {throughput['exporter']}; model `{throughput.get('model', 'tuned')}` (same architecture"
            " as the tuned models). Measured while the machine's load average was ~12 on 2 cores: read the ratios.",
            "",
            "| backend | docs/s | seconds | min cosine to torch | mean cosine to torch |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, row in throughput["rows"].items():
            lines.append(
                f"| {name} | {row['docs_per_second']} | {row['seconds']} | {row['min_cosine_to_torch']} "
                f"| {row['mean_cosine_to_torch']} |"
            )
        lines += ["", "![encode throughput](benchmarks/bench-throughput.png)"]
    else:
        lines.append("(not measured yet)")
    lines += [
        "",
        "## Smart defaults (`DEFAULTS_BY_PAIRS` in `shared/osft/common/training_defaults.py`)",
        "",
        *_defaults_rows(),
        "",
        *FINDINGS,
        "",
        "## Commands",
        "",
        "```bash",
        "make bench                                   # = .venv/bin/python scripts/bench.py --data ../shared/data/scifact",
        ".venv/bin/python scripts/bench.py --data /path/to/beir/nfcorpus --split test   # any BEIR-layout folder",
        ".venv/bin/python scripts/bench.py --download nfcorpus --data data/beir/nfcorpus  # needs internet",
        ".venv/bin/python scripts/bench.py --only byo-ep3-lr2e-5 off-ep1-lr2e-5        # some grid points",
        ".venv/bin/python scripts/bench.py --report                                     # rewrite this page",
        "```",
        "",
        f"Results accumulate in `{_shown(results)}/results.jsonl` (one line per grid point; a rerun skips points already",
        "there), run folders in `bench-out/runs/<point>/` (their `extract`/`querygen` are symlinks to",
        "`bench-out/shared/`, produced once by the real stages). Other data, another split or `--out DIR` keep",
        "their results and report in `bench-out/` or DIR instead (`scripts/bench.py`'s docstring).",
    ]
    page = docs / "benchmarks.md"
    page.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return page


def _recipe_lines(recipes: Path) -> list[str]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_offline_recipes import report_lines

    return report_lines(recipes)


# Interpretation, written from the results above (update with the numbers when rerunning).
FINDINGS: list[str] = [
    "Evidence for the table. Judged pairs (sections 1 and 3): 615 judged SciFact pairs, 3 epochs at 2e-5 beat",
    "1 epoch at 5e-5 (+2.4 vs +2.0 on the 2,000-document set); 684 judged pairs, 3 epochs at 2e-5, scored on the",
    "whole corpus: +2.9. Offline pairs (section 3, whole corpus): 1,000 pairs for one epoch at 2e-5 moved nDCG@10",
    "by +0.36 to +0.54 depending on the style mix; 3,000 cut-cloze pairs by -0.56, 1,000 at 5e-5 by -0.15; the",
    "session-1 run of `examples/scifact.json` (2,000 offline pairs, batch 64) by -0.35. Hence the offline rule in",
    "`training_defaults.py`: at most `OFFLINE_PAIRS_CAP` = 1,000 offline pairs, `OFFLINE_EPOCHS` = 1 (the spec can override",
    "both). The rows above 10,000 pairs (1e-5, 5e-6) were not tested here (no GPU, no LLM pairs at that scale)",
    "and keep their conservative values.",
    "",
    "## Findings",
    "",
    "- **Trainer with good queries** (the bring-your-own-pairs path): 684 judged pairs from 607 dev queries,",
    "  plain MNRL, 3 epochs, 2e-5, batch 32, seq 256, scored on the 202 held-out dev queries over the whole",
    "  corpus: nDCG@10 62.7 → 65.6 (+2.9), in line with the issue's reference (64.5 → 67.8, +3.3 with 919 pairs",
    "  on the test queries). With one **hybrid hard negative** per pair (BM25 + base-model ranking, ranks 1-29,",
    "  seeded random draw, the query's relevant documents excluded) the same pairs gave 62.7 → **68.3 (+5.6)**,",
    "  clearly above the reference. That is now the trainer's default for judged pairs",
    "  (`training.hard_negatives`: `candidates: hybrid`, on when `source.type` is `pairs`).",
    "  Through the product's own train stage (`scripts/bench.py --only byo-ep3-lr2e-5-hn --eval-docs 0",
    "  --max-seq-length 256 --out /tmp/bench-full`: judged pairs as a `user-pairs` querygen folder, hard",
    "  negatives from the default, 615 pairs as 10% of the training queries are kept for validation): 62.7 →",
    "  **67.4 (+4.7)** on the same 202 held-out queries over the whole corpus; train stage 1,197 s (mining 300 s)",
    "  while CI shared the 2 cores.",
    "- **Where a held-out gain lands** (session 16; the second table of section 3). A split by query shares",
    "  documents: 120 of the 202 held-out queries have a relevant document that a training query also has.",
    "  Scored apart, the gains sit mostly on those 120: plain MNRL on judged pairs +4.97 there and -0.11 on the",
    "  other 82; with hybrid negatives +8.86 and +0.78; the query log's surest half +2.95 and +1.22 (each re-run",
    "  for the split and equal to its earlier figure to the hundredth). A square linear map trained alone after the",
    '  frozen base model (`loss: "linear-map"`: every pair against all 5,183 documents at once, 100 Adam steps,',
    "  9 s) shows the mechanism bare: +12.23 on the held-out quarter, made of **+25.95** on seen documents and",
    "  **-7.85** on the others. It learns where the judged documents lie and pushes the rest away. So judged",
    "  pairs mostly teach the model their own documents: worth having when real traffic keeps asking about the",
    "  same documents, and under a point on documents no training query touched. Offline pseudo-queries reach",
    "  every document, so the same mechanism is open to them, but a linear map on the 5,182 `cloze2` sentences",
    "  gave +0.38 (on the query log's surest half: +0.08): queries unlike the real ones put each document's",
    "  region in the wrong place. The product's own gate measures the harder case: querygen holds out by",
    "  document and evaluate leaves logged queries out. (`bench_offline_recipes.py prepare --judged`, then",
    '  `run \'{"name": "byo-linear-map", "queries": "judged", "loss": "linear-map", "lr": 0.001, "steps": 100}\'`;',
    "  every held-out-quarter recipe now records `unseen_documents`.)",
    "- **Passage vectors** (session 17; `bench_offline_recipes.py passages`, `data/passage-vectors.jsonl`). Not a",
    '  training recipe: an index that keeps a vector per sentence (OpenSearch\'s `text_chunking` on `"."`, 61,220',
    "  passages) beside each document's, a document scored by its own vector plus its best passage's. With the",
    "  *base* model, on all 809 dev queries: nDCG@10 66.02 → **69.60 (+3.58)**, MRR@10 62.61 → 66.62; in the",
    "  hybrid with BM25 (three clauses, weights 0.5/0.25/0.25) 71.95 → 72.80. SciFact's claims restate one finding",
    "  of their abstract, and one vector for the abstract blurs it. The offline-tuned `crossdoc-c25-1k` (66.52 alone)",
    "  gives 69.31 with passage vectors, below the base model's 69.60: the two do not add up. So the largest",
    "  label-free gain measured here comes from how documents are indexed, not from fine-tuning, and it does not",
    "  count toward the offline goal below, which is about the model. Evaluate scores it on request",
    "  (`evaluation.passage_vectors`, docs/trainer.md); the register stage does not build that index yet.",
    "- **Offline pipeline**: the +3 goal was **not reached**. The best offline recipe measured +0.54 nDCG@10",
    "  on all 809 dev queries (1,000 cut-cloze pairs, one hybrid hard negative each); every MNRL recipe landed",
    "  within -0.8..+0.6 of the base, which is inside the noise of 809 queries. What did not help:",
    "  - *distilling a BM25+dense hybrid teacher* with MarginMSE: -4.1 (2,000 pairs) and -7.5 (margins × 0.3),",
    "    although the teacher itself scores 73.5 on the dev queries against the student's 66.0. On pseudo-queries",
    "    copied from their documents the teacher's margins are mostly BM25's exact-match bonus, and matching",
    "    absolute margins with a cosine student pulls its score scale apart;",
    "  - *more pairs or a higher rate*: 3,000 pairs -0.56, lr 5e-5 -0.15 (vs +0.54 at 1,000 and 2e-5);",
    "  - *queries the base model gets wrong and the hybrid gets right* (2,778 of 10,366): -0.78. Those are",
    "    mostly ambiguous keyword and question queries, so the selection concentrates noise.",
    "  What helped a little: *cutting the cloze sentence out of its document* (now how the `cloze` style trains):",
    "  +0.54 with 1,000 pairs, where leaving it in cost the issue's run -2.6. Drawn again with two other seeds",
    "  (`seed` 14 and 15: another 1,000 pairs and negatives, rows `cloze-cut-1k-seed*`), the same recipe gave",
    "  -0.06 and -0.28: a mean of +0.07 over three draws. The best offline recipe is therefore no gain at all,",
    "  and differences of half a point between offline recipes here are draws, not findings.",
    "  Why: the base model already ranks the source document first for most offline queries (they share its",
    "  words), so they carry little it does not know. Reaching +3 needs queries that paraphrase, i.e. an LLM",
    "  generator (`bedrock`, `bedrock-batch`, `openai`), or a stronger teacher than BM25+dense (a cross-encoder,",
    "  which the trainer supports but which could not be downloaded here).",
    "  Session 3 tested the two remaining explanations, and neither moved the result out of that band:",
    "  - *Truncation*: 71% of SciFact documents are longer than 256 tokens (median 316, 9% over 512), so the",
    "    findings at the end of an abstract are cut off. The base scores 63.9 / 66.0 / 66.2 / 65.9 at seq 128 / 256",
    "    / 384 / 512, and 1,000 cut-cloze pairs trained and scored at 512 gave +0.56. That is the same as at 128,",
    "    so the longer context adds nothing the model can learn from these pairs.",
    "  - *A teacher that is certain for the wrong reason*: scored against documents with the query sentence cut",
    "    out, the hybrid teacher ranks the source first for 72.4% of cloze queries and the base model for 58.3%,",
    "    so it does carry signal. KL distillation over the cut positive and 3 hybrid negatives (temperature",
    "    0.05) gave +0.12 alone, +0.18 beside MNRL and +0.40 beside MNRL with the KL weighted ×400, which undoes",
    "    the T² damping of `DistillKLDivLoss`. That is no better than MNRL alone.",
    "  *TSDAE before contrastive training* (section 3, rows `tsdae-*`): 1,000 steps of",
    "  `DenoisingAutoEncoderLoss` on 8,000 of the corpus's sentences (60% of their words deleted, batch 8, lr",
    "  3e-5, decoder tied to the encoder; 12 minutes) took the base from 66.02 to **42.88 (-23.1)**, and 1,000",
    "  cut-cloze pairs trained after it recovered only to 60.41 (-5.61), against +0.54 for the same pairs on the",
    "  base. Reconstructing a sentence from one vector asks for another geometry than ranking does, and the",
    "  decoder's untrained prediction head (the packaged MiniLM has none; the loss started at 10.5, about ln of",
    "  the vocabulary) pulls the encoder hard before it learns anything. TSDAE suits a model not yet trained for",
    "  retrieval, followed by a large supervised set (as in GPL's recipe); neither fits an already tuned model on",
    "  2 cores.",
    "  *Training-free post-processing* of the base embeddings, fitted on the corpus and applied to queries and",
    "  documents alike (`scripts/bench_embedding_postprocessing.py`), only hurt: centering on the corpus mean",
    "  -1.09 (half of it -0.56), PCA whitening -3.74 / -3.03 / -6.08 at 384 / 256 / 128 dimensions, removing the",
    "  top 1 / 2 / 5 principal directions -1.72 / -1.70 / -2.24. A contrastively trained model's geometry is",
    "  already what its similarity needs.",
    "  *Sentences of one abstract about another* (session 12, rows `crossdoc-*`): SciFact's claims were written",
    "  from citing papers' sentences about the cited abstract, so each cloze sentence was paired with the hybrid's",
    "  first hit among the *other* documents (the teacher labels a paraphrase, not an exact match), keeping the",
    "  sentences whose first hit leads the second by most. The surest 25% (1,000 pairs, one hybrid negative)",
    "  gave +0.50 and the surest 50% (2,000 pairs) +0.20: inside the same noise band as every other offline",
    "  recipe. The pairs read as related papers (same gene, same cohort), which is topic, not the finding a",
    "  claim asks about. (`bench_offline_recipes.py prepare --styles '{\"cloze\": 1}' --name cloze2 --queries-per-doc 2`, then",
    '  `run \'{"name": "crossdoc-c25-1k", "queries": "cloze2", "crossdoc": true, "confident": 0.25, "n": 1000,',
    '  "train_seq": 128, "negatives": true}\'`; 5,182 sentences, train 288 s.)',
    "  *Rare terms the base model overlooks* (session 13, row `anchored-cut-1k-dense-neg`): of the 809 dev",
    "  queries the base model ranks a relevant document in its first 10 for 79.6% and BM25 for 83.3%; 31 queries",
    "  the base model misses (rank 10 or worse) BM25 ranks in its first 3, against 23 the other way round. They",
    "  hinge on a rare name the base model's embedding drowns in the claim's general words (DESMOND, Wdr5 and",
    "  Kat8, scFv, p75 NTR: the base model ranks the relevant document 67th to 1,281st, BM25 first or second).",
    "  The recipe aimed at that: 1,000 cloze sentences holding a term found in at most 3 documents that the",
    "  rest of their document repeats (2,276 of the 5,182 qualify), cut out of it, each with a negative from",
    "  the base model's first 30 documents that hold none of those terms, so the pair teaches the rare term's",
    "  weight where hybrid negatives, which share it, teach the opposite. It gave -0.10: a targeted selection",
    "  of offline pairs does not move the model either.",
    '  (`run \'{"name": "anchored-cut-1k-dense-neg", "queries": "cloze2", "anchored": true, "n": 1000,',
    '  "cut_query": true, "train_seq": 128, "negatives": true, "negative_source": "dense-without-anchors"}\'`;',
    "  train 514 s while another job shared the cores.)",
    "  The product's own run, `osft run examples/scifact.json` (defaults: 1,000 of the 9,847 offline pairs, one",
    "  epoch, one hybrid hard negative each, batch 32, seq 256), end to end in 12.6 minutes on 2 cores (extract",
    "  0.6 s, querygen 2.2 s, train 574 s of which mining 224 s, evaluate 178 s): nDCG@10 66.02 → 65.83 (-0.20),",
    "  Recall@100 93.2 → 91.7; the gate rejected the model and kept the base, as it should. Evaluate scores the",
    "  base model with the corpus embeddings mining made (5.4 s instead of about 3 minutes; it took 369 s in all",
    "  before, 16.5 minutes end to end). Re-run after mining began to exclude the document each positive came",
    "  from (session 8; it matters for cut-cloze positives and query logs, and the default styles have no",
    "  cloze): the same 66.02 → 65.83 to the hundredth, in 11.6 minutes (train 506 s of which mining 188 s,",
    "  evaluate 189 s), so the run is reproducible end to end.",
    "- **Keyword baselines** (the evaluate stage's, same run, judged queries, nDCG@10): BM25 with OpenSearch's",
    "  default analyzer 66.78, a hybrid query (min_max, arithmetic mean, equal weights) of BM25 and the base model",
    "  71.95, of BM25 and the offline-tuned model 71.74. On this corpus a hybrid query gains about 6 points and",
    "  offline fine-tuning none. BM25 scores 99.4 on the synthetic held-out queries: offline queries repeat their",
    "  document's words.",
    "- **A query log** (`querygen.query_log`: real queries, no judgements; section 3, rows `log-*`). The 607",
    "  training-part dev queries served as the log, each paired with the mining hybrid's first hit (right for",
    "  62% of them), and scoring was on the other 202. Keeping the share whose first hit leads the second by",
    "  most, 3 epochs at 2e-5 with one hybrid negative: all 607 pairs +1.71 nDCG@10, the surest 75% +1.46, the",
    "  surest 50% (87% right) **+2.25**, the surest 25% (97% right, 152 pairs) +1.09; the surest 50% beside 1,000",
    "  cut-cloze pairs for one epoch +1.57. Every share helped, and the half is the default `keep_fraction`.",
    "  Through the product before the log-led default (`scripts/bench_offline_recipes.py query-log`, then",
    "  `osft run examples/scifact-query-log.json`: 1,000 offline pairs plus the log pairs, one epoch, hybrid negatives),",
    "  scored on the 201 dev queries not in the log (evaluate leaves the 608 logged ones out): 62.61 → 64.41",
    "  (+1.80) with 303 log pairs; after the train stage began to leave out pairs whose first hit is a held-out",
    "  document (12 of them), 62.61 → 63.02 (+0.41), and with `training.seed` 14, 62.61 → 62.81 (+0.20). The gate",
    "  accepted all three. Runs that differ only in details spread by 1.6 points, so this figure is within",
    "  run-to-run noise on 201 queries. The five recipes above, all positive, are the better evidence of a small",
    "  real gain; four of them train on the log alone for 3 epochs, where the product then mixed it with 1,000",
    "  offline pairs for one epoch (the offline rule). The product trained on the log (nearly) alone agrees with them:",
    "  `querygen.max_docs: 20` (40 offline pairs), `heldout_fraction: 0`, `training.epochs: 3`, so 303 log pairs",
    "  and 40 offline ones for 33 steps: 62.61 → 64.55 (+1.94), 65.25 (+2.64) and 64.58 (+1.96) with",
    "  `training.seed` 13, 14 and 15 (mean +2.18; MRR@10 +2.05, +3.27, +2.46; recall@100 -1.41, -0.91, -0.41),",
    "  gate accepted each; end to end 12 to 23 minutes (train 546 to 851 s while other jobs shared the cores).",
    "  Against +1.80, +0.41 and +0.20 beside 1,000 offline pairs for one epoch, this is now the default: with a",
    "  query log the train stage keeps one offline pair per 8 log pairs and takes its epochs from the table",
    "  (`shared/osft/common/training_defaults.py`). `osft run examples/scifact-query-log.json` with that default",
    "  (291 log pairs after 12 led to held-out documents, 37 offline pairs, 3 epochs, 33 steps): 62.61 → 63.95",
    "  (+1.33), gate accepted, 15.3 minutes end to end (train 681 s, evaluate 235 s, tests sharing the cores);",
    "  over the four log-led runs the mean is +1.97, against +0.80 for the three mixed ones. Either way the gain",
    "  is below the +3 goal and",
    "  below judged pairs (+5.6): even the surest",
    "  half holds 13% wrong first hits, and the model learns those too. A hybrid query of BM25 and the tuned model",
    "  scores about 69 on the same queries.",
    "- **A small LLM on the same 2 cores** (`querygen.provider: openai` against the llama.cpp server of",
    "  `llama-cpp-python[server]`, built from source here, serving Qwen2.5-Coder-0.5B-Instruct as a Q4_K_M GGUF;",
    "  `examples/scifact-small-llm.json`). With the built-in prompt and few-shot SciFact claims, the model handed",
    "  the examples back as its own queries for 35 of its first ~100 (now dropped as `repeats_example`) and",
    "  copied a long span of the abstract for 31 (7-10 s per document, with tests sharing the cores). A short prompt that asks for",
    "  claims and puts the document last (`examples/prompts-scifact-small-model/`, so the server reuses the",
    "  136-token instruction prefix) ran at 4.2 s per document: 500 of the 5,183 documents (`querygen.max_docs`)",
    "  in 35 minutes, 629 queries, of which 303 copied 10 or more words of the abstract, 37 were too long and 12",
    "  too short; 8 replies were not JSON. The 262 training pairs (3 epochs at 2e-5, one hybrid negative each,",
    "  train 481 s, evaluate 184 s) moved nDCG@10 on all 809 dev queries from 66.02 to 66.24 (+0.22, inside the",
    "  noise; recall@100 +0.37). The kept queries read like SciFact claims, but a model this small mostly",
    "  restates the abstract's own sentences, so they teach the base model as little as the offline generator's.",
    "  A 7B-class instruct model is what the LLM path is built for; on these 2 cores it would take about 15× as",
    "  long per document.",
    "- **Encode throughput**: ONNX fp32 encoded about 2.2× faster than torch fp32 and dynamically quantized",
    "  ONNX int8 about 2.7×, with int8 embeddings at a minimum cosine of 0.987 to fp32 (above the export check's",
    "  0.98 default).",
    "- **Training memory on CPU** (`scripts/bench_train_memory.py`, all-MiniLM-L6-v2, one MNRL step in train mode):",
    "  activations took 10.8 GiB for 96 texts of 256 tokens, 13.1 for 129 of 256, 7.5 for 24 of 512 and 15.9 for",
    "  48 of 512. The trainer's estimate is within 7% of each. 96 texts of 512 (batch 32 with a hard negative, ~30",
    "  GiB) were killed by the kernel on the 24 GiB machine. The trainer now switches to cached-mnrl past 70% of",
    "  the memory; with mini-batches of 8 that batch trained in 5.4 GB at the same ~40 s per step.",
    "- **Time**: on the quiet machine a training step of 32 pairs at seq 128 took 4-5 s (8-10 s at seq 256, or with",
    "  a hard negative); encoding the 5,183 SciFact documents at seq 256 took about 3 minutes per model.",
]


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv); default ../shared/data/scifact",
    )
    parser.add_argument("--split", default=DEFAULT_SPLIT, help="qrels split to tune and score on")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="run folders and caches (default bench-out/); when given, or with other --data/--split, the raw "
        "results and the report go there too instead of docs/benchmarks/data/ and docs/benchmarks.md",
    )
    parser.add_argument("--grid", choices=sorted(GRIDS), default="quick")
    parser.add_argument("--only", nargs="*", default=None, help="run only these grid points")
    parser.add_argument("--max-pairs", type=int, default=1000, help="subsample offline training pairs to this many")
    parser.add_argument("--max-seq-length", type=int, default=128, help="max_seq_length for training and scoring")
    parser.add_argument(
        "--eval-docs",
        type=int,
        default=2000,
        help="score against the judged documents plus random other documents up to this many (0: whole corpus)",
    )
    parser.add_argument("--throughput-docs", type=int, default=256)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument(
        "--throughput-only", action="store_true", help="only measure encode throughput (on the base model), then stop"
    )
    parser.add_argument(
        "--report", action="store_true", help="only rewrite docs/benchmarks.md (or --out's) and the plots"
    )
    parser.add_argument("--download", metavar="DATASET", help="download a BEIR dataset into --data's parent first")
    args = parser.parse_args(argv)

    from osft.common.logging import configure_logging

    configure_logging()
    out = (args.out or DEFAULT_OUT).resolve()
    if args.report:
        return report(*report_paths(args))
    if args.throughput_only:
        from osft.trainer.models import resolve_model_source

        offline_run = out / "shared" / "offline-default"
        texts = list(load_extracted_corpus(offline_run).values())[: args.throughput_docs]
        measured = encode_throughput(out / "throughput", resolve_model_source(BASE_MODEL), texts, args.max_seq_length)
        write_json(results_dir(args) / "throughput.json", {**measured, "model": BASE_MODEL})
        return 0
    if args.download:
        from osft.common.beir_download import download_beir

        args.data = download_beir(args.download, args.data.parent)
    data = args.data.resolve()
    if not (data / "corpus.jsonl").exists():
        print(
            f"error: {data}/corpus.jsonl not found: give a BEIR-layout folder with --data "
            "(or --download NAME on a machine with internet)",
            file=sys.stderr,
        )
        return 2
    results_folder, docs, recipes = report_paths(args)

    spec = base_spec("bench", data, args.split, args.max_pairs)
    spec["model"]["max_seq_length"] = args.max_seq_length
    offline_run, offline_seconds = prepare_offline(out, spec, None)
    queries, relevant = read_beir(data, args.split)
    train_ids, eval_ids = split_queries(queries)
    byo_run = prepare_byo(out, offline_run, queries, relevant, train_ids)
    corpus = scoring_corpus(load_extracted_corpus(offline_run), relevant, args.eval_docs)
    sets = {
        "all-dev": (queries, relevant),
        "dev-eval": ({q: queries[q] for q in eval_ids}, {q: relevant[q] for q in eval_ids}),
    }
    scorer = Scorer(corpus, sets)
    setup = {
        "data": str(data),
        "dataset": Path(data).resolve().name,
        "split": args.split,
        "queries": len(queries),
        "train_queries": len(train_ids),
        "eval_queries": len(eval_ids),
        "corpus": len(corpus),
        "max_pairs": args.max_pairs,
        "eval_docs": args.eval_docs,
        "max_seq_length": args.max_seq_length,
        "grid": args.grid,
        "cores": os.cpu_count(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    conflict = setup_conflict(results_folder, setup)
    if conflict:
        print(
            f"error: the results in {_shown(results_folder)}/ were measured with {conflict}; they would share "
            "a table with this run's. Give --out DIR to benchmark this setup into DIR.",
            file=sys.stderr,
        )
        return 2
    write_json(results_folder / "setup.json", setup)
    stage_seconds = read_json(results_folder / "stage-seconds.json", {})
    write_json(results_folder / "stage-seconds.json", {**stage_seconds, "offline-default": offline_seconds})
    results = results_folder / "results.jsonl"
    grid = [p for p in GRIDS[args.grid] if args.only is None or p.name in args.only]
    for point in grid:
        if point.name in done_points(results):
            continue
        max_len = point.model.get("max_seq_length", spec["model"]["max_seq_length"])
        base = base_scores(out, scorer, max_len)
        if point.track == "offline":
            upstream = offline_run
            if point.offline_styles is not None:
                upstream, seconds = prepare_offline(out, spec, point.offline_styles)
                stage_seconds = read_json(results_folder / "stage-seconds.json", {})
                stage_seconds[point.name] = seconds
                write_json(results_folder / "stage-seconds.json", stage_seconds)
        else:
            upstream = byo_run
        record = run_point(point, out, spec, upstream, scorer)
        record["base"] = base
        with results.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        write_report(results_folder, docs, recipes)
    if not args.skip_throughput and not (results_folder / "throughput.json").exists():
        # The best tuned model still on disk (reconstructed records have no run folder here), else the base model.
        tuned = [
            r
            for r in read_results(results_folder)
            if "all-dev" in r.get("tuned", {}) and (out / "runs" / r["name"] / "train" / "model").is_dir()
        ]
        texts = list(corpus.values())[: args.throughput_docs]
        if tuned:
            best = max(tuned, key=lambda r: r["tuned"]["all-dev"]["ndcg@10"])
            measured = encode_throughput(
                out, str(out / "runs" / best["name"] / "train" / "model"), texts, args.max_seq_length
            )
        else:
            from osft.trainer.models import resolve_model_source

            measured = {
                **encode_throughput(out, resolve_model_source(BASE_MODEL), texts, args.max_seq_length),
                "model": BASE_MODEL,
            }
        write_json(results_folder / "throughput.json", measured)
    return report(results_folder, docs, recipes)


def report(results: Path, docs: Path, recipes: Path) -> int:
    """Write the report; 2 with a message on stderr when there are no results to write it from."""
    try:
        page = write_report(results, docs, recipes)
    except NoResultsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {_shown(page)} from {_shown(results)}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
