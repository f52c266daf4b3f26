"""Smart defaults: hyperparameters chosen from the data size and the model when the spec leaves them unset.

The rule lives in one table; the train manifest records each chosen value and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from osft.common.spec.training import Training

# (upper bound on training pairs, epochs, learning rate). Conservative for synthetic pairs:
# small sets get more passes, large ones one pass; the rate stays low enough not to erase the base.
DEFAULTS_BY_PAIRS: tuple[tuple[int, float, float], ...] = (
    (1_000, 3.0, 2e-5),
    (10_000, 1.0, 2e-5),
    (100_000, 1.0, 1e-5),
    (10**12, 1.0, 5e-6),
)
DEFAULT_BATCH_SIZE = 32
DEFAULT_WARMUP_RATIO = 0.1


@dataclass(frozen=True)
class Hyperparameters:
    epochs: float
    learning_rate: float
    batch_size: int
    warmup_ratio: float
    max_steps: int | None
    reasons: dict[str, str]


def choose_hyperparameters(training: Training, train_pairs: int) -> Hyperparameters:
    reasons: dict[str, str] = {}
    bound, epochs, rate = next(row for row in DEFAULTS_BY_PAIRS if train_pairs <= row[0])
    if training.epochs is None:
        reasons["epochs"] = f"{epochs:g} for up to {bound:,} training pairs (have {train_pairs:,})"
    if training.learning_rate is None:
        reasons["learning_rate"] = f"{rate:g} for up to {bound:,} training pairs"
    batch = training.batch_size or min(DEFAULT_BATCH_SIZE, max(2, train_pairs))
    if training.batch_size is None:
        reasons["batch_size"] = f"{batch}: in-batch negatives benefit from size; {DEFAULT_BATCH_SIZE} fits CPU memory"
    if training.warmup_ratio is None:
        reasons["warmup_ratio"] = f"{DEFAULT_WARMUP_RATIO:g}: the usual warm-up for contrastive fine-tuning"
    return Hyperparameters(
        epochs=training.epochs or epochs,
        learning_rate=training.learning_rate or rate,
        batch_size=batch,
        warmup_ratio=DEFAULT_WARMUP_RATIO if training.warmup_ratio is None else training.warmup_ratio,
        max_steps=training.max_steps,
        reasons=reasons,
    )
