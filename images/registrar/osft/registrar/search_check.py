"""An end-to-end search with the registered model: ingest pipeline, index, a few documents, a neural query.

Dense models get a ``text_embedding`` processor and a ``knn_vector`` field queried with
``neural``; sparse models a ``sparse_encoding`` processor and a ``rank_features`` field queried
with ``neural_sparse`` (through the query tokenizer for doc-only models). The documents are the
smoke-test texts; querying with the first one must return it first. The index and pipeline
are recreated on each run and deleted afterwards unless ``delete_after`` is false.
"""

from __future__ import annotations

from typing import Any

from osft.common.errors import ServiceError
from osft.common.spec.deploy import SearchCheck
from osft.registrar.ml_commons import MLCommons

FIELD = "embedding"


def index_body(kind: str, pipeline: str, dimension: int | None) -> dict[str, Any]:
    if kind == "sparse":
        return {
            "settings": {"index": {"default_pipeline": pipeline}},
            "mappings": {"properties": {"text": {"type": "text"}, FIELD: {"type": "rank_features"}}},
        }
    return {
        "settings": {"index": {"knn": True, "default_pipeline": pipeline}},
        "mappings": {
            "properties": {
                "text": {"type": "text"},
                FIELD: {
                    "type": "knn_vector",
                    "dimension": dimension,
                    "method": {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil"},
                },
            }
        },
    }


def run_search_check(
    ml: MLCommons,
    spec: SearchCheck,
    *,
    kind: str,
    model_id: str,
    query_model_id: str | None,
    dimension: int | None,
    texts: list[str],
) -> str:
    """Index ``texts`` through the pipeline and query with the first one; raises ServiceError unless it comes first."""
    client = ml.client
    processor = "sparse_encoding" if kind == "sparse" else "text_embedding"
    ml.call(
        f"creating ingest pipeline {spec.pipeline}",
        client.ingest.put_pipeline,
        id=spec.pipeline,
        body={
            "description": "osft smoke test",
            "processors": [{processor: {"model_id": model_id, "field_map": {"text": FIELD}}}],
        },
    )
    if ml.call(f"checking index {spec.index}", client.indices.exists, index=spec.index):
        ml.call(f"deleting the previous index {spec.index}", client.indices.delete, index=spec.index)
    ml.call(
        f"creating index {spec.index}",
        client.indices.create,
        index=spec.index,
        body=index_body(kind, spec.pipeline, dimension),
    )
    for number, text in enumerate(texts):
        ml.call(
            f"indexing document {number} into {spec.index}",
            client.index,
            index=spec.index,
            id=str(number),
            body={"text": text},
            params={"refresh": "true"},
        )
    if kind == "sparse":
        query = {"neural_sparse": {FIELD: {"query_text": texts[0], "model_id": query_model_id or model_id}}}
    else:
        query = {"neural": {FIELD: {"query_text": texts[0], "model_id": model_id, "k": len(texts)}}}
    response = ml.call(
        f"running a {next(iter(query))} query on {spec.index}",
        client.search,
        index=spec.index,
        body={"query": query, "size": len(texts), "_source": ["text"]},
    )
    hits = response.get("hits", {}).get("hits", [])
    if spec.delete_after:
        ml.call(f"deleting index {spec.index}", client.indices.delete, index=spec.index)
        ml.call(f"deleting ingest pipeline {spec.pipeline}", client.ingest.delete_pipeline, id=spec.pipeline)
    if not hits or hits[0].get("_id") != "0":
        found = [h.get("_id") for h in hits]
        raise ServiceError(
            f"search check on {spec.index}: querying with document 0's own text returned {found}, not document 0 first",
            hint="the ingest pipeline or the model does not embed as expected; keep the index "
            "(search_check.delete_after: false) and look at its documents",
        )
    return f"{next(iter(query))} query returned the right document first of {len(texts)}"
