"""Bring-your-own pairs: labelled (query, passage) pairs become a corpus plus ``pairs.jsonl``.

Passages get stable ids from a hash of their text, so the same passage in several pairs is one
corpus document; identical pairs are written once. Query generation then uses these pairs as
they are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osft.common.storage import atomic_path
from osft.extractor.bad_records import BadRecordPolicy
from osft.extractor.cleaning import digest64, normalize_whitespace
from osft.extractor.digest_set import DigestSet
from osft.extractor.file_formats import RawRecord
from osft.extractor.html_text import strip_html
from osft.extractor.records import valid_unicode

QUERY_KEYS = ("query", "text_a", "anchor", "question")
PASSAGE_KEYS = ("passage", "text_b", "positive", "document")
PAIRS_FILE = "pairs.jsonl"


def text_id(prefix: str, text: str) -> str:
    return f"{prefix}-{hashlib.blake2b(text.encode(), digest_size=8).hexdigest()}"


@dataclass(frozen=True)
class LabelledPair:
    query: str
    passage: str


def _first(record: dict[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = record.get(key)
        if value is not None and str(value).strip():
            return valid_unicode(str(value))
    return ""


def labelled_pairs(
    records: Iterator[RawRecord], policy: BadRecordPolicy, *, html: bool, whitespace: bool
) -> Iterator[LabelledPair]:
    """Pairs from records holding one query key and one passage key; others go to the policy."""
    for record in records:
        query, passage = _first(record.data, QUERY_KEYS), _first(record.data, PASSAGE_KEYS)
        if not query or not passage:
            missing = "query (query/text_a/anchor)" if not query else "passage (passage/text_b/positive)"
            keys = ", ".join(sorted(map(str, record.data))) or "none"
            policy.bad("missing_pair_field", f"no {missing} (record has: {keys})", where=record.where, line=record.line)
            continue
        if html:
            passage = strip_html(passage)
        if whitespace:
            query, passage = normalize_whitespace(query), normalize_whitespace(passage)
        yield LabelledPair(query.strip(), passage.strip())


class PairsWriter:
    """Writes ``pairs.jsonl`` and sends each new passage to the corpus writer once."""

    def __init__(self, path: Path, write_document) -> None:
        self.path = path
        self.write_document = write_document
        self.pairs = 0
        self.duplicates = 0
        self._seen_docs = DigestSet()
        self._seen_pairs = DigestSet()
        self._context = atomic_path(path)
        self._handle = None

    def __enter__(self) -> PairsWriter:
        tmp = self._context.__enter__()
        self._handle = open(tmp, "w", encoding="utf-8")
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._handle is not None
        self._handle.close()
        self._context.__exit__(exc_type, exc, tb)

    def add(self, pair: LabelledPair) -> None:
        assert self._handle is not None
        doc_id, query_id = text_id("p", pair.passage), text_id("q", pair.query)
        pair_key = digest64(f"{query_id}\t{doc_id}")
        if pair_key in self._seen_pairs:
            self.duplicates += 1
            return
        self._seen_pairs.add(pair_key)
        doc_key = digest64(doc_id)
        if doc_key not in self._seen_docs:
            self._seen_docs.add(doc_key)
            self.write_document({"id": doc_id, "title": "", "text": pair.passage})
        self._handle.write(
            json.dumps({"query_id": query_id, "query": pair.query, "doc_id": doc_id}, ensure_ascii=False) + "\n"
        )
        self.pairs += 1
