"""An end-to-end search with the registered model: ingest pipeline, index, a few documents, a neural query.

Dense models get a ``text_embedding`` processor and a ``knn_vector`` field queried with
``neural``; sparse models a ``sparse_encoding`` processor and a ``rank_features`` field queried
with ``neural_sparse`` (through the query tokenizer for doc-only models). The documents are the
smoke-test texts; querying with the first one must return it first. With ``hybrid_pipeline``
(``deploy.opensearch.hybrid_search``) a ``hybrid`` query of BM25 and the model, sent through that
search pipeline, must too. With ``passages`` (``deploy.opensearch.passage_vectors``) the index is laid out as
that section's: passages cut and embedded in a nested field, and its query (and its three-clause hybrid
through ``passages_pipeline``) must return the first text first as well. The index and pipeline are
recreated on each run and deleted afterwards unless ``delete_after`` is false.
"""

from __future__ import annotations

from typing import Any

from osft.common import passage_search
from osft.common.errors import ServiceError
from osft.common.hybrid_search import hybrid_query, model_clause
from osft.common.passage_search import PassageFields, knn_vector, passage_hybrid_query, passage_query
from osft.common.spec.deploy import SearchCheck
from osft.registrar.ml_commons import MLCommons

FIELD = "embedding"
PASSAGE_FIELDS = PassageFields(text="text", embedding=FIELD)
DESCRIPTION = "osft smoke test"


def index_body(kind: str, pipeline: str, dimension: int | None, passages: bool = False) -> dict[str, Any]:
    if kind == "sparse":
        return {
            "settings": {"index": {"default_pipeline": pipeline}},
            "mappings": {"properties": {"text": {"type": "text"}, FIELD: {"type": "rank_features"}}},
        }
    assert dimension is not None
    if passages:
        return passage_search.index_body(dimension, pipeline, PASSAGE_FIELDS)
    return {
        "settings": {"index": {"knn": True, "default_pipeline": pipeline}},
        "mappings": {"properties": {"text": {"type": "text"}, FIELD: knn_vector(dimension)}},
    }


def ingest_pipeline_body(kind: str, model_id: str, passages: bool) -> dict[str, Any]:
    if passages:
        return passage_search.ingest_pipeline_body(model_id, PASSAGE_FIELDS, DESCRIPTION)
    processor = "sparse_encoding" if kind == "sparse" else "text_embedding"
    return {
        "description": DESCRIPTION,
        "processors": [{processor: {"model_id": model_id, "field_map": {"text": FIELD}}}],
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
    hybrid_pipeline: str | None = None,
    passages: bool = False,
    passages_pipeline: str | None = None,
) -> str:
    """Index ``texts`` through the pipeline and query with the first one; raises ServiceError unless it comes first.

    ``passages_pipeline`` (with ``passages``) is the search pipeline of the three-clause hybrid.
    """
    client = ml.client
    ml.call(
        f"creating ingest pipeline {spec.pipeline}",
        client.ingest.put_pipeline,
        id=spec.pipeline,
        body=ingest_pipeline_body(kind, model_id, passages),
    )
    if ml.call(f"checking index {spec.index}", client.indices.exists, index=spec.index):
        ml.call(f"deleting the previous index {spec.index}", client.indices.delete, index=spec.index)
    ml.call(
        f"creating index {spec.index}",
        client.indices.create,
        index=spec.index,
        body=index_body(kind, spec.pipeline, dimension, passages),
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
    query = model_clause(kind, texts[0], field=FIELD, model_id=model_id, k=len(texts), query_model_id=query_model_id)
    searches = [(f"{next(iter(query))} query", {"query": query}, {})]
    if hybrid_pipeline is not None:
        body = hybrid_query(
            kind,
            texts[0],
            text_field="text",
            embedding_field=FIELD,
            model_id=model_id,
            k=len(texts),
            query_model_id=query_model_id,
        )
        searches.append((f"hybrid query through {hybrid_pipeline}", body, {"search_pipeline": hybrid_pipeline}))
    if passages:
        body = passage_query(texts[0], model_id=model_id, fields=PASSAGE_FIELDS, k=len(texts))
        searches.append(("query of document and passage vectors", body, {}))
        if passages_pipeline is not None:
            body = passage_hybrid_query(texts[0], model_id=model_id, fields=PASSAGE_FIELDS, k=len(texts))
            what = f"hybrid query with passage vectors through {passages_pipeline}"
            searches.append((what, body, {"search_pipeline": passages_pipeline}))
    found = []
    for what, body, params in searches:
        response = ml.call(
            f"running a {what} on {spec.index}",
            client.search,
            index=spec.index,
            body={**body, "size": len(texts), "_source": ["text"]},
            params=params,
        )
        found.append((what, [hit.get("_id") for hit in response.get("hits", {}).get("hits", [])]))
    if spec.delete_after:
        ml.call(f"deleting index {spec.index}", client.indices.delete, index=spec.index)
        ml.call(f"deleting ingest pipeline {spec.pipeline}", client.ingest.delete_pipeline, id=spec.pipeline)
    for what, ids in found:
        if ids[:1] != ["0"]:
            raise ServiceError(
                f"search check on {spec.index}: a {what} with document 0's own text returned {ids}, not document 0 "
                "first",
                hint="the ingest pipeline or the model does not embed as expected; keep the index "
                "(search_check.delete_after: false) and look at its documents",
            )
    return "; ".join(f"{what} returned the right document first of {len(texts)}" for what, _ in found)
