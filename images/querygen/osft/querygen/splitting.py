"""Split pairs into train and held-out by document, so no held-out document was seen in training."""

from __future__ import annotations

import random
from collections.abc import Sequence


def split_documents(doc_ids: Sequence[str], heldout_fraction: float, max_heldout: int, seed: int) -> set[str]:
    """The ids of the held-out documents: a seeded sample of ``heldout_fraction`` (at most ``max_heldout``)."""
    unique = sorted(set(doc_ids))
    count = min(max_heldout, round(len(unique) * heldout_fraction))
    if heldout_fraction > 0 and len(unique) > 1:
        count = max(1, count)
    return set(random.Random(seed).sample(unique, count))
