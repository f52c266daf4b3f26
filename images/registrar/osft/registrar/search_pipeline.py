"""The hybrid search pipeline the register stage creates (``deploy.opensearch.hybrid_search``), and its query.

On judged queries a hybrid of BM25 and the model often beats the model alone (on SciFact by about 6 points of
nDCG@10, docs/trainer.md); this puts that hybrid, as the evaluate stage scored it, one query away. The pipeline
is found by id first: one that already holds the same processor is reused, one osft created before is updated,
and one osft did not create is left alone (the stage fails, naming it).
"""

from __future__ import annotations

from typing import Any, Literal

from osft.common.errors import OsftError
from osft.common.hybrid_search import hybrid_query, search_pipeline_body
from osft.common.spec.deploy import HybridSearch
from osft.registrar.ml_commons import MLCommons

OWN_DESCRIPTION = "osft:"
QUERY_PLACEHOLDER = "the user's query"


def ensure_search_pipeline(ml: MLCommons, spec: HybridSearch) -> bool:
    """Create (or update) the pipeline; False when it already holds this processor and nothing was sent."""
    body = search_pipeline_body(spec.keyword_weight)
    found = ml.get_or_none(f"reading search pipeline {spec.pipeline}", ml.client.search_pipeline.get, id=spec.pipeline)
    current = (found or {}).get(spec.pipeline)
    if current is not None:
        if current.get("phase_results_processors") == body["phase_results_processors"]:
            return False
        if not str(current.get("description", "")).startswith(OWN_DESCRIPTION):
            raise OsftError(
                f"search pipeline {spec.pipeline} already exists and osft did not create it",
                hint="name another one in deploy.opensearch.hybrid_search.pipeline, or delete that pipeline",
            )
    ml.call(f"creating search pipeline {spec.pipeline}", ml.client.search_pipeline.put, id=spec.pipeline, body=body)
    return True


def example_query(
    spec: HybridSearch, kind: Literal["dense", "sparse"], model_id: str, query_model_id: str | None
) -> dict[str, Any]:
    """What ``register/hybrid_query.json`` holds: the request line and the body a search box sends."""
    return {
        "request": f"GET /<index>/_search?search_pipeline={spec.pipeline}",
        "body": hybrid_query(
            kind,
            QUERY_PLACEHOLDER,
            text_field=spec.text_field,
            embedding_field=spec.embedding_field,
            model_id=model_id,
            k=spec.k,
            query_model_id=query_model_id,
        ),
    }
