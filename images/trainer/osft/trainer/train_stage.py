"""The train stage: fine-tune the base model on the querygen pairs with sentence-transformers' trainer.

Dense models are trained here; ``model.type == "sparse"`` is handed to ``osft.trainer.sparse``.
Order of work: pick the model usage (preset + spec) and the hyperparameters (smart defaults),
build (anchor, positive[, negatives][, teacher label]) rows, train with checkpoints every
``training.checkpoint_steps`` (resuming from the newest after a kill), merge LoRA adapters,
pick the WiSE-FT ratio, save, export.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from osft.common.corpus import Pair, document_text, load_corpus, positive_text, read_pairs
from osft.common.errors import InputDataError
from osft.common.manifests import TrainStats
from osft.common.progress import progress_enabled
from osft.common.spec.querygen import kept_count
from osft.common.stage import StageContext, StageDefinition, StageResult
from osft.common.training_defaults import MERGE_CORPUS_SAMPLE, MIN_MERGE_VALIDATION, merge_validation_size
from osft.trainer import base_embeddings
from osft.trainer.defaults import (
    EncoderShape,
    choose_contrastive_loss,
    choose_hyperparameters,
    choose_max_seq_length,
    offline_pairs_cap,
)
from osft.trainer.hf_training import (
    checkpoint_folder,
    gather_across_devices,
    is_first_process,
    memory_bytes,
    on_gpu,
    precision_used,
    rows_kept_in_work,
    shared_rows,
    train_from_checkpoint,
    training_arguments,
    world_size,
)
from osft.trainer.models import ModelUsage, apply_usage, load_cross_encoder, load_sentence_transformer, model_usage
from osft.trainer.query_log import read_log_queries

if TYPE_CHECKING:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from transformers import TrainerCallback

    from osft.trainer.hard_negatives import CorpusRanker

MODEL_DIR = "model"
MINED_FILE = "train_rows.jsonl"
MINED_NOTES_FILE = "train_rows_notes.json"  # what building the cached rows found, for a resumed run's manifest
LENGTH_SAMPLE = 2000


def run(ctx: StageContext) -> StageResult:
    if ctx.spec.model.type == "sparse":
        from osft.trainer.sparse.train import train_sparse

        return train_sparse(ctx)
    return train_dense(ctx)


def _split_validation(pairs: list[Pair], wanted: int, seed: int) -> tuple[list[Pair], list[Pair]]:
    """Hold out up to ``wanted`` pairs (at most 10%) for picking the merge ratio; never train on them.

    Whole documents are held out: a validation query whose document the model trained on through another
    query scores what the model memorised, and favours the tuned weights. The count is
    ``osft.common.training_defaults``' rule, which ``osft estimate`` applies too; documents are taken in a
    seeded order while their pairs fit in it (with a few pairs per document it fills exactly).
    """
    count = merge_validation_size(len(pairs), wanted)
    by_doc: dict[str, list[Pair]] = {}
    for pair in pairs:
        by_doc.setdefault(pair["doc_id"], []).append(pair)
    held_docs: set[str] = set()
    held = 0
    for doc_id in random.Random(seed + 1).sample(sorted(by_doc), len(by_doc)):
        if held + len(by_doc[doc_id]) <= count:
            held_docs.add(doc_id)
            held += len(by_doc[doc_id])
        if held == count:
            break
    trained = [p for p in pairs if p["doc_id"] not in held_docs]
    validation = [p for p in pairs if p["doc_id"] in held_docs]
    return trained, validation


def _token_lengths(model: SentenceTransformer, texts: Sequence[str]) -> list[int]:
    encoded = model.tokenizer(list(texts), add_special_tokens=True, truncation=False, verbose=False)
    return [len(ids) for ids in encoded["input_ids"]]


def _base_corpus_embeddings(ctx: StageContext, model: SentenceTransformer, corpus: list[str], batch_size: int):
    """The base model's corpus embeddings: kept from an attempt killed while mining, or encoded and kept."""
    key = base_embeddings.embeddings_key(ctx.spec.model.base, model, corpus)
    files = {name: ctx.workdir / name for name in base_embeddings.FILES}
    embeddings = base_embeddings.load(
        files[base_embeddings.KEY_FILE], lambda: files[base_embeddings.EMBEDDINGS_FILE], key
    )
    ctx.log.info("base_corpus_embeddings", reused=embeddings is not None)
    if embeddings is None:
        embeddings = base_embeddings.encode_texts(
            model, corpus, batch_size=batch_size, show_progress=progress_enabled()
        )
        if is_first_process():
            base_embeddings.save(ctx.workdir, key, embeddings)
    return embeddings


def _log_pairs(
    ctx: StageContext,
    ranker: CorpusRanker,
    log_queries: list[str],
    keep_fraction: float,
    usage: ModelUsage,
    corpus_texts: dict[str, str],
    corpus: list[str],
) -> tuple[list[str], list[int], str]:
    """Anchors and their documents' corpus indices for the logged queries the hybrid is surest of, and a note."""
    from osft.trainer.query_log import label_queries

    clock = time.perf_counter()
    labeled = label_queries([usage.query_prefix + q for q in log_queries], ranker, keep_fraction)
    # The synthetic held-out set scores the model when no judged queries do: never train on its documents.
    heldout = {p["doc_id"] for p in read_pairs(ctx.input_path("querygen/heldout.jsonl"))}
    doc_ids = list(corpus_texts)
    kept = [item for item in labeled if doc_ids[item.doc_index] not in heldout]
    ctx.log.info(
        "query_log_labeled", queries=len(log_queries), kept=len(labeled), seconds=round(time.perf_counter() - clock, 1)
    )
    note = (
        f"query log: {len(kept)} of {len(log_queries)} logged queries paired with the document the "
        f"BM25 + base-model hybrid ranks first (those whose first hit leads the second by most)"
    )
    if len(kept) < len(labeled):
        note += f"; {len(labeled) - len(kept)} more led to held-out documents and were left out"
    return [item.query for item in kept], [item.doc_index for item in kept], note


def _build_rows(
    ctx: StageContext,
    model: SentenceTransformer,
    pairs: list[Pair],
    corpus_texts: dict[str, str],
    usage: ModelUsage,
    batch_size: int,
    provider: str,
    log_queries: list[str],
    keep_fraction: float,
) -> tuple[Dataset, dict[str, Any]]:
    """Training rows, and what building them found: their ``notes`` and the number of query-log pairs
    among them (``log_pairs``)."""
    from datasets import Dataset

    training = ctx.spec.training
    notes: list[str] = []
    anchors = [usage.query_prefix + p["query"] for p in pairs]
    positives = [usage.document_prefix + positive_text(p, corpus_texts[p["doc_id"]]) for p in pairs]
    corpus = [usage.document_prefix + text for text in corpus_texts.values()]
    # The corpus document each row's positive comes from: never one of its negatives, even when the
    # positive's text differs from it (an inverse-cloze positive lacks the query sentence).
    doc_index = {doc_id: i for i, doc_id in enumerate(corpus_texts)}
    positive_docs = [doc_index[p["doc_id"]] for p in pairs]
    ranker, log_pairs = None, 0
    if log_queries:
        from osft.trainer.hard_negatives import CorpusRanker

        ranker = CorpusRanker(model, corpus, _base_corpus_embeddings(ctx, model, corpus, batch_size))
        log_anchors, log_docs, note = _log_pairs(ctx, ranker, log_queries, keep_fraction, usage, corpus_texts, corpus)
        anchors, log_pairs = anchors + log_anchors, len(log_anchors)
        positives += [corpus[i] for i in log_docs]
        positive_docs += log_docs
        notes.append(note)
    if not anchors:
        raise InputDataError(
            "no training pairs: querygen wrote none, and no query-log pair was kept (their first hits were "
            "held-out documents)",
            path=str(ctx.input_path("querygen/train.jsonl")),
            hint="lower querygen.heldout_fraction, or give more queries (querygen.queries_per_doc, a larger log)",
        )
    dataset = Dataset.from_dict({"anchor": anchors, "positive": positives})
    needs_negatives = training.hard_negatives.active(provider, bool(log_queries)) or training.distillation.enabled
    if len(anchors) < 2 and not needs_negatives:
        # In-batch negatives are the other pairs': alone, a pair's loss is 0 and training changes nothing.
        raise InputDataError(
            "one training pair: the contrastive loss needs at least two (or hard negatives) to learn anything",
            path=str(ctx.input_path("querygen/train.jsonl")),
            hint="give more documents or queries (querygen.queries_per_doc), or set training.hard_negatives.enabled",
        )
    if needs_negatives:
        from osft.trainer.hard_negatives import RANKED_CANDIDATES, mine

        clock = time.perf_counter()
        corpus_embeddings = None
        if ranker is None and training.hard_negatives.candidates in RANKED_CANDIDATES:
            corpus_embeddings = _base_corpus_embeddings(ctx, model, corpus, batch_size)
        mined = mine(
            dataset,
            model,
            corpus,
            training.hard_negatives,
            batch_size=batch_size,
            show_progress=progress_enabled(),
            seed=training.seed,
            corpus_embeddings=corpus_embeddings,
            ranker=ranker,
            positive_docs=positive_docs,
        )
        ctx.log.info(
            "hard_negatives_mined",
            source=mined.source,
            queries=mined.queries_in,
            kept=mined.queries_kept,
            seconds=round(time.perf_counter() - clock, 1),
        )
        if mined.queries_kept == 0:
            raise InputDataError(
                "no query kept enough hard negatives",
                path=ctx.spec_uri,
                hint="lower training.hard_negatives.margin or range_min, or raise range_max",
            )
        if mined.queries_kept < mined.queries_in:
            notes.append(
                f"hard negatives: {mined.queries_in - mined.queries_kept} of {mined.queries_in} queries had too "
                f"few candidates past the margin and were left out"
            )
        dataset = mined.dataset
    if training.distillation.enabled:
        from osft.trainer.distillation import add_teacher_scores

        teacher = load_cross_encoder(training.distillation.teacher, Path(ctx.resolve(".")), model.max_seq_length)
        dataset = add_teacher_scores(
            dataset,
            teacher,
            query_prefix=usage.query_prefix,
            document_prefix=usage.document_prefix,
            show_progress=progress_enabled(),
        )
        del teacher
        ctx.log.info("teacher_scores_added", teacher=training.distillation.teacher, rows=len(dataset))
    return dataset, {"notes": notes, "log_pairs": log_pairs}


def _merge_evaluator(validation: list[Pair], corpus_texts: dict[str, str], usage: ModelUsage, seed: int):
    """ndcg@10 of validation queries over their positives plus a sample of the corpus."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    positives = {p["doc_id"] for p in validation}
    others = [d for d in corpus_texts if d not in positives]
    sample = random.Random(seed).sample(others, min(len(others), MERGE_CORPUS_SAMPLE))
    corpus = {d: usage.document_prefix + corpus_texts[d] for d in [*positives, *sample]}
    queries = {f"v{i}": usage.query_prefix + p["query"] for i, p in enumerate(validation)}
    relevant = {f"v{i}": {p["doc_id"]} for i, p in enumerate(validation)}
    evaluator = InformationRetrievalEvaluator(
        queries=queries,
        corpus=corpus,
        relevant_docs=relevant,
        ndcg_at_k=[10],
        mrr_at_k=[10],
        accuracy_at_k=[10],
        precision_recall_at_k=[10],
        map_at_k=[10],
        name="merge",
        write_csv=False,
        show_progress_bar=False,
    )
    return lambda model: evaluator(model)[evaluator.primary_metric]


def train_dense(ctx: StageContext, callbacks: Sequence[TrainerCallback] = ()) -> StageResult:
    """Fine-tune a dense SentenceTransformer; ``callbacks`` are extra HF trainer callbacks."""
    import torch
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    from osft.trainer.export import export_all
    from osft.trainer.losses import build_loss

    spec, training = ctx.spec, ctx.spec.training
    if not progress_enabled():
        import datasets

        datasets.disable_progress_bars()
    pairs = read_pairs(ctx.input_path("querygen/train.jsonl"))
    provider = ctx.upstream("querygen").stats.provider
    log_queries = read_log_queries(ctx)
    keep_fraction = spec.querygen.query_log.keep_fraction if spec.querygen.query_log else 1.0
    expected_log_pairs = kept_count(len(log_queries), keep_fraction)  # a few may lead to held-out documents
    reasons: dict[str, str] = {}
    cap, why = offline_pairs_cap(training, provider, expected_log_pairs)
    if cap is not None and len(pairs) > cap:
        pairs = random.Random(training.seed).sample(pairs, cap)
        if why:
            reasons["max_train_pairs"] = why
    validation: list[Pair] = []
    if training.merge.enabled:
        pairs, validation = _split_validation(pairs, training.merge.max_queries, training.seed)
        if len(validation) < MIN_MERGE_VALIDATION:
            reasons["merge"] = (
                f"skipped: {len(validation)} validation pairs (10% of the generated ones) are too few to choose a "
                f"ratio on; at least {MIN_MERGE_VALIDATION} are needed"
            )
            pairs, validation = pairs + validation, []
    corpus_texts = {doc_id: document_text(doc) for doc_id, doc in load_corpus(ctx).items()}
    missing = [p["doc_id"] for p in pairs if p["doc_id"] not in corpus_texts]
    if missing:
        raise InputDataError(
            f"{len(missing)} training pairs name documents missing from the corpus (e.g. {missing[0]!r})",
            path=str(ctx.input_path("querygen/train.jsonl")),
            hint="re-run querygen against this extract (osft run --force querygen)",
        )

    usage = model_usage(spec.model)
    model = load_sentence_transformer(spec.model.base, Path(ctx.resolve(".")))
    notes = [f"model: {change}" for change in apply_usage(model, usage)]
    if spec.model.max_seq_length:
        max_len = spec.model.max_seq_length
    else:
        sample_ids = random.Random(training.seed).sample(list(corpus_texts), min(LENGTH_SAMPLE, len(corpus_texts)))
        lengths = _token_lengths(model, [usage.document_prefix + corpus_texts[d] for d in sample_ids])
        max_len, reasons["max_seq_length"] = choose_max_seq_length(lengths, usage.max_seq_length_limit)
    model.max_seq_length = max_len
    hp = choose_hyperparameters(training, len(pairs) + expected_log_pairs, usage.size, provider, expected_log_pairs)
    reasons.update(hp.reasons)
    ctx.log.info("hyperparameters_chosen", **{k: v for k, v in reasons.items()})

    checkpoints = checkpoint_folder(ctx)
    args = SentenceTransformerTrainingArguments(
        **training_arguments(training, hp, checkpoints),
        # BERT-style models carry a pooler that mean or CLS pooling never uses: DDP must look for unused
        # parameters, or it fails at the second step ("Expected to have finished reduction").
        ddp_find_unused_parameters=True if world_size() > 1 else None,
    )
    clock = time.perf_counter()

    def build() -> tuple[Dataset, dict[str, Any]]:
        return rows_kept_in_work(
            ctx,
            MINED_FILE,
            MINED_NOTES_FILE,
            lambda: _build_rows(
                ctx, model, pairs, corpus_texts, usage, hp.batch_size, provider, log_queries, keep_fraction
            ),
        )

    dataset, found = shared_rows(ctx, args, build)
    notes += found["notes"]
    log_pairs = found["log_pairs"]
    prepare_seconds = time.perf_counter() - clock

    base_state = {k: v.detach().clone() for k, v in model.state_dict().items()} if validation else None
    trainable = None
    if training.lora.enabled:
        from osft.trainer.lora import add_lora_adapter

        trainable = add_lora_adapter(model, training.lora)
        ctx.log.info("lora_adapter_added", trainable_parameters=trainable, r=training.lora.r)

    contrastive = None
    if not training.distillation.enabled:
        contrastive = choose_contrastive_loss(
            training,
            texts_per_step=hp.batch_size * len([c for c in dataset.column_names if c != "label"]),
            max_seq_length=max_len,
            shape=EncoderShape.of(model[0].auto_model.config),
            memory_bytes=memory_bytes(),
            on_gpu=on_gpu(),
        )
        if contrastive.reason:
            reasons["loss"] = contrastive.reason
            ctx.log.info("loss_chosen", loss=contrastive.name, because=contrastive.reason)
    gather = gather_across_devices(training)
    loss, loss_name = build_loss(
        model, training, gather_across_devices=gather, spec_source=ctx.spec_uri, contrastive=contrastive
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    output, train_seconds = train_from_checkpoint(ctx, trainer, checkpoints, callbacks)

    extras: dict[str, Any] = {}
    if training.lora.enabled:
        from osft.trainer.lora import merge_adapters

        extras["lora_layers_merged"] = merge_adapters(model)
        extras["lora_trainable_parameters"] = trainable
    clock = time.perf_counter()
    if base_state is not None:
        from osft.trainer.merge import choose_ratio

        tuned_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        evaluate = _merge_evaluator(validation, corpus_texts, usage, training.seed)
        with torch.no_grad():
            choice = choose_ratio(model, base_state, tuned_state, training.merge.ratios, evaluate)
        extras["merge_ratio"] = choice.ratio
        extras["merge_scores"] = {str(r): s for r, s in choice.scores.items()}
        extras["merge_validation_pairs"] = len(validation)
        notes.append(
            f"weight merge: ratio {choice.ratio:g} of the tuned weights chosen on {len(validation)} validation "
            f"pairs (ndcg@10 by ratio: {', '.join(f'{r:g}={s:.4f}' for r, s in choice.scores.items())})"
        )
        ctx.log.info("merge_ratio_chosen", ratio=choice.ratio, scores=extras["merge_scores"])
    merge_seconds = time.perf_counter() - clock

    model_dir = ctx.output_path(MODEL_DIR)
    model.save(str(model_dir))
    clock = time.perf_counter()
    name = spec.model.output_name or spec.name
    exports = export_all(model, model_dir, ctx.workdir, training.export, name, log=ctx.log.info)
    export_seconds = time.perf_counter() - clock

    hyperparameters = {
        "epochs": hp.epochs,
        "learning_rate": hp.learning_rate,
        "batch_size": hp.batch_size,
        "warmup_ratio": hp.warmup_ratio,
        "max_steps": hp.max_steps,
        "max_seq_length": max_len,
        "loss": loss_name,
        "query_prefix": usage.query_prefix,
        "document_prefix": usage.document_prefix,
        "pooling": usage.pooling,
        "normalize": usage.normalize,
        "hard_negatives": training.hard_negatives.num_negatives
        if training.hard_negatives.active(provider, bool(log_queries))
        else 0,
        "gather_across_devices": gather,
        "world_size": world_size(),
        "precision": precision_used(args),
        **extras,
    }
    stats = TrainStats(
        base_model=spec.model.base,
        model_type=spec.model.type,
        model_dir=f"train/{MODEL_DIR}",
        train_pairs=len(pairs),
        steps=output.global_step,
        hyperparameters=hyperparameters,
        chosen_because=reasons,
        final_loss=output.training_loss,
        exports=exports,
    )
    notes += [f"{key} = {why}" for key, why in reasons.items()]
    outputs = [MODEL_DIR] + (["exports"] if exports else [])
    # Written while mining (kept in the stage folder, so a resumed run that reuses the mined rows has them).
    outputs += [name for name in base_embeddings.FILES if (ctx.workdir / name).is_file()]
    return StageResult(
        stats=stats,
        outputs=outputs,
        counts={
            "train_pairs": len(pairs),
            "log_pairs": log_pairs,
            "train_rows": len(dataset),
            "steps": output.global_step,
        },
        notes=notes,
        steps={
            "prepare": round(prepare_seconds, 3),
            "train": round(train_seconds, 3),
            "merge": round(merge_seconds, 3),
            "export": round(export_seconds, 3),
        },
    )


def input_fingerprint(ctx: StageContext) -> dict[str, Any] | None:
    """The one querygen setting the train stage applies itself: which share of the query log it keeps."""
    query_log = ctx.spec.querygen.query_log
    return {"query_log_keep_fraction": query_log.keep_fraction} if query_log else None


STAGE = StageDefinition(
    name="train",
    upstream=("extract", "querygen"),
    spec_sections=("model", "training"),
    run=run,
    version="4",
    input_fingerprint=input_fingerprint,
)
