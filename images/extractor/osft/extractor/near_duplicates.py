"""Near-duplicate detection with MinHash and locality-sensitive hashing (datasketch).

Each kept document's word 3-gram set is hashed into a MinHash. LSH finds the kept documents that
may be similar (tuned below the threshold, so pairs just above it are not missed), and a candidate
counts only when the MinHash estimate of the Jaccard similarity reaches the threshold. Memory grows
with the number of kept documents (the signature and LSH band keys: about 1-2 KB each at 64
permutations), never with their text.

Reference: Broder, "On the resemblance and containment of documents" (1997).
"""

from __future__ import annotations

import re

import numpy as np
from datasketch import MinHash, MinHashLSH

_WORD = re.compile(r"\w+")
SHINGLE_WORDS = 3
LSH_MARGIN = 0.15


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
        self.threshold = threshold
        self.lsh = MinHashLSH(threshold=max(0.05, threshold - LSH_MARGIN), num_perm=num_perm)
        self._template = MinHash(num_perm=num_perm, seed=seed)
        self._signatures: list[np.ndarray] = []

    def is_duplicate(self, text: str) -> bool:
        template = self._template
        signature = MinHash(self.num_perm, self.seed, permutations=template.permutations, scheme=template.scheme)
        signature.update_batch(list(shingles(text)))
        values = signature.hashvalues.astype(np.uint32)  # affine32 hash values fit 32 bits
        for key in self.lsh.query(signature):
            if float(np.mean(self._signatures[key] == values)) >= self.threshold:
                return True
        self.lsh.insert(len(self._signatures), signature, check_duplication=False)
        self._signatures.append(values)
        return False
