"""The files stages hand to each other: corpus shards from extract, pairs from querygen.

Documents are ``{"id", "title", "text"}`` objects in ``extract/docs-NNNNN.jsonl.gz``.
Pairs are ``{"query_id", "query", "doc_id", "kind"}`` objects in ``querygen/train.jsonl``
and ``querygen/heldout.jsonl``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from osft.common.jsonl import read_jsonl

if TYPE_CHECKING:
    from osft.common.stage import StageContext


class Document(TypedDict):
    id: str
    title: str
    text: str


class Pair(TypedDict):
    query_id: str
    query: str
    doc_id: str
    kind: str


def document_text(doc: Document) -> str:
    """The text a model sees for a document: title and body, as retrieval models are usually fed."""
    return f"{doc['title']}\n{doc['text']}" if doc.get("title") else doc["text"]


def iter_corpus(ctx: StageContext) -> Iterator[Document]:
    manifest = ctx.upstream("extract")
    for shard in manifest.stats.shards:
        yield from read_jsonl(ctx.input_path(f"extract/{shard}"))  # type: ignore[misc]


def load_corpus(ctx: StageContext) -> dict[str, Document]:
    return {doc["id"]: doc for doc in iter_corpus(ctx)}


def read_pairs(path: Path) -> list[Pair]:
    return list(read_jsonl(path))  # type: ignore[arg-type]
