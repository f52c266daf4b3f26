"""Smart defaults: hyperparameters chosen from the data size and the model when the spec leaves them unset.

The epochs and learning-rate tables live in ``osft.common.training_defaults`` (``osft estimate`` applies
them too); the rest is below. The train manifest records each chosen value and why
(``TrainStats.chosen_because``), and ``docs/trainer.md`` prints the same tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from osft.common.spec.training import Training
from osft.common.training_defaults import (  # noqa: F401 - re-exported: the trainer's rules in one place
    BATCH_BY_MODEL_SIZE,
    CACHED_MNRL_BATCH,
    DEFAULTS_BY_PAIRS,
    OFFLINE_EPOCHS,
    OFFLINE_PAIRS_CAP,
    offline_epochs_rule,
    offline_pairs_cap,
    table_row,
)

DEFAULT_WARMUP_RATIO = 0.1
# On a CPU, training keeps every layer's activations for the backward pass. With dropout on, PyTorch's
# attention takes its quadratic path: per text and layer, seq² x heads scores at 12 bytes (scores, softmax,
# dropout), plus per token about 12 hidden-size and 3 intermediate-size fp32 vectors. When one MNRL step would
# need more than CPU_ACTIVATION_SHARE of the machine's memory, the loss is computed in mini-batches instead
# (cached-mnrl: the same gradients). Fitted on all-MiniLM-L6-v2 (scripts/bench_train_memory.py), measured GiB
# (estimate): 96 texts of 256 tokens 10.8 (10.1), 129 of 256 13.1 (13.6), 24 of 512 7.5 (7.6), 48 of 512 15.9
# (15.2). 96 texts of 512 (batch 32 with a hard negative, ~30 GiB) were killed by the kernel on a 24 GiB
# machine; cached-mnrl with mini-batches of 8 trained that batch in 5.4 GB at the same speed.
CPU_ACTIVATION_SHARE = 0.7
ATTENTION_BYTES_PER_SCORE = 12
HIDDEN_VECTORS_PER_TOKEN = 12
INTERMEDIATE_VECTORS_PER_TOKEN = 3
# max_seq_length: cover this share of the corpus' token lengths, rounded up to a multiple of 32,
# never below MIN_SEQ_LENGTH nor above the model's own limit.
SEQ_LENGTH_PERCENTILE = 0.95
MIN_SEQ_LENGTH = 64


@dataclass(frozen=True)
class Hyperparameters:
    epochs: float
    learning_rate: float
    batch_size: int
    warmup_ratio: float
    max_steps: int | None
    reasons: dict[str, str]


@dataclass(frozen=True)
class LossChoice:
    name: str
    mini_batch_size: int
    reason: str | None = None


@dataclass(frozen=True)
class EncoderShape:
    """What sets a transformer's activation memory: read from its HF config."""

    layers: int
    heads: int
    hidden: int
    intermediate: int

    @classmethod
    def of(cls, config) -> EncoderShape:
        return cls(config.num_hidden_layers, config.num_attention_heads, config.hidden_size, config.intermediate_size)

    def activation_bytes(self, max_seq_length: int) -> int:
        """Activations one text of ``max_seq_length`` tokens keeps for the backward pass (see above)."""
        attention = max_seq_length**2 * self.heads * ATTENTION_BYTES_PER_SCORE
        per_token = 4 * (HIDDEN_VECTORS_PER_TOKEN * self.hidden + INTERMEDIATE_VECTORS_PER_TOKEN * self.intermediate)
        return self.layers * (attention + max_seq_length * per_token)


def choose_contrastive_loss(
    training: Training,
    *,
    texts_per_step: int,
    max_seq_length: int,
    shape: EncoderShape,
    memory_bytes: int,
    on_gpu: bool,
) -> LossChoice:
    """``mnrl`` or, when its step would not fit in CPU memory, ``cached-mnrl``; the spec's ``loss`` wins."""
    if training.loss is not None or on_gpu:
        return LossChoice(training.loss or "mnrl", training.mini_batch_size)
    per_text = shape.activation_bytes(max_seq_length)
    budget = CPU_ACTIVATION_SHARE * memory_bytes
    if texts_per_step * per_text <= budget:
        return LossChoice("mnrl", training.mini_batch_size)
    mini = training.mini_batch_size
    while mini > 1 and mini * per_text > budget:
        mini //= 2
    return LossChoice(
        "cached-mnrl",
        mini,
        f"cached-mnrl in mini-batches of {mini}: one step of {texts_per_step} texts x {max_seq_length} tokens "
        f"would hold ~{_gib(texts_per_step * per_text)} of activations on the CPU, more than "
        f"{CPU_ACTIVATION_SHARE:.0%} of the {_gib(memory_bytes)} here (same gradients as mnrl)",
    )


def _gib(size: float) -> str:
    gib = size / 2**30
    return f"{gib:.0f} GiB" if gib >= 10 else f"{gib:.2g} GiB"


def choose_hyperparameters(
    training: Training, train_pairs: int, model_size: str = "base", provider: str = "", log_pairs: int = 0
) -> Hyperparameters:
    """Fill the unset hyperparameters from the tables; ``reasons`` says why for each filled value.

    ``train_pairs`` counts every pair, ``log_pairs`` those from a query log among them.
    """
    reasons: dict[str, str] = {}
    bound, epochs, rate = table_row(train_pairs)
    if offline_epochs_rule(provider, log_pairs):
        epochs = OFFLINE_EPOCHS
        if training.epochs is None:
            reasons["epochs"] = f"{epochs:g} for offline pseudo-queries: more passes learn the generator's habits"
    elif training.epochs is None:
        reasons["epochs"] = f"{epochs:g} for up to {bound:,} training pairs (have {train_pairs:,})"
    if training.learning_rate is None:
        reasons["learning_rate"] = f"{rate:g} for up to {bound:,} training pairs"
    if training.batch_size is None:
        if training.loss == "cached-mnrl":
            wanted = CACHED_MNRL_BATCH
            why = f"cached-mnrl keeps memory at mini_batch_size={training.mini_batch_size}, so a large batch is cheap"
        else:
            wanted = BATCH_BY_MODEL_SIZE.get(model_size, BATCH_BY_MODEL_SIZE["base"])
            why = f"in-batch negatives benefit from size; {wanted} fits a {model_size} model in memory"
        batch = min(wanted, max(2, train_pairs))
        reasons["batch_size"] = f"{batch}: {why}" + (f" (capped by {train_pairs} pairs)" if batch < wanted else "")
    else:
        batch = training.batch_size
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


def choose_max_seq_length(token_lengths: Sequence[int], model_limit: int) -> tuple[int, str]:
    """A max_seq_length covering ``SEQ_LENGTH_PERCENTILE`` of the documents, and why.

    Shorter sequences train and encode faster (attention is quadratic in length); cutting at a
    high percentile loses the tail of a few long documents only.
    """
    if not token_lengths:
        return model_limit, f"{model_limit}: the model's limit (no documents to measure)"
    ordered = sorted(token_lengths)
    index = min(len(ordered) - 1, math.ceil(SEQ_LENGTH_PERCENTILE * len(ordered)) - 1)
    covering = ordered[index]
    rounded = 32 * math.ceil(covering / 32)
    chosen = max(MIN_SEQ_LENGTH, min(model_limit, rounded))
    return chosen, (
        f"{chosen}: {SEQ_LENGTH_PERCENTILE:.0%} of {len(ordered):,} sampled documents have at most "
        f"{covering} tokens (rounded up to a multiple of 32, within {MIN_SEQ_LENGTH}..{model_limit})"
    )
