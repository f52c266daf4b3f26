"""The pipelines the register stage creates, and the hybrid query that uses ``deploy.opensearch.hybrid_search``.

On judged queries a hybrid of BM25 and the model often beats the model alone (on SciFact by about 6 points of
nDCG@10, docs/trainer.md); this puts that hybrid, as the evaluate stage scored it, one query away. Every pipeline
(search or ingest) is found by id first: one that already holds the same processors is reused, one osft created
before is updated, and one osft did not create is left alone (the stage fails, naming it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from osft.common.errors import OsftError
from osft.common.hybrid_search import hybrid_query
from osft.common.spec.deploy import HybridSearch
from osft.registrar.ml_commons import MLCommons

OWN_DESCRIPTION = "osft:"
QUERY_PLACEHOLDER = "the user's query"


def ensure_search_pipeline(ml: MLCommons, pipeline_id: str, body: dict[str, Any], field: str) -> bool:
    """Create (or update) search pipeline ``pipeline_id``; False when it already holds this processor.

    ``field`` is the spec field naming the pipeline, for the error when someone else's pipeline has that id.
    """
    api = ml.client.search_pipeline
    return ensure_pipeline(ml, "search", pipeline_id, body, field, api.get, api.put, "phase_results_processors")


def ensure_ingest_pipeline(ml: MLCommons, pipeline_id: str, body: dict[str, Any], field: str) -> bool:
    """Create (or update) ingest pipeline ``pipeline_id``; False when it already holds these processors.

    An update (another model_id after a new run) applies to documents indexed from then on; documents already
    in an index keep the vectors of the model that embedded them until they are reindexed.
    """
    api = ml.client.ingest
    return ensure_pipeline(ml, "ingest", pipeline_id, body, field, api.get_pipeline, api.put_pipeline, "processors")


def ensure_pipeline(
    ml: MLCommons,
    kind: str,
    pipeline_id: str,
    body: dict[str, Any],
    field: str,
    get: Callable[..., Any],
    put: Callable[..., Any],
    processors: str,
) -> bool:
    """Found by id: reused when its ``processors`` list equals the body's, else created or (if osft's) updated."""
    what = f"{kind} pipeline {pipeline_id}"
    current = (ml.get_or_none(f"reading {what}", get, id=pipeline_id) or {}).get(pipeline_id)
    if current is not None:
        if current.get(processors) == body[processors]:
            return False
        refuse_foreign(current, what, field)
    ml.call(f"creating {what}", put, id=pipeline_id, body=body)
    return True


def refuse_foreign(current: dict[str, Any], what: str, field: str) -> None:
    """Stop before replacing a pipeline osft did not create (its description does not start with ``osft:``)."""
    if not str(current.get("description", "")).startswith(OWN_DESCRIPTION):
        raise OsftError(
            f"{what} already exists and osft did not create it",
            hint=f"name another one in {field}, or delete that pipeline",
        )


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
