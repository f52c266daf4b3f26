"""The smart-defaults tables for training: epochs and learning rate by number of pairs, and the offline cap.

They live in the common package so that ``osft estimate`` applies the same rules wherever it runs (the cost
guard runs on the extractor image, which has no trainer); ``osft.trainer.defaults`` chooses the rest
(batch size, loss, sequence length) and records why. Evidence: ``docs/benchmarks.md``.
"""

from __future__ import annotations

from typing import NamedTuple

from osft.common.spec.training import Training

# (upper bound on training pairs, epochs, learning rate). Conservative for synthetic pairs:
# small sets get more passes, large ones one pass; the rate stays low enough not to erase the base.
DEFAULTS_BY_PAIRS: tuple[tuple[int, float, float], ...] = (
    (1_000, 3.0, 2e-5),
    (10_000, 1.0, 2e-5),
    (100_000, 1.0, 1e-5),
    (10**12, 1.0, 5e-6),
)
# Offline (no-LLM) pseudo-queries: more of them did not help on SciFact (docs/benchmarks.md, full corpus,
# all-MiniLM-L6-v2): 1,000 pairs for one epoch moved nDCG@10 by +0.4 to +0.5, 2,000 and 3,000 pairs by
# -0.35 and -0.6. Past a small sample they teach the generator's habits rather than the domain.
OFFLINE_PAIRS_CAP = 1_000
OFFLINE_EPOCHS = 1.0
# With a query log (real queries paired by the hybrid teacher), the log carries the gain and offline pairs
# dilute it: SciFact, 303 log pairs for 3 epochs beside 40 offline pairs (about 1:8): +1.94, +2.64 and +1.96
# nDCG@10 (three seeds; +1.33 through this default); beside 1,000 offline pairs for one epoch: +0.20 to +1.80
# (docs/benchmarks.md).
# So offline pairs are kept at an eighth of the log pairs, and the epochs follow the table. A log of fewer
# pairs than that cannot carry the training: the offline rule stays.
LOG_PAIRS_PER_OFFLINE_PAIR = 8
# Weight merging (training.merge): the dense train stage holds out a tenth of the generated pairs (at most
# merge.max_queries) to choose the ratio on, after the cap and before the epochs are chosen. Fewer held-out pairs
# than MIN_MERGE_VALIDATION cannot tell ratios apart (ties go to the smaller ratio: the base): merging is then
# skipped and every pair is trained on.
MERGE_VALIDATION_SHARE = 10
MIN_MERGE_VALIDATION = 5
# Each merge ratio is scored on the validation queries over their positives plus this many other documents.
MERGE_CORPUS_SAMPLE = 2000
# Batch size by model size: in-batch negatives improve with size, memory bounds it. cached-mnrl computes the
# loss in mini-batches, so its batch can be much larger. Sparse models: each text's MLM logits are
# seq_len x vocab (30,522) floats, far more than a dense model's.
BATCH_BY_MODEL_SIZE: dict[str, int] = {"small": 64, "base": 32, "large": 16}
CACHED_MNRL_BATCH = 256
SPARSE_BATCH_SIZE = 16


def log_leads(log_pairs: int) -> bool:
    """True when a query log has enough pairs to lead the training (see ``LOG_PAIRS_PER_OFFLINE_PAIR``)."""
    return log_pairs >= LOG_PAIRS_PER_OFFLINE_PAIR


def table_row(train_pairs: int) -> tuple[int, float, float]:
    """(bound, epochs, learning rate) of the first ``DEFAULTS_BY_PAIRS`` row covering ``train_pairs``."""
    return next(row for row in DEFAULTS_BY_PAIRS if train_pairs <= row[0])


def offline_pairs_cap(training: Training, provider: str, log_pairs: int = 0) -> tuple[int | None, str | None]:
    """How many generated training pairs to sample, and why when it is this module's choice rather than the spec's."""
    if training.max_train_pairs is not None or provider != "offline":
        return training.max_train_pairs, None
    if log_leads(log_pairs):
        cap = min(OFFLINE_PAIRS_CAP, log_pairs // LOG_PAIRS_PER_OFFLINE_PAIR)
        return cap, (
            f"{cap:,} offline pairs at most beside {log_pairs:,} query-log pairs (1 per "
            f"{LOG_PAIRS_PER_OFFLINE_PAIR}): more diluted the log's gain on the benchmark (docs/benchmarks.md)"
        )
    return OFFLINE_PAIRS_CAP, (
        f"{OFFLINE_PAIRS_CAP:,} offline pairs at most: more did not help on the benchmark (docs/benchmarks.md)"
    )


def offline_epochs_rule(provider: str, log_pairs: int) -> bool:
    """True when the offline rule (one epoch) sets the epochs: offline pseudo-queries without a query log."""
    return provider == "offline" and not log_leads(log_pairs)


def default_epochs(training: Training, train_pairs: int, provider: str, log_pairs: int = 0) -> float:
    """The spec's epochs, else the offline rule or the table's row for ``train_pairs``."""
    if training.epochs is not None:
        return training.epochs
    return OFFLINE_EPOCHS if offline_epochs_rule(provider, log_pairs) else table_row(train_pairs)[1]


def merge_validation_size(pairs: int, wanted: int) -> int:
    """How many of ``pairs`` generated pairs to hold out for choosing the merge ratio: up to ``wanted``, a tenth."""
    return min(wanted, max(1, pairs // MERGE_VALIDATION_SHARE))


def merge_validation_count(training: Training, pairs: int) -> int:
    """The pairs the dense train stage holds out for the merge ratio: 0 without merging or when too few to use."""
    if not training.merge.enabled:
        return 0
    count = merge_validation_size(pairs, training.merge.max_queries)
    return count if count >= MIN_MERGE_VALIDATION else 0


class TrainPlan(NamedTuple):
    """What the train stage will do with its pairs, by the rules above."""

    pairs: int
    """Pairs trained on: generated pairs (capped, less merge validation) plus query-log pairs."""
    epochs: float
    merge_validation: int = 0
    """Generated pairs held out to choose the merge ratio on (never trained on)."""


def pairs_and_epochs(
    training: Training, pairs: int, provider: str, log_pairs: int, model_type: str = "dense"
) -> TrainPlan:
    """The pairs the train stage will use and its epochs, for ``pairs`` generated pairs.

    Dense (``osft.trainer.train_stage``): the cap (``max_train_pairs`` or the offline cap), then the merge
    validation split, then the query-log pairs added; the epochs follow the pairs left. Sparse
    (``osft.trainer.sparse.train``): ``max_train_pairs`` only, no query log, no merging, the table's epochs.
    """
    if model_type == "sparse":
        pairs = min(pairs, training.max_train_pairs or pairs)
        return TrainPlan(pairs, training.epochs or table_row(pairs)[1])
    cap, _ = offline_pairs_cap(training, provider, log_pairs)
    generated = min(pairs, cap) if cap is not None else pairs  # the cap is on generated pairs only
    validation = merge_validation_count(training, generated)
    pairs = generated - validation + log_pairs
    return TrainPlan(pairs, default_epochs(training, pairs, provider, log_pairs), validation)
