"""Query filters: normalize, then drop empty, too short, too long and duplicate queries, counting each reason."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator

from osft.common.spec.querygen import QueryFilters
from osft.querygen.offline import GeneratedQuery

_SPACES = re.compile(r"\s+")


def normalize_query(text: str) -> str:
    return _SPACES.sub(" ", text).strip().strip("\"'")


class QueryFilter:
    def __init__(self, options: QueryFilters) -> None:
        self.options = options
        self.removed: Counter[str] = Counter()
        self._seen: set[str] = set()

    def keep(self, query: GeneratedQuery, document_text: str) -> GeneratedQuery | None:
        text = normalize_query(query.query)
        if not text:
            self.removed["empty"] += 1
            return None
        if len(text) < self.options.min_chars:
            self.removed["too_short"] += 1
            return None
        if len(text) > self.options.max_chars:
            self.removed["too_long"] += 1
            return None
        if self.options.max_copied_words and copies_span(text, document_text, self.options.max_copied_words):
            self.removed["copied_from_document"] += 1
            return None
        key = text.lower()
        if self.options.dedupe and key in self._seen:
            self.removed["duplicate"] += 1
            return None
        self._seen.add(key)
        return GeneratedQuery(query.doc_id, text, query.kind)

    def apply(self, queries: Iterable[tuple[GeneratedQuery, str]]) -> Iterator[GeneratedQuery]:
        for query, document_text in queries:
            kept = self.keep(query, document_text)
            if kept is not None:
                yield kept


def copies_span(query: str, document: str, span_words: int) -> bool:
    """True when ``span_words`` consecutive words of the query appear verbatim in the document."""
    q = query.lower().split()
    doc = " " + " ".join(document.lower().split()) + " "
    return any(" " + " ".join(q[i : i + span_words]) + " " in doc for i in range(len(q) - span_words + 1))
