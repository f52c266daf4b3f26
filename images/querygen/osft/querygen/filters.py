"""Query filters: normalize, then drop empty, too short, too long, copied and duplicate queries.

Each removal is counted by reason (``empty``, ``too_short``, ``too_long``,
``copied_from_document``, ``repeats_example``, ``duplicate``; ``round_trip`` is counted by the
stage), and the counts go into the manifest.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator

from osft.common.corpus import query_key
from osft.common.spec.querygen import DEFAULT_COPIED_WORDS_LLM, QueryFilters
from osft.querygen.offline import GeneratedQuery

_SPACES = re.compile(r"\s+")
_LIST_MARKER = re.compile(r"^(?:\d+[.)]|[-*•])\s+")
_LABEL = re.compile(r"^(?:query|question|q)\s*\d*\s*[:.]\s+", re.IGNORECASE)
_WORD = re.compile(r"\w+")


def normalize_query(text: str) -> str:
    """Unicode NFKC, one space between words, no list markers, labels or wrapping quotes."""
    text = unicodedata.normalize("NFKC", text)
    text = _SPACES.sub(" ", text).strip()
    text = _LIST_MARKER.sub("", text)
    text = _LABEL.sub("", text)
    return text.strip().strip("\"'`“”‘’").strip()


def _spans(text: str, words: int) -> set[str]:
    """Every run of ``words`` consecutive lower-case words of ``text`` (none when ``words`` is 0)."""
    if not words:
        return set()
    tokens = _WORD.findall(text.lower())
    return {" ".join(tokens[i : i + words]) for i in range(len(tokens) - words + 1)}


def copied_words(provider: str, filters: QueryFilters) -> int | None:
    """The copy threshold in force: the spec's, else 10 words for LLMs and none for offline and user pairs.

    Offline queries are cut from the document on purpose, and user pairs are taken as given.
    """
    if filters.max_copied_words is not None:
        return filters.max_copied_words
    return DEFAULT_COPIED_WORDS_LLM if provider in ("bedrock", "bedrock-batch", "openai") else None


def copies_span(query: str, document: str, span_words: int) -> bool:
    """True when ``span_words`` consecutive words of the query appear verbatim in the document."""
    q = [w.lower() for w in _WORD.findall(query)]
    if len(q) < span_words:
        return False
    doc = " " + " ".join(w.lower() for w in _WORD.findall(document)) + " "
    return any(" " + " ".join(q[i : i + span_words]) + " " in doc for i in range(len(q) - span_words + 1))


class QueryFilter:
    """Applies ``querygen.filters`` to generated queries, counting removals per reason in ``removed``.

    Args:
        options: the filter settings.
        max_copied_words: the copy threshold in force (see ``copied_words``), None for no check.
        examples: the few-shot example queries shown to the model. Small models often hand them
            back as their own queries; such a query would pair a real query with the wrong
            document (and leak it into evaluation), so a query that repeats an example, or shares
            ``max_copied_words`` consecutive words with one, is dropped.
    """

    def __init__(self, options: QueryFilters, max_copied_words: int | None, examples: Iterable[str] = ()) -> None:
        self.options = options
        self.max_copied_words = max_copied_words
        self.removed: Counter[str] = Counter()
        self._seen: set[str] = set()
        examples = [normalize_query(example) for example in examples]
        self._example_keys = {query_key(example) for example in examples}
        self._example_spans = {span for example in examples for span in _spans(example, max_copied_words or 0)}

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
        if self.max_copied_words and copies_span(text, document_text, self.max_copied_words):
            self.removed["copied_from_document"] += 1
            return None
        key = query_key(text)
        if self._repeats_example(text, key):
            self.removed["repeats_example"] += 1
            return None
        if self.options.dedupe and key in self._seen:
            self.removed["duplicate"] += 1
            return None
        self._seen.add(key)
        return GeneratedQuery(query.doc_id, text, query.kind)

    def _repeats_example(self, text: str, key: str) -> bool:
        if key in self._example_keys:
            return True
        return bool(self._example_spans) and not self._example_spans.isdisjoint(
            _spans(text, self.max_copied_words or 0)
        )

    def apply(self, queries: Iterable[tuple[GeneratedQuery, str]]) -> Iterator[GeneratedQuery]:
        for query, document_text in queries:
            kept = self.keep(query, document_text)
            if kept is not None:
                yield kept
