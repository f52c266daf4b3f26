"""An index that keeps a vector per passage beside each document's, as OpenSearch builds and queries it.

The evaluate stage scores this layout (``evaluation.passage_vectors``, ``osft.trainer.passage_vectors``); the
register stage creates its ingest pipeline in the cluster (``deploy.opensearch.passage_vectors``) and writes the
index body and the queries below, so an index built from them returns what was scored:

- ingest: ``trim`` and ``text_chunking`` cut the text field into passages on ``PASSAGE_DELIMITER`` (as
  ``osft.common.passages.document_passages`` does), then ``text_embedding`` embeds the text into the document's
  vector and each passage into a nested object whose ``knn`` holds its vector;
- query: a ``bool`` of two ``should`` clauses, ``neural`` on the document's vector and ``nested`` ``neural`` on
  the passages' (``score_mode: max``); a document scores the sum of the clauses that returned it;
- hybrid: BM25 first, then the same two clauses, through a search pipeline that splits the model's weight evenly
  over them (a ``bool`` as the hybrid's one model clause scores lower: docs/trainer.md, passage vectors).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from osft.common.hybrid_search import CANDIDATES_PER_CLAUSE, search_pipeline_body
from osft.common.passages import PASSAGE_DELIMITER

NESTED_VECTOR_KEY = "knn"
"""The key ``text_embedding`` gives each passage's vector in the list it writes for a list of strings."""
VECTOR_CLAUSES = 2
"""The document's vector and its passages' vectors: the model's clauses in the hybrid query."""


@dataclass(frozen=True)
class PassageFields:
    """The index's fields: the text, the document's vector, the passages and their nested vectors."""

    text: str = "text"
    embedding: str = "embedding"
    passages: str = "text_passages"
    passage_embedding: str = "passage_embedding"


def knn_vector(dimension: int) -> dict[str, Any]:
    """A ``knn_vector`` mapping scored as the evaluate stage scores: ``lucene`` HNSW, cosine similarity."""
    return {
        "type": "knn_vector",
        "dimension": dimension,
        "method": {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil"},
    }


def ingest_pipeline_body(model_id: str, fields: PassageFields, description: str) -> dict[str, Any]:
    """Passages cut from the text field, then the text and every passage embedded by ``model_id``.

    The text is trimmed into the passages field and cut there (``osft.common.passages.document_passages``): the
    text itself stays as sent, and no blank last passage makes ``text_embedding`` refuse the document.
    """
    return {
        "description": description,
        "processors": [
            {"trim": {"field": fields.text, "target_field": fields.passages, "ignore_missing": True}},
            {
                "text_chunking": {
                    "algorithm": {"delimiter": {"delimiter": PASSAGE_DELIMITER}},
                    "field_map": {fields.passages: fields.passages},
                }
            },
            {
                "text_embedding": {
                    "model_id": model_id,
                    "field_map": {fields.text: fields.embedding, fields.passages: fields.passage_embedding},
                }
            },
        ],
    }


def index_body(dimension: int, pipeline: str, fields: PassageFields) -> dict[str, Any]:
    """Index settings and mappings: ``pipeline`` as the default, the document's vector, the nested passages'."""
    return {
        "settings": {"index": {"knn": True, "default_pipeline": pipeline}},
        "mappings": {
            "properties": {
                fields.text: {"type": "text"},
                fields.passages: {"type": "text", "index": False},  # kept to show, not searched
                fields.embedding: knn_vector(dimension),
                fields.passage_embedding: {
                    "type": "nested",
                    "properties": {NESTED_VECTOR_KEY: knn_vector(dimension)},
                },
            }
        },
    }


def vector_clauses(text: str, *, model_id: str, fields: PassageFields, k: int) -> list[dict[str, Any]]:
    """The document's own vector, then its best passage's: each the top ``k`` documents."""
    return [
        {"neural": {fields.embedding: {"query_text": text, "model_id": model_id, "k": k}}},
        {
            "nested": {
                "path": fields.passage_embedding,
                "score_mode": "max",
                "query": {
                    "neural": {
                        f"{fields.passage_embedding}.{NESTED_VECTOR_KEY}": {
                            "query_text": text,
                            "model_id": model_id,
                            "k": k,
                        }
                    }
                },
            }
        },
    ]


def passage_query(text: str, *, model_id: str, fields: PassageFields, k: int = CANDIDATES_PER_CLAUSE) -> dict[str, Any]:
    """A search body without BM25: a document scores its own vector's score plus its best passage's."""
    return {"size": k, "query": {"bool": {"should": vector_clauses(text, model_id=model_id, fields=fields, k=k)}}}


def passage_hybrid_query(
    text: str, *, model_id: str, fields: PassageFields, k: int = CANDIDATES_PER_CLAUSE
) -> dict[str, Any]:
    """A search body for ``passage_search_pipeline_body``: BM25 on the text, then both vector clauses."""
    clauses = vector_clauses(text, model_id=model_id, fields=fields, k=k)
    return {"size": k, "query": {"hybrid": {"queries": [{"match": {fields.text: {"query": text}}}, *clauses]}}}


def passage_search_pipeline_body(keyword_weight: float) -> dict[str, Any]:
    """The hybrid's pipeline: BM25 keeps ``keyword_weight``; the two vector clauses share the rest."""
    return search_pipeline_body(
        keyword_weight,
        model_clauses=VECTOR_CLAUSES,
        description="osft: hybrid of BM25, the registered model's document vectors and its passage vectors, as "
        "scored in the evaluate stage",
    )
