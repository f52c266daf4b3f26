"""Passage vectors in the cluster (``deploy.opensearch.passage_vectors``): the pipelines, the index body, the queries.

The ingest pipeline cuts each document's text into passages and embeds the text and every passage with the
registered model; with ``hybrid_search`` a second search pipeline weighs BM25 and the two vector clauses.
``register/passage_index.json`` holds what a user sends next: the index body (the pipeline as its default),
the query and, with ``hybrid_search``, the hybrid query. The layout is ``osft.common.passage_search``'s, which is
what the evaluate stage scores with ``evaluation.passage_vectors``.
"""

from __future__ import annotations

from typing import Any

from osft.common.passage_search import (
    PassageFields,
    index_body,
    ingest_pipeline_body,
    passage_hybrid_query,
    passage_query,
    passage_search_pipeline_body,
)
from osft.common.spec.deploy import HybridSearch, PassageVectors
from osft.registrar.ml_commons import MLCommons
from osft.registrar.search_pipeline import QUERY_PLACEHOLDER, ensure_ingest_pipeline, ensure_search_pipeline

PASSAGE_INDEX_FILE = "passage_index.json"
FIELD = "deploy.opensearch.passage_vectors"
INGEST_DESCRIPTION = "osft: passages cut on '.', the text and each passage embedded by the registered model"


def passage_fields(spec: PassageVectors) -> PassageFields:
    return PassageFields(
        text=spec.text_field,
        embedding=spec.embedding_field,
        passages=spec.passages_field,
        passage_embedding=spec.passage_embedding_field,
    )


def ensure_passage_search_pipeline(ml: MLCommons, spec: PassageVectors, hybrid: HybridSearch) -> tuple[str, bool]:
    """Create (or update) the three-clause hybrid's search pipeline; its name for the notes, and whether it was sent."""
    body = passage_search_pipeline_body(hybrid.keyword_weight)
    sent = ensure_search_pipeline(ml, spec.hybrid_pipeline, body, f"{FIELD}.hybrid_pipeline")
    return f"search pipeline {spec.hybrid_pipeline}", sent


def ensure_passage_ingest_pipeline(ml: MLCommons, spec: PassageVectors, model_id: str) -> tuple[str, bool]:
    """Create (or update) the ingest pipeline embedding with ``model_id``; its name, and whether it was sent."""
    body = ingest_pipeline_body(model_id, passage_fields(spec), INGEST_DESCRIPTION)
    sent = ensure_ingest_pipeline(ml, spec.ingest_pipeline, body, f"{FIELD}.ingest_pipeline")
    return f"ingest pipeline {spec.ingest_pipeline}", sent


def passage_index_file(
    spec: PassageVectors, hybrid: HybridSearch | None, model_id: str, dimension: int
) -> dict[str, Any]:
    """What ``register/passage_index.json`` holds: each request line with its body."""
    fields = passage_fields(spec)
    written: dict[str, Any] = {
        "ingest_pipeline": spec.ingest_pipeline,
        "index": {"request": "PUT /<index>", "body": index_body(dimension, spec.ingest_pipeline, fields)},
        "query": {
            "request": "GET /<index>/_search",
            "body": passage_query(QUERY_PLACEHOLDER, model_id=model_id, fields=fields, k=spec.k),
        },
    }
    if hybrid is not None:
        written["hybrid_query"] = {
            "request": f"GET /<index>/_search?search_pipeline={spec.hybrid_pipeline}",
            "body": passage_hybrid_query(QUERY_PLACEHOLDER, model_id=model_id, fields=fields, k=spec.k),
        }
    return written
