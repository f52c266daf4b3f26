"""The smart-defaults tables for training: epochs and learning rate by number of pairs, and the offline cap.

They live in the common package so that ``osft estimate`` applies the same rules wherever it runs (the cost
guard runs on the extractor image, which has no trainer); ``osft.trainer.defaults`` chooses the rest
(batch size, loss, sequence length) and records why. Evidence: ``docs/benchmarks.md``.
"""

from __future__ import annotations

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


def table_row(train_pairs: int) -> tuple[int, float, float]:
    """(bound, epochs, learning rate) of the first ``DEFAULTS_BY_PAIRS`` row covering ``train_pairs``."""
    return next(row for row in DEFAULTS_BY_PAIRS if train_pairs <= row[0])


def offline_pairs_cap(training: Training, provider: str) -> tuple[int | None, str | None]:
    """How many training pairs to sample, and why when it is this module's choice rather than the spec's."""
    if training.max_train_pairs is not None or provider != "offline":
        return training.max_train_pairs, None
    return OFFLINE_PAIRS_CAP, (
        f"{OFFLINE_PAIRS_CAP:,} offline pairs at most: more did not help on the benchmark (docs/benchmarks.md)"
    )


def default_epochs(training: Training, train_pairs: int, provider: str) -> float:
    """The spec's epochs, else the offline rule or the table's row for ``train_pairs``."""
    if training.epochs is not None:
        return training.epochs
    return OFFLINE_EPOCHS if provider == "offline" else table_row(train_pairs)[1]


def pairs_and_epochs(training: Training, pairs: int, provider: str, log_pairs: int) -> tuple[int, float]:
    """The pairs the train stage will use (generated pairs capped, plus query-log pairs) and its epochs."""
    cap, _ = offline_pairs_cap(training, provider)
    pairs = (min(pairs, cap) if cap else pairs) + log_pairs  # the cap is on generated pairs only
    return pairs, default_epochs(training, pairs, provider)
