"""Uniform, seeded reservoir sampling: a sample of N from a stream of any length in O(N) memory."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class Reservoir(Generic[T]):
    """Algorithm R (Vitter, "Random sampling with a reservoir", 1985).

    After ``offer`` was called for every item, ``items`` is a uniform sample of ``min(k, seen)``
    of them; the same seed and stream give the same sample.
    """

    def __init__(self, k: int, seed: int) -> None:
        self.k = k
        self.seen = 0
        self.items: list[T] = []
        self._rng = random.Random(seed)

    def offer(self, item: T) -> None:
        if self.seen < self.k:
            self.items.append(item)
        else:
            slot = self._rng.randint(0, self.seen)
            if slot < self.k:
                self.items[slot] = item
        self.seen += 1


def reservoir_sample(items: Iterable[T], k: int, seed: int) -> list[T]:
    reservoir: Reservoir[T] = Reservoir(k, seed)
    for item in items:
        reservoir.offer(item)
    return reservoir.items
