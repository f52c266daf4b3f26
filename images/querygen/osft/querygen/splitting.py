"""Split pairs into train and held-out by document, so no held-out document was seen in training."""

from __future__ import annotations

import random
from collections.abc import Sequence

from osft.common.spec.querygen import heldout_count


def split_documents(doc_ids: Sequence[str], heldout_fraction: float, max_heldout: int, seed: int) -> set[str]:
    """The ids of the held-out documents: a seeded sample of ``heldout_fraction`` (at most ``max_heldout``)."""
    unique = sorted(set(doc_ids))
    return set(random.Random(seed).sample(unique, heldout_count(len(unique), heldout_fraction, max_heldout)))
