"""The evaluate stage: base vs fine-tuned retrieval quality, and the gate that decides deployment.

Metrics: nDCG@10, MRR@10, Recall@10/100 and MAP@100, for base and tuned, with the corpus
encoded once per model, and not at all for the base model when mining left its embeddings
(``osft.trainer.base_embeddings``). With judged queries, BM25 and hybrid-query baselines are
scored beside them (``osft.trainer.keyword_baselines``), and on request an index with a vector per
passage beside each document's (``osft.trainer.passage_vectors``). ``decide`` (re-exported from
``osft.trainer.gate``) and the HTML report (``osft.trainer.html_report``) are shared with the
sparse evaluate stage.

Judged queries (BEIR layout) decide when the spec provides them; otherwise the held-out
synthetic pairs decide, and the report says so plainly: pairs from the same generator
flatter the model trained on that generator's style.
"""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from osft.common.beir import JudgedSet, read_judged_set
from osft.common.corpus import document_text, load_corpus, query_key, read_pairs
from osft.common.errors import InputDataError
from osft.common.hybrid_search import DEFAULT_KEYWORD_WEIGHT
from osft.common.manifests import EvaluateStats, StageManifest
from osft.common.passages import PASSAGE_DELIMITER
from osft.common.progress import progress_enabled
from osft.common.spec import RunSpec
from osft.common.spec.evaluation import JudgedQueries
from osft.common.stage import StageContext, StageDefinition, StageResult
from osft.common.storage import Location, is_s3, join, split_s3
from osft.trainer import base_embeddings
from osft.trainer.base_embeddings import encode_texts
from osft.trainer.base_for_deploy import base_deploy_fingerprint, base_deploy_wanted, save_base_for_deploy
from osft.trainer.gate import decide
from osft.trainer.gated_search import MODELS_ALONE, GatedSearch, deployed_search, gated_search
from osft.trainer.html_report import write_report
from osft.trainer.keyword_baselines import HYBRID_WEIGHTS, KeywordBaselines
from osft.trainer.models import apply_usage, load_sentence_transformer, model_usage
from osft.trainer.passage_vectors import PassageIndex, passage_metrics
from osft.trainer.progress_log import metric_fields
from osft.trainer.query_log import read_log_rows

METRICS_FILE = "metrics.json"
GATE_FILE = "gate.json"
REPORTED = {"ndcg@10", "mrr@10", "recall@10", "recall@100", "map@100"}
CUTOFFS = {
    "mrr_at_k": [10],
    "ndcg_at_k": [10],
    "accuracy_at_k": [1, 10],
    "precision_recall_at_k": [10, 100],
    "map_at_k": [100],
}
"""The evaluators' cut-offs: the ones ``REPORTED`` needs, and accuracy@1/10 for the log."""


def synthetic_set(ctx: StageContext, corpus_ids: set[str]) -> JudgedSet:
    pairs = [p for p in read_pairs(ctx.input_path("querygen/heldout.jsonl")) if p["doc_id"] in corpus_ids]
    pairs = random.Random(13).sample(pairs, min(len(pairs), ctx.spec.evaluation.max_queries))
    return JudgedSet(
        queries={p["query_id"]: p["query"] for p in pairs},
        relevant={p["query_id"]: {p["doc_id"]} for p in pairs},
    )


def judged_folder(ctx: StageContext, judged: JudgedQueries) -> Path:
    """The judged BEIR folder as a local path. From S3 (what a SageMaker job is given) only the split's
    qrels and the queries file are downloaded, not the corpus a BEIR folder also holds."""
    folder = ctx.resolve(judged.path)
    if not is_s3(folder):
        return Path(folder)
    cache = Path(tempfile.gettempdir()) / "osft-cache" / "judged"
    for relative in (f"qrels/{judged.split}.tsv", judged.queries_file):
        Location(join(folder, relative)).fetch(cache)
    bucket, key = split_s3(folder)
    return cache / bucket / key.strip("/")


def judged_set(ctx: StageContext, corpus_ids: set[str]) -> tuple[JudgedSet, int]:
    """The spec's judged queries restricted to documents in the corpus; also how many were dropped."""
    judged = ctx.spec.evaluation.judged
    assert judged is not None
    full = read_judged_set(judged_folder(ctx, judged), judged.split, judged.queries_file)
    relevant = {q: docs & corpus_ids for q, docs in full.relevant.items()}
    kept = {q: docs for q, docs in relevant.items() if docs}
    if not kept:
        raise InputDataError(
            "none of the judged queries has a relevant document in the extracted corpus",
            path=ctx.resolve(judged.path),
            hint="qrels document ids must be ids of the corpus (check source.fields.id and sampling.max_docs)",
        )
    return JudgedSet({q: full.queries[q] for q in kept}, kept), len(full.queries) - len(kept)


class RetrievalScorer:
    """Scores models on several query sets, encoding the corpus at most once per model."""

    def __init__(self, corpus: dict[str, str], query_prefix: str, doc_prefix: str, batch_size: int) -> None:
        self.corpus = {doc_id: doc_prefix + text for doc_id, text in corpus.items()}
        self.query_prefix = query_prefix
        self.batch_size = batch_size

    @property
    def texts(self) -> list[str]:
        return list(self.corpus.values())

    def embed_corpus(self, model, show_progress: bool, stored=None):
        """The corpus embeddings as a tensor on the model's device: ``stored`` (numpy) when given, else encoded."""
        import torch

        if stored is None:
            stored = encode_texts(model, self.texts, batch_size=self.batch_size, show_progress=show_progress)
        return torch.from_numpy(stored).to(model.device)

    def score(self, model, sets: dict[str, JudgedSet], corpus_embeddings) -> dict[str, dict[str, float]]:
        """Metrics per query set, with the corpus embeddings from ``embed_corpus``."""
        from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

        results = {}
        for name, judged in sets.items():
            evaluator = InformationRetrievalEvaluator(
                queries=judged.queries,
                corpus=self.corpus,
                relevant_docs=judged.relevant,
                **CUTOFFS,
                batch_size=self.batch_size,
                name=name,
                write_csv=False,
                query_prompt=self.query_prefix,  # "" too: no prompt from the model's configuration
            )
            raw = evaluator(model, corpus_embeddings=corpus_embeddings)
            results[name] = _plain_metrics(raw, name)
        return results


def _plain_metrics(raw: dict[str, float], name: str) -> dict[str, float]:
    """``{name}_cosine_ndcg@10`` → ``ndcg@10`` for the metrics we report."""
    plain = {}
    for key, value in raw.items():
        metric = key.removeprefix(f"{name}_").split("_", 1)[-1]
        if metric in REPORTED:
            plain[metric] = round(float(value), 5)
    return plain


def reusable_base_embeddings(ctx: StageContext, train: StageManifest, model, texts: list[str]):
    """The corpus embeddings the train stage mined with, when they are this base model's of these texts."""
    if f"train/{base_embeddings.KEY_FILE}" not in {record.path for record in train.outputs}:
        ctx.log.info("base_corpus_embeddings", reused=False)
        return None
    key = base_embeddings.embeddings_key(ctx.spec.model.base, model, texts)
    embeddings = base_embeddings.load(
        ctx.input_path(f"train/{base_embeddings.KEY_FILE}"),
        lambda: ctx.input_path(f"train/{base_embeddings.EMBEDDINGS_FILE}"),
        key,
    )
    ctx.log.info("base_corpus_embeddings", reused=embeddings is not None)
    return embeddings


def release_memory() -> None:
    """Free a model dropped with ``del``: a SentenceTransformer and its model card refer to each other."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


HYBRID_HINT = {
    True: "deploy.opensearch.hybrid_search has the register stage create the search pipeline",
    False: "deploy.when_rejected 'base' with deploy.opensearch.hybrid_search has the register stage deploy the "
    "base model and create the search pipeline",
}


def configured_keyword_weight(spec: RunSpec) -> float | None:
    """``deploy.opensearch.hybrid_search.keyword_weight`` when it is not the default weight evaluate always scores."""
    opensearch = spec.deploy.opensearch if spec.deploy else None
    hybrid_search = opensearch.hybrid_search if opensearch else None
    if hybrid_search is None or hybrid_search.keyword_weight == DEFAULT_KEYWORD_WEIGHT:
        return None
    return hybrid_search.keyword_weight


def weight_label(keyword_weight: float) -> str:
    """How a hybrid figure names its BM25 weight: not at all for the default."""
    return "" if keyword_weight == DEFAULT_KEYWORD_WEIGHT else f" (keyword_weight {keyword_weight:g})"


def figure_name(side: str, keyword_weight: float | None = None, passages: bool = False) -> str:
    """How the report names a side's figures in a search: ``hybrid tuned (keyword_weight 0.3) with passage vectors``."""
    name = side if keyword_weight is None else f"hybrid {side}{weight_label(keyword_weight)}"
    return f"{name} with passage vectors" if passages else name


def keyword_notes(
    keyword: dict[str, dict[str, float]],
    deployed: dict[str, float],
    metric: str,
    accepted: bool,
    label: str = "",
    passages: bool = False,
) -> list[str]:
    """A note when BM25, or the hybrid query with the model that gets deployed, beats that model's search.

    ``label`` picks the hybrid at the BM25 weight that gets deployed (``weight_label``); ``passages``: the model
    is deployed with passage vectors, in the hybrid too.
    """
    model = "tuned" if accepted else "base"
    with_passages = " with passage vectors" if passages else ""
    candidates = {
        "BM25 alone": keyword["bm25"],
        f"a hybrid query of BM25 and the {model} model{label}{with_passages}": keyword[
            f"hybrid {model}{label}{with_passages}"
        ],
    }
    query, scores = max(candidates.items(), key=lambda item: item[1][metric])
    if scores[metric] <= deployed[metric]:
        return []
    hint = f"; {HYBRID_HINT[accepted]}" if query != "BM25 alone" else ""
    return [
        f"{query} scores {metric} {scores[metric]:.4f} on these queries, against {deployed[metric]:.4f} for the "
        f"{model} model{with_passages or ' alone'} (docs/trainer.md, keyword baselines{hint})"
    ]


def passage_notes(
    figures: dict[str, dict[str, float]], alone: dict[str, float], metric: str, accepted: bool, label: str = ""
) -> list[str]:
    """What vectors per passage add to the model that gets deployed (``alone``: its scores alone).

    ``figures``: by ``figure_name``; ``label`` picks the hybrid at the BM25 weight that gets deployed.
    """
    model = "tuned" if accepted else "base"
    scored = f"{figures[figure_name(model, passages=True)][metric]:.4f} (without them {alone[metric]:.4f})"
    hybrid = figures.get(f"hybrid {model}{label} with passage vectors")
    if hybrid is not None:
        scored += f", and {hybrid[metric]:.4f} in the hybrid query with BM25{label}"
    return [
        f"with a vector per passage ('{PASSAGE_DELIMITER}' chunks) beside each document's, the {model} model scores "
        f"{metric} {scored} on these queries (docs/trainer.md, passage vectors)"
    ]


def without_logged(ctx: StageContext, judged: JudgedSet) -> tuple[JudgedSet, int]:
    """The judged queries the model was not trained on: those also in the query log are left out.

    A logged query matches as querygen read it and as it normalized it (list markers, labels, quotes).
    """
    logged = {query_key(text) for row in read_log_rows(ctx) for text in (row["query"], row.get("logged", ""))}
    kept = {q: text for q, text in judged.queries.items() if query_key(text) not in logged}
    if not kept:
        raise InputDataError(
            "every judged query is also in the query log the model was trained on, so none can score it fairly",
            path=ctx.resolve(ctx.spec.querygen.query_log.path) if ctx.spec.querygen.query_log else ctx.spec_uri,
            hint="keep some judged queries out of querygen.query_log",
        )
    return JudgedSet(kept, {q: judged.relevant[q] for q in kept}), len(judged.queries) - len(kept)


def evaluation_sets(ctx: StageContext, corpus_ids: set[str]) -> tuple[dict[str, JudgedSet], str, list[str]]:
    """The query sets to score (judged and synthetic held-out), which one decides, and notes for the report."""
    sets: dict[str, JudgedSet] = {}
    notes: list[str] = []
    if ctx.spec.evaluation.judged is not None:
        sets["judged"], dropped = judged_set(ctx, corpus_ids)
        if dropped:
            notes.append(f"{dropped} judged queries have no relevant document in the corpus and were left out")
        logged = 0
        if ctx.spec.model.type == "dense":  # sparse training does not use the log
            sets["judged"], logged = without_logged(ctx, sets["judged"])
        if logged:
            notes.append(
                f"{logged} judged queries are also in the query log the model trained on and were left out; "
                f"{len(sets['judged'].queries)} are scored"
            )
    synthetic = synthetic_set(ctx, corpus_ids)
    if synthetic.queries:
        sets["synthetic-heldout"] = synthetic
    if not sets:
        raise InputDataError(
            "no evaluation queries: the held-out split is empty and no judged queries were given",
            path=ctx.spec_uri,
            hint="set querygen.heldout_fraction above 0 or evaluation.judged",
        )
    return sets, ("judged" if "judged" in sets else "synthetic-heldout"), notes


def gate_decision(
    ctx: StageContext,
    sets: dict[str, JudgedSet],
    deciding: str,
    base: dict[str, dict[str, float]],
    tuned: dict[str, dict[str, float]],
    corpus_size: int,
    extra: dict[str, dict[str, float]] | None = None,
    search: GatedSearch = MODELS_ALONE,
    searched: dict[str, dict[str, float]] | None = None,
) -> EvaluateStats:
    """Apply the gate on the deciding set, write ``gate.json`` and return the stage's stats.

    The other query sets' scores go to ``extra`` beside any the caller adds (dense and sparse alike). With a
    ``search`` other than the models alone, the gate compares ``searched`` (``{"base": …, "tuned": …}``, the
    deciding set's figures in that search) and the models alone go to ``extra``.
    """
    evaluation = ctx.spec.evaluation
    extra = dict(extra or {})
    compared = {"base": base[deciding], "tuned": tuned[deciding]}
    if search != MODELS_ALONE:
        assert searched is not None
        extra |= {f"{side} model alone": figures for side, figures in compared.items()}
        compared = searched
    accepted, gain, reason = decide(compared["base"], compared["tuned"], evaluation.metric, evaluation.min_gain)
    if search != MODELS_ALONE:
        reason = f"in {search.label}, {reason}"
    for name in sets:
        if name != deciding:
            extra[f"{name} base"] = base[name]
            extra[f"{name} tuned"] = tuned[name]
    gate = {
        "accepted": accepted,
        "metric": evaluation.metric,
        "base": compared["base"][evaluation.metric],
        "tuned": compared["tuned"][evaluation.metric],
        "decided_by": deciding,
        "decided_on": search.kind,
    }
    ctx.output_path(GATE_FILE).write_text(json.dumps(gate, indent=2))
    return EvaluateStats(
        decided_by=deciding,  # type: ignore[arg-type]
        decided_on=search.kind,
        queries=len(sets[deciding].queries),
        corpus_size=corpus_size,
        metric=evaluation.metric,
        base=compared["base"],
        tuned=compared["tuned"],
        gain=round(gain, 5),
        min_gain=evaluation.min_gain,
        accepted=accepted,
        reason=reason,
        extra=extra,
    )


def run(ctx: StageContext) -> StageResult:
    if ctx.spec.model.type == "sparse":
        from osft.trainer.sparse.evaluate import evaluate_sparse

        return evaluate_sparse(ctx)
    return evaluate_dense(ctx)


def _base_then_tuned(ctx: StageContext, train: StageManifest, texts: list[str], max_len: int | None):
    """("base" | "tuned", model, stored corpus embeddings or None), one model in memory at a time."""
    spec = ctx.spec
    base = load_sentence_transformer(spec.model.base, Path(ctx.resolve(".")), max_seq_length=max_len)
    apply_usage(base, model_usage(spec.model))
    yield "base", base, reusable_base_embeddings(ctx, train, base, texts)
    del base
    release_memory()  # the caller has dropped its reference too by now
    yield "tuned", load_sentence_transformer(str(ctx.input_path(train.stats.model_dir)), max_seq_length=max_len), None


def evaluate_dense(ctx: StageContext) -> StageResult:
    spec, evaluation = ctx.spec, ctx.spec.evaluation
    train = ctx.upstream("train")
    docs = load_corpus(ctx)
    corpus = {doc_id: document_text(doc) for doc_id, doc in docs.items()}
    sets, deciding, notes = evaluation_sets(ctx, set(corpus))
    search, search_notes = gated_search(spec, deciding)
    notes += search_notes
    hp = train.stats.hyperparameters
    scorer = RetrievalScorer(corpus, hp.get("query_prefix", ""), hp.get("document_prefix", ""), evaluation.batch_size)
    show = progress_enabled()

    clock = time.perf_counter()
    max_len = hp.get("max_seq_length")
    query_prefix = hp.get("query_prefix", "")
    # Only beside judged queries: synthetic ones repeat their document's words and flatter BM25 (0.99 on SciFact).
    wanted = evaluation.keyword_baselines or search.keyword_weight is not None
    baselines = KeywordBaselines(corpus, sets) if wanted and deciding == "judged" else None
    keyword_seconds = time.perf_counter() - clock
    # Judged queries only, for the same reason: a synthetic query restates a sentence of its document.
    wanted = evaluation.passage_vectors or search.passages
    passage_index = PassageIndex(corpus) if wanted and deciding == "judged" else None
    passages: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    configured = configured_keyword_weight(spec)
    keyword_weights = (DEFAULT_KEYWORD_WEIGHT,) + ((configured,) if configured is not None else ())
    hybrid: dict[float, dict[str, dict[str, dict[str, float]]]] = {weight: {} for weight in keyword_weights}
    scores: dict[str, dict[str, dict[str, float]]] = {}
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    for side, model, stored in _base_then_tuned(ctx, train, scorer.texts, max_len):
        corpus_embeddings = scorer.embed_corpus(model, show, stored)
        scores[side] = scorer.score(model, sets, corpus_embeddings)
        seconds[side] = time.perf_counter() - clock
        if baselines is not None:
            clock = time.perf_counter()
            by_weight = baselines.hybrid_metrics(
                model, corpus_embeddings, query_prefix, evaluation.batch_size, keyword_weights
            )
            for weight, by_set in by_weight.items():
                hybrid[weight][side] = by_set
            keyword_seconds += time.perf_counter() - clock
        if passage_index is not None:
            clock = time.perf_counter()
            passages[side] = passage_metrics(
                passage_index,
                model,
                sets,
                corpus_embeddings,
                query_prefix=query_prefix,
                document_prefix=hp.get("document_prefix", ""),
                batch_size=evaluation.batch_size,
                show_progress=show,
                bm25=baselines.bm25 if baselines is not None else None,
                keyword_weights=keyword_weights,
            )
            seconds[f"passages_{side}"] = time.perf_counter() - clock
        del model, stored, corpus_embeddings
        clock = time.perf_counter()
    base, tuned = scores["base"], scores["tuned"]

    keyword: dict[str, dict[str, float]] = {}
    if baselines is not None:
        clock = time.perf_counter()
        bm25 = baselines.bm25_metrics()
        keyword_seconds += time.perf_counter() - clock
        keyword = {"bm25": bm25[deciding]}
        for weight in keyword_weights:
            for side in ("base", "tuned"):
                keyword[figure_name(side, weight)] = hybrid[weight][side][deciding]
    for side, by_kind in passages.items():
        keyword[figure_name(side, passages=True)] = by_kind["dense"][deciding]
        for weight, by_set in by_kind.get("hybrid", {}).items():
            keyword[figure_name(side, weight, passages=True)] = by_set[deciding]
    searched = None
    if search != MODELS_ALONE:
        searched = {side: keyword.pop(figure_name(side, search.keyword_weight, search.passages)) for side in scores}
    stats = gate_decision(ctx, sets, deciding, base, tuned, len(corpus), keyword, search, searched)
    deployed = tuned if stats.accepted else base
    deployed_label = weight_label(configured) if configured is not None else ""
    if baselines is not None and search.keyword_weight is None:
        served = stats.tuned if stats.accepted else stats.base
        notes += keyword_notes(
            keyword, served, evaluation.metric, stats.accepted, deployed_label, passages=search.passages
        )
    if passages and not search.passages:
        notes += passage_notes(keyword, deployed[deciding], evaluation.metric, stats.accepted, deployed_label)
    base_outputs: list[str] = []
    if not stats.accepted and base_deploy_wanted(spec):
        clock = time.perf_counter()
        stats.base_model_dir, stats.base_exports, base_outputs = save_base_for_deploy(ctx, max_len)
        seconds["save_base"] = time.perf_counter() - clock
        notes.append(
            f"deploy.when_rejected is 'base': the base model, as evaluated, is saved in {stats.base_model_dir}"
        )
    metrics = {"base": base, "tuned": tuned, "decided_by": deciding}
    if baselines is not None:
        metrics["keyword_baselines"] = {
            "bm25": bm25,
            "hybrid": hybrid[DEFAULT_KEYWORD_WEIGHT],
            "hybrid_weights": HYBRID_WEIGHTS,
        }
        if configured is not None:
            metrics["keyword_baselines"]["hybrid_configured"] = {"keyword_weight": configured, **hybrid[configured]}
    if passages:
        metrics["passage_vectors"] = {"delimiter": PASSAGE_DELIMITER}
        for side, by_kind in passages.items():
            metrics["passage_vectors"][side] = {"dense": by_kind["dense"]}
            if "hybrid" in by_kind:
                metrics["passage_vectors"][side]["hybrid"] = by_kind["hybrid"][DEFAULT_KEYWORD_WEIGHT]
            if configured is not None and "hybrid" in by_kind:
                metrics["passage_vectors"][side]["hybrid_configured"] = {
                    "keyword_weight": configured,
                    **by_kind["hybrid"][configured],
                }
    ctx.output_path(METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    report_files = write_report(
        ctx.workdir,
        title=spec.name,
        base=stats.base,
        tuned=stats.tuned,
        decided_by=deciding,
        accepted=stats.accepted,
        reason=stats.reason,
        extra=stats.extra,
        searched_in=search.label if search != MODELS_ALONE else "",
    )
    ctx.log.info(
        "evaluation_done",
        decided_by=deciding,
        accepted=stats.accepted,
        gain=round(stats.gain, 4),
        decided_on=search.kind,
        **metric_fields("base", stats.base),
        **metric_fields("tuned", stats.tuned),
    )
    return StageResult(
        stats=stats,
        outputs=[METRICS_FILE, GATE_FILE, *report_files, *base_outputs],
        counts={"queries": len(sets[deciding].queries), "accepted": int(stats.accepted)},
        notes=notes,
        steps={name: round(value, 3) for name, value in seconds.items()}
        | ({"keyword": round(keyword_seconds, 3)} if baselines is not None else {}),
    )


def input_fingerprint(ctx: StageContext) -> dict[str, Any] | None:
    """The judged files' contents, what a base model saved for deployment depends on, a hybrid weight to score, and
    the deployed search the gate compares in.

    Judgements added to the same folder score the model again. None with none of these, so those runs keep
    the fingerprint they had before these existed.
    """
    material: dict[str, Any] = {}
    base_deploy = base_deploy_fingerprint(ctx.spec)
    if base_deploy is not None:
        material["base_deploy"] = base_deploy
    configured = configured_keyword_weight(ctx.spec)
    if configured is not None:
        material["hybrid_keyword_weight"] = configured
    search = deployed_search(ctx.spec)
    if search != MODELS_ALONE and ctx.spec.evaluation.decide_on == "search":
        material["gated_search"] = search.kind
    judged = ctx.spec.evaluation.judged
    if judged is not None:
        folder = ctx.resolve(judged.path)
        # A missing file (None) is the stage's own error to report, with its hint, once it runs.
        versions = {
            name: Location(join(folder, name)).content_version()
            for name in (f"qrels/{judged.split}.tsv", judged.queries_file)
        }
        material["judged"] = hashlib.sha256(json.dumps(versions, sort_keys=True).encode()).hexdigest()
    return material or None


STAGE = StageDefinition(
    name="evaluate",
    upstream=("extract", "querygen", "train"),
    spec_sections=("evaluation",),
    run=run,
    version="2",
    input_fingerprint=input_fingerprint,
)


__all__ = ["GATE_FILE", "METRICS_FILE", "STAGE", "decide", "evaluate_dense", "run"]
