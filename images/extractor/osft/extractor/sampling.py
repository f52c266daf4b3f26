"""Uniform, seeded sampling of N items from a stream of any length, in O(N) memory, whatever the order.

Each item gets a pseudo-random rank from a hash of the seed and its key (a document id), and the N
smallest ranks are kept ("bottom-k" sampling). Unlike a reservoir driven by a random generator, the
sample depends only on which items arrive, not on their order: an OpenSearch index read in parallel
slices arrives in a different order on every run and still gives the same sample. (De-duplication
runs before sampling and keeps the first of two duplicates to arrive, which order can change.)
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


def hash_rank(seed: int, key: str) -> int:
    """A uniform 64-bit rank for ``key``, the same on every machine and run for the same seed."""
    return int.from_bytes(hashlib.blake2b(f"{seed}\x1f{key}".encode(), digest_size=8).digest(), "big")


class BottomKSample(Generic[T]):
    """The ``k`` items with the smallest ``hash_rank(seed, key(item))``.

    After ``offer`` was called for every item, ``items`` is a uniform sample of ``min(k, seen)`` of them,
    ordered by rank; items with the same key share a rank, and the first one offered is kept.

    >>> sample = BottomKSample(2, seed=13, key=str)
    >>> for n in range(10):
    ...     sample.offer(n)
    >>> sample.items == BottomKSample.of(reversed(range(10)), 2, 13, str)
    True
    """

    def __init__(self, k: int, seed: int, key: Callable[[T], str]) -> None:
        self.k = k
        self.seed = seed
        self.key = key
        self.seen = 0
        self._order = 0
        self._heap: list[tuple[int, int, T]] = []  # (-rank, -arrival, item): the largest rank on top

    def offer(self, item: T) -> None:
        self.seen += 1
        if self.k <= 0:
            return
        rank = hash_rank(self.seed, self.key(item))
        self._order += 1
        entry = (-rank, -self._order, item)
        if len(self._heap) < self.k:
            heapq.heappush(self._heap, entry)
        elif (-rank, -self._order) > self._heap[0][:2]:
            heapq.heapreplace(self._heap, entry)

    @property
    def items(self) -> list[T]:
        return [item for _, _, item in sorted(self._heap, key=lambda entry: (-entry[0], -entry[1]))]

    @classmethod
    def of(cls, items: Iterable[T], k: int, seed: int, key: Callable[[T], str]) -> list[T]:
        sample = cls(k, seed, key)
        for item in items:
            sample.offer(item)
        return sample.items
