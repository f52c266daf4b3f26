"""Document clean-up, one document at a time: markup, whitespace, length, duplicates, passages.

Every document removed is counted under its reason, for the manifest.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Iterator

from osft.common.corpus import Document
from osft.common.spec.extract import Cleaning
from osft.extractor.digest_set import DigestSet
from osft.extractor.html_text import strip_html
from osft.extractor.near_duplicates import NearDuplicateFilter
from osft.extractor.passages import PassageSplitter

_WHITESPACE = re.compile(r"\s+")
LENGTH_BUCKETS = (100, 300, 1000, 3000, 10000)


def normalize_whitespace(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def length_bucket(chars: int) -> str:
    for bound in LENGTH_BUCKETS:
        if chars < bound:
            return f"<{bound}"
    return f">={LENGTH_BUCKETS[-1]}"


def digest64(text: str) -> int:
    """A 64-bit content hash; a set of these costs far less memory than a set of texts."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


class DocumentCleaner:
    """Applies the spec's cleaning rules to a stream of documents, yielding the corpus entries.

    Order: strip markup (when asked), normalize whitespace, drop short documents, drop repeated
    ids, drop exact duplicates (hash of the lower-cased text), drop near duplicates (MinHash), then
    split long documents into passages (ids ``<id>#p<n>``) or truncate them. The tail of a
    document past ``max_passages_per_doc`` passages is dropped and counted (``tail_over_passage_cap``).

    Args:
        options: the spec's ``cleaning`` section.
        splitter: a PassageSplitter when ``max_passage_tokens`` is set, else None.
    """

    def __init__(self, options: Cleaning, splitter: PassageSplitter | None = None) -> None:
        self.options = options
        self.splitter = splitter
        self.removed: Counter[str] = Counter()
        self.documents_split = 0
        self.passages_from_splits = 0
        self._seen_text = DigestSet()
        self._seen_ids = DigestSet()
        self._near = (
            NearDuplicateFilter(options.near_duplicate_threshold, options.near_duplicate_num_perm)
            if options.dedup_near
            else None
        )

    def _prepare(self, text: str) -> str:
        if self.options.strip_html:
            text = strip_html(text)
        return normalize_whitespace(text) if self.options.normalize_whitespace else text.strip()

    def clean(self, doc: Document) -> list[Document]:
        """The corpus entries one document becomes: none, itself, or its passages."""
        text, title = self._prepare(doc["text"]), self._prepare(doc["title"])
        if len(text) < self.options.min_chars:
            self.removed["too_short"] += 1
            return []
        id_key = digest64(doc["id"])
        if id_key in self._seen_ids:
            self.removed["duplicate_id"] += 1
            return []
        if self.options.dedup_exact:
            text_key = digest64(text.lower())
            if text_key in self._seen_text:
                self.removed["exact_duplicate"] += 1
                return []
            self._seen_text.add(text_key)
        if self._near is not None and self._near.is_duplicate(text):
            self.removed["near_duplicate"] += 1
            return []
        self._seen_ids.add(id_key)
        if self.splitter is None:
            return [{"id": doc["id"], "title": title, "text": text}]
        passages = self.splitter.split(text)
        if len(passages) == 1 and passages[0] == text:
            return [{"id": doc["id"], "title": title, "text": text}]
        self.documents_split += 1
        if len(passages) == 1:  # truncated: long_docs is 'truncate', or the cap is one passage
            return [{"id": doc["id"], "title": title, "text": passages[0]}]
        self.passages_from_splits += len(passages)
        return [{"id": f"{doc['id']}#p{n}", "title": title, "text": p} for n, p in enumerate(passages)]

    def clean_all(self, docs: Iterable[Document]) -> Iterator[Document]:
        for doc in docs:
            yield from self.clean(doc)

    @property
    def removed_counts(self) -> dict[str, int]:
        counts = dict(self.removed)
        if self.splitter is not None and self.splitter.dropped:
            counts["tail_over_passage_cap"] = self.splitter.dropped
        return counts
