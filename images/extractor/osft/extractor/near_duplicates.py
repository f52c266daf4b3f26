"""Near-duplicate detection with MinHash and locality-sensitive hashing (datasketch).

Each kept document's word 3-gram set is hashed into a MinHash; a new document whose estimated
Jaccard similarity with a kept one reaches the threshold is a near duplicate. Memory grows with
the number of kept documents (the LSH band keys, a few hundred bytes each), never with their text.

Reference: Broder, "On the resemblance and containment of documents" (1997).
"""

from __future__ import annotations

import re

from datasketch import MinHash, MinHashLSH

_WORD = re.compile(r"\w+")
SHINGLE_WORDS = 3


def shingles(text: str) -> set[bytes]:
    words = _WORD.findall(text.lower())
    if len(words) <= SHINGLE_WORDS:
        return {" ".join(words).encode()}
    return {" ".join(words[i : i + SHINGLE_WORDS]).encode() for i in range(len(words) - SHINGLE_WORDS + 1)}


class NearDuplicateFilter:
    """``is_duplicate(text)`` is True when a near duplicate was seen; otherwise the text is remembered.

    Args:
        threshold: Jaccard similarity at or above which two documents are near duplicates.
        num_perm: MinHash permutations; 64 keeps the error of the estimate near ±0.06.
        seed: fixes the hash permutations, so runs are reproducible.
    """

    def __init__(self, threshold: float, num_perm: int = 64, seed: int = 1) -> None:
        self.num_perm = num_perm
        self.seed = seed
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._template = MinHash(num_perm=num_perm, seed=seed)
        self._count = 0

    def is_duplicate(self, text: str) -> bool:
        template = self._template
        signature = MinHash(self.num_perm, self.seed, permutations=template.permutations, scheme=template.scheme)
        signature.update_batch(list(shingles(text)))
        if self.lsh.query(signature):
            return True
        self.lsh.insert(self._count, signature, check_duplication=False)
        self._count += 1
        return False
