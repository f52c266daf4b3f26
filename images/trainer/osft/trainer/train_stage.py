"""The train stage: fine-tune the base model on the querygen pairs with sentence-transformers' trainer."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from osft.common.corpus import document_text, load_corpus, read_pairs
from osft.common.errors import OsftError
from osft.common.manifests import TrainStats
from osft.common.progress import progress_enabled
from osft.common.stage import StageContext, StageDefinition, StageResult
from osft.trainer.defaults import choose_hyperparameters
from osft.trainer.models import load_sentence_transformer, preset_for

MODEL_DIR = "model"
CHECKPOINT_DIR = "checkpoints"


def last_checkpoint(folder: Path) -> str | None:
    """The newest complete ``checkpoint-N`` folder the HF trainer wrote, if any."""
    candidates = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    if not candidates:
        return None
    return str(max(candidates, key=lambda p: int(p.name.rsplit("-", 1)[1])))


def run(ctx: StageContext) -> StageResult:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    spec, training = ctx.spec, ctx.spec.training
    if spec.model.type != "dense":
        raise OsftError("model.type 'sparse' is not supported by this trainer version", hint="use model.type 'dense'")
    pairs = read_pairs(ctx.input_path("querygen/train.jsonl"))
    if training.max_train_pairs and len(pairs) > training.max_train_pairs:
        pairs = random.Random(training.seed).sample(pairs, training.max_train_pairs)
    corpus = load_corpus(ctx)
    preset = preset_for(spec.model.base)
    query_prefix = spec.model.query_prefix if spec.model.query_prefix is not None else preset.query_prefix
    doc_prefix = spec.model.document_prefix if spec.model.document_prefix is not None else preset.document_prefix
    hp = choose_hyperparameters(training, len(pairs))

    max_len = spec.model.max_seq_length or preset.max_seq_length
    model = load_sentence_transformer(spec.model.base, Path(ctx.resolve(".")), max_seq_length=max_len)
    dataset = Dataset.from_dict(
        {
            "anchor": [query_prefix + p["query"] for p in pairs],
            "positive": [doc_prefix + document_text(corpus[p["doc_id"]]) for p in pairs],
        }
    )
    if training.loss == "cached-mnrl":
        loss = CachedMultipleNegativesRankingLoss(model, mini_batch_size=training.mini_batch_size)
    else:
        loss = MultipleNegativesRankingLoss(model)

    checkpoints = ctx.work / CHECKPOINT_DIR
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=hp.epochs,
        max_steps=hp.max_steps or -1,
        per_device_train_batch_size=hp.batch_size,
        learning_rate=hp.learning_rate,
        warmup_ratio=hp.warmup_ratio,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="steps",
        save_steps=training.checkpoint_steps,
        save_total_limit=2,
        logging_steps=max(1, min(50, training.checkpoint_steps)),
        seed=training.seed,
        report_to="none",
        disable_tqdm=not progress_enabled(),
        dataloader_num_workers=0,
        use_cpu=os.environ.get("OSFT_FORCE_CPU") == "1",
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    resume = last_checkpoint(checkpoints)
    if resume:
        ctx.log.info("training_resumed", checkpoint=resume)
    clock = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=resume)
    train_seconds = time.perf_counter() - clock
    model.save(str(ctx.output_path(MODEL_DIR)))

    stats = TrainStats(
        base_model=spec.model.base,
        model_type=spec.model.type,
        model_dir=f"train/{MODEL_DIR}",
        train_pairs=len(pairs),
        steps=output.global_step,
        hyperparameters={
            "epochs": hp.epochs,
            "learning_rate": hp.learning_rate,
            "batch_size": hp.batch_size,
            "warmup_ratio": hp.warmup_ratio,
            "max_steps": hp.max_steps,
            "max_seq_length": max_len,
            "loss": training.loss,
            "query_prefix": query_prefix,
            "document_prefix": doc_prefix,
        },
        chosen_because=hp.reasons,
        final_loss=output.training_loss,
    )
    notes = [f"{name} = {why}" for name, why in hp.reasons.items()]
    return StageResult(
        stats=stats,
        outputs=[MODEL_DIR],
        counts={"train_pairs": len(pairs), "steps": output.global_step},
        notes=notes,
        steps={"train": round(train_seconds, 3)},
    )


STAGE = StageDefinition(name="train", upstream=("extract", "querygen"), spec_sections=("model", "training"), run=run)
