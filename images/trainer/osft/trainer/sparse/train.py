"""Fine-tune a sparse model on the querygen pairs: ``train_sparse`` is the train stage for ``model.type: sparse``."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import TYPE_CHECKING

from osft.common.corpus import Pair, document_text, load_corpus, read_pairs
from osft.common.manifests import TrainStats
from osft.common.progress import progress_enabled
from osft.common.stage import StageContext, StageResult
from osft.common.training_defaults import SPARSE_BATCH_SIZE
from osft.trainer.defaults import choose_hyperparameters
from osft.trainer.hf_training import (
    checkpoint_folder,
    gather_across_devices,
    precision_used,
    rows_kept_in_work,
    shared_rows,
    train_from_checkpoint,
    training_arguments,
    world_size,
)
from osft.trainer.sparse.export import (
    SAMPLE_QUERIES,
    export_sparse_encoding,
    export_sparse_tokenize,
    verify_sparse_encoding,
    verify_sparse_tokenize,
)
from osft.trainer.sparse.losses import build_loss, choose_loss
from osft.trainer.sparse.models import (
    choose_max_seq_length_for,
    choose_sparse_model,
    document_modules,
    prepare_sparse_model,
)
from osft.trainer.sparse.training_data import (
    QUERY_COLUMN,
    add_teacher_scores,
    mine_negatives,
    negative_columns,
    pair_dataset,
)

if TYPE_CHECKING:
    from datasets import Dataset

MODEL_DIR = "model"
EXPORT_DIR = "exports"
ROWS_FILE = "sparse_train_rows.jsonl"
ROWS_FOUND_FILE = "sparse_train_rows.json"  # written after the rows: their presence says the rows are whole


def _training_rows(ctx: StageContext, pairs: list[Pair], corpus: dict[str, str], base_dir: Path) -> Dataset:
    """The (anchor, positive[, negative_1..n][, label]) rows: the pairs, with mined negatives and teacher scores."""
    spec, training = ctx.spec, ctx.spec.training
    dataset = pair_dataset(pairs, corpus)
    provider = ctx.upstream("querygen").stats.provider
    if training.hard_negatives.active(provider) or training.distillation.enabled:
        dataset = mine_negatives(dataset, corpus, spec, base_dir)
        ctx.log.info("hard_negatives_mined", rows=len(dataset), negatives=len(negative_columns(dataset)))
    if training.distillation.enabled:
        dataset = add_teacher_scores(dataset, spec, base_dir)
    return dataset


def train_sparse(ctx: StageContext) -> StageResult:
    """Train, save and (when ``training.export.opensearch_zip``) export a sparse model; returns the stage result.

    Under torchrun rank 0 builds the rows and picks the checkpoint to resume from for every process, and
    only rank 0 saves, exports and returns (the others exit once trained), as in the dense stage.
    """
    from sentence_transformers import SparseEncoderTrainer, SparseEncoderTrainingArguments

    spec, training = ctx.spec, ctx.spec.training
    if not progress_enabled():  # containers: JSON log lines only
        import datasets

        datasets.disable_progress_bars()
    options = training.sparse
    base_dir = Path(ctx.resolve("."))
    choice = choose_sparse_model(spec.model)
    pairs = read_pairs(ctx.input_path("querygen/train.jsonl"))
    if training.max_train_pairs and len(pairs) > training.max_train_pairs:
        pairs = random.Random(training.seed).sample(pairs, training.max_train_pairs)
    corpus = {doc_id: document_text(doc) for doc_id, doc in load_corpus(ctx).items()}
    hp = choose_hyperparameters(training, len(pairs))
    reasons = {**choice.reasons, **hp.reasons}
    batch_size = hp.batch_size
    if training.batch_size is None:
        batch_size = min(SPARSE_BATCH_SIZE, max(2, len(pairs)))
        reasons["batch_size"] = (
            f"{batch_size}: sparse models hold seq_len x vocab logits per text, so batches stay small"
        )
    loss_choice = choose_loss(spec, choice.mode)
    reasons.update(loss_choice.reasons)

    clock = time.perf_counter()
    model = prepare_sparse_model(spec, choice, base_dir, list(corpus.values()), None)
    max_len, why = choose_max_seq_length_for(spec, document_modules(model)[0].tokenizer, list(corpus.values()))
    model.max_seq_length = max_len
    if why:
        reasons["max_seq_length"] = why

    learning_rate_mapping = {}
    if choice.mode == "doc-only" and options.idf_trainable:
        learning_rate_mapping = {r"sub_modules\.query\.0\.weight$": options.idf_learning_rate}
    checkpoints = checkpoint_folder(ctx)
    # Made before the rows: under torchrun they are shared through the process group these arguments bring up.
    args = SparseEncoderTrainingArguments(
        **training_arguments(training, hp, checkpoints, batch_size=batch_size),
        learning_rate_mapping=learning_rate_mapping,
    )
    dataset, _ = shared_rows(
        ctx,
        args,
        lambda: rows_kept_in_work(
            ctx, ROWS_FILE, ROWS_FOUND_FILE, lambda: (_training_rows(ctx, pairs, corpus, base_dir), {})
        ),
    )
    prepare_seconds = time.perf_counter() - clock
    if choice.mode == "doc-only":
        # The query column goes through the static token table, every other text column through the model.
        args.router_mapping = {
            c: "query" if c == QUERY_COLUMN else "document" for c in dataset.column_names if c != "label"
        }

    gather = gather_across_devices(training) and not training.distillation.enabled  # no in-batch negatives
    loss = build_loss(model, loss_choice, spec, gather_across_devices=gather)
    trainer = SparseEncoderTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    output, train_seconds = train_from_checkpoint(ctx, trainer, checkpoints)
    model.save(str(ctx.output_path(MODEL_DIR)))

    outputs = [MODEL_DIR]
    exports: dict[str, dict] = {}
    steps = {"prepare": round(prepare_seconds, 3), "train": round(train_seconds, 3)}
    if training.export.opensearch_zip:
        clock = time.perf_counter()
        exports = export_all(ctx, model, max_len, list(corpus.values()), [p["query"] for p in pairs])
        steps["export"] = round(time.perf_counter() - clock, 3)
        outputs.append(EXPORT_DIR)

    stats = TrainStats(
        base_model=choice.base,
        model_type="sparse",
        model_dir=f"train/{MODEL_DIR}",
        train_pairs=len(pairs),
        steps=output.global_step,
        hyperparameters={
            "sparse_mode": choice.mode,
            "epochs": hp.epochs,
            "learning_rate": hp.learning_rate,
            "batch_size": batch_size,
            "warmup_ratio": hp.warmup_ratio,
            "max_steps": hp.max_steps,
            "max_seq_length": max_len,
            "loss": loss_choice.name,
            "document_regularizer_weight": loss_choice.document_weight,
            "query_regularizer_weight": loss_choice.query_weight,
            "hard_negatives": len(negative_columns(dataset)),
            "idf_source": options.idf_source if choice.mode == "doc-only" else None,
            "idf_trainable": options.idf_trainable if choice.mode == "doc-only" else None,
            "prune_ratio": options.prune_ratio,
            "gather_across_devices": gather,
            "world_size": world_size(),
            "precision": precision_used(args),
        },
        chosen_because=reasons,
        final_loss=output.training_loss,
        exports=exports,
    )
    notes = [f"{name} = {why}" for name, why in reasons.items()]
    if spec.querygen.query_log is not None:
        notes.append("querygen.query_log: sparse training uses the generated pairs only; the log was not used")
    for kind, record in exports.items():
        if "max_abs_diff" in record:
            notes.append(f"{kind}: exported weights differ from PyTorch by at most {record['max_abs_diff']:.2e}")
    return StageResult(
        stats=stats,
        outputs=outputs,
        counts={"train_pairs": len(pairs), "steps": output.global_step, "rows": len(dataset)},
        notes=notes,
        steps=steps,
    )


def export_all(ctx: StageContext, model, max_len: int, documents: list[str], queries: list[str]) -> dict[str, dict]:
    """Write the ML Commons zips under ``train/exports/`` and verify each against the PyTorch model."""
    options = ctx.spec.training.sparse
    name = ctx.spec.model.output_name or ctx.spec.name
    target = ctx.output_path(EXPORT_DIR)
    target.mkdir(parents=True, exist_ok=True)
    sample = random.Random(ctx.spec.training.seed)
    texts = sample.sample(documents, min(options.verify_texts, len(documents)))
    exports = {}
    encoding = export_sparse_encoding(model, target, name, max_len, options.prune_ratio)
    record = encoding.record(ctx.workdir)
    record["max_abs_diff"] = verify_sparse_encoding(model, encoding.path, texts, options.prune_ratio)
    record["verified_texts"] = len(texts)
    exports[encoding.kind] = record
    if choose_sparse_model(ctx.spec.model).mode == "doc-only":
        tokenize = export_sparse_tokenize(model, target, name, max_len)
        record = tokenize.record(ctx.workdir)
        sample_queries = sample.sample(queries, min(options.verify_texts, len(queries))) or list(SAMPLE_QUERIES)
        record["max_abs_diff"] = verify_sparse_tokenize(model, tokenize.path, sample_queries)
        record["verified_texts"] = len(sample_queries)
        exports[tokenize.kind] = record
    ctx.log.info("sparse_exported", **{kind: r["bytes"] for kind, r in exports.items()})
    return exports
