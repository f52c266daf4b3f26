"""The files stages hand to each other: corpus shards from extract, pairs from querygen.

Documents are ``{"id", "title", "text"}`` objects in ``extract/docs-NNNNN.jsonl.gz``.
Pairs are ``{"query_id", "query", "doc_id", "kind"}`` objects in ``querygen/train.jsonl``
and ``querygen/heldout.jsonl``; an inverse-cloze pair also has ``"cut_query": true``: its
positive is the document without the query sentence.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NotRequired, TypedDict

from osft.common.jsonl import read_jsonl

if TYPE_CHECKING:
    from osft.common.stage import StageContext

_WORD = re.compile(r"\w+")


def query_key(text: str) -> str:
    """A query's lower-case words (NFKC): how queries are compared as duplicates, as repeated
    few-shot examples, and between the query log and the judged queries."""
    return " ".join(_WORD.findall(unicodedata.normalize("NFKC", text).lower()))


class Document(TypedDict):
    id: str
    title: str
    text: str


class Pair(TypedDict):
    query_id: str
    query: str
    doc_id: str
    kind: str
    cut_query: NotRequired[bool]


def document_text(doc: Document) -> str:
    """The text a model sees for a document: title and body, as retrieval models are usually fed."""
    return f"{doc['title']}\n{doc['text']}" if doc.get("title") else doc["text"]


def positive_text(pair: Pair, document: str) -> str:
    """The passage a pair trains on: the document, minus the query sentence for an inverse-cloze pair.

    Left in, the sentence would be found by copying words; cut out, the model has to tie the
    sentence to the rest of its document, which is what a real query asks of it.
    """
    if not pair.get("cut_query"):
        return document
    return " ".join(document.replace(pair["query"], " ").split())


def iter_corpus(ctx: StageContext) -> Iterator[Document]:
    manifest = ctx.upstream("extract")
    for shard in manifest.stats.shards:
        yield from read_jsonl(ctx.input_path(f"extract/{shard}"))  # type: ignore[misc]


def load_corpus(ctx: StageContext) -> dict[str, Document]:
    return {doc["id"]: doc for doc in iter_corpus(ctx)}


def read_pairs(path: Path) -> list[Pair]:
    return list(read_jsonl(path))  # type: ignore[arg-type]
