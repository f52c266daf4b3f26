"""The ML Commons stand-in's search pipelines and ``hybrid`` query, over HTTP with opensearch-py.

The index holds four documents whose 2-d embeddings are chosen by hand, so every expected score below is worked
out in the comments: BM25 for the ``match`` clause, (1 + cos) / 2 for the ``neural`` one, min_max per clause, and
the weighted arithmetic mean over all clauses (0 where a clause did not return the document).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from opensearchpy import NotFoundError, OpenSearch, RequestError

from tests.registrar.ml_commons_server import FakeMLCommons

INDEX = "docs"
# text → embedding; "fruit" is the neural clause's query text. Against the query [1, 0] the cosines are 1, 0, 0.6
# and -1, so the neural scores (1 + cos) / 2 are 1.0, 0.5, 0.8 and 0.0.
VECTORS = {
    "red apple pie": [1.0, 0.0],
    "green apple": [0.0, 1.0],
    "banana bread": [0.6, 0.8],
    "apple apple cider": [-1.0, 0.0],
    "fruit": [1.0, 0.0],
}
DOCS = {"pie": "red apple pie", "green": "green apple", "banana": "banana bread", "cider": "apple apple cider"}
MATCH_APPLE = {"match": {"text": {"query": "apple"}}}


@contextmanager
def lookup_index(
    vectors: dict[str, list[float]],
    docs: dict[str, str],
    index: str,
    pipeline: Callable[[str], dict[str, Any]],
    index_body: dict[str, Any],
) -> Iterator[tuple[FakeMLCommons, OpenSearch, str]]:
    """A started stand-in whose model embeds by lookup in ``vectors``, and ``docs`` indexed into ``index`` through
    the ingest pipeline ``pipeline(model_id)`` builds (its id: the index's ``default_pipeline``)."""
    server = FakeMLCommons(local_embed=lambda _model, texts: [vectors[text] for text in texts])
    server.start()
    client = OpenSearch(hosts=[server.url], max_retries=0)
    try:
        model_id = _deployed_model(client)
        pipeline_id = index_body["settings"]["index"]["default_pipeline"]
        client.ingest.put_pipeline(id=pipeline_id, body=pipeline(model_id))
        client.indices.create(index=index, body=index_body)
        for doc_id, text in docs.items():
            client.index(index=index, id=doc_id, body={"text": text}, params={"refresh": "true"})
        yield server, client, model_id
    finally:
        server.stop()


@pytest.fixture(scope="module")
def indexed() -> Iterator[tuple[FakeMLCommons, OpenSearch, str]]:
    """A started stand-in, a client, a deployed embedding model, and the index its ingest pipeline filled."""
    body = {
        "settings": {"index": {"knn": True, "default_pipeline": "embed"}},
        "mappings": {"properties": {"text": {"type": "text"}, "embedding": {"type": "knn_vector", "dimension": 2}}},
    }

    def pipeline(model_id: str) -> dict[str, Any]:
        return {"processors": [{"text_embedding": {"model_id": model_id, "field_map": {"text": "embedding"}}}]}

    with lookup_index(VECTORS, DOCS, INDEX, pipeline, body) as started:
        yield started


@pytest.fixture
def cluster(indexed: tuple[FakeMLCommons, OpenSearch, str]) -> tuple[FakeMLCommons, OpenSearch, str]:
    """The shared index, with no search pipelines and no recorded requests (one server: stopping one takes 0.5 s)."""
    server = indexed[0]
    server.search_pipelines.clear()
    server.requests.clear()
    return indexed


def _deployed_model(client: OpenSearch) -> str:
    """Register a one-chunk TEXT_EMBEDDING model and deploy it, polling the task as ML Commons clients do."""
    call = client.transport.perform_request
    group = call("POST", "/_plugins/_ml/model_groups/_register", body={"name": "hybrid-tests"})
    chunk = b"tiny model"
    meta = {
        "name": "tiny",
        "version": "1",
        "model_format": "TORCH_SCRIPT",
        "function_name": "TEXT_EMBEDDING",
        "model_group_id": group["model_group_id"],
        "model_content_hash_value": hashlib.sha256(chunk).hexdigest(),
        "total_chunks": 1,
        "model_config": {"model_type": "bert", "embedding_dimension": 2, "framework_type": "sentence_transformers"},
    }
    model_id = call("POST", "/_plugins/_ml/models/_register_meta", body=meta)["model_id"]
    call("POST", f"/_plugins/_ml/models/{model_id}/upload_chunk/0", body=chunk)
    task_id = call("POST", f"/_plugins/_ml/models/{model_id}/_deploy")["task_id"]
    for _ in range(5):
        if call("GET", f"/_plugins/_ml/tasks/{task_id}")["state"] == "COMPLETED":
            return model_id
    raise AssertionError("the deploy task did not complete")


def normalization(weights: list[Any] | None = None, **processor: Any) -> dict[str, Any]:
    combination: dict[str, Any] = {"technique": "arithmetic_mean"}
    if weights is not None:
        combination["parameters"] = {"weights": weights}
    config = {"normalization": {"technique": "min_max"}, "combination": combination, **processor}
    return {"description": "hybrid", "phase_results_processors": [{"normalization-processor": config}]}


def neural(model_id: str, k: int = 3) -> dict[str, Any]:
    return {"neural": {"embedding": {"query_text": "fruit", "model_id": model_id, "k": k}}}


def hybrid(*clauses: dict[str, Any], size: int = 10) -> dict[str, Any]:
    return {"query": {"hybrid": {"queries": list(clauses)}}, "size": size}


def scores(answer: dict[str, Any]) -> dict[str, float]:
    """Hit id → score, in the order returned."""
    return {hit["_id"]: hit["_score"] for hit in answer["hits"]["hits"]}


def refused(call: Any, **kwargs: Any) -> RequestError:
    with pytest.raises(RequestError) as caught:
        call(**kwargs)
    assert caught.value.status_code == 400
    return caught.value


def reason(error: RequestError) -> str:
    return error.info["error"]["reason"]


# BM25 of "apple" over the 4 texts (10 tokens, avgdl 2.5), "apple" in 3 of them: the idf is the same for all three
# hits, so min_max leaves tf / (tf + 1.2 * (0.25 + 0.75 * dl / 2.5)):
#   pie   (tf 1, dl 3): 1 / 2.38 = 0.420168   → the minimum, normalised to 0 and so 0.001
#   green (tf 1, dl 2): 1 / 2.02 = 0.495050   → (0.495050 - 0.420168) / (0.591716 - 0.420168) = 0.436505
#   cider (tf 2, dl 3): 2 / 3.38 = 0.591716   → the maximum, 1.0
# The neural clause (k 3) returns pie 1.0, banana 0.8, green 0.5 → min_max 1.0, 0.6, 0.001; cider (0.0) is 4th.
GREEN_BM25 = 0.436505


def test_match_and_neural_are_normalised_per_clause_and_combined_with_the_pipeline_weights(cluster) -> None:
    server, client, model_id = cluster
    client.search_pipeline.put(id="hybrid", body=normalization([0.3, 0.7]))

    answer = client.search(
        index=INDEX, body=hybrid(MATCH_APPLE, neural(model_id)), params={"search_pipeline": "hybrid"}
    )

    assert scores(answer) == {
        "pie": pytest.approx(0.3 * 0.001 + 0.7 * 1.0),  # 0.7003
        "banana": pytest.approx(0.3 * 0 + 0.7 * 0.6),  # 0.42: no "apple", found by the neural clause only
        "cider": pytest.approx(0.3 * 1.0 + 0.7 * 0),  # 0.3: outside the neural top 3, found by BM25 only
        "green": pytest.approx(0.3 * GREEN_BM25 + 0.7 * 0.001, abs=1e-6),  # 0.131651
    }
    assert list(scores(answer)) == ["pie", "banana", "cider", "green"]
    assert answer["hits"]["hits"][0]["_source"] == {"text": "red apple pie"}
    assert server.calls("POST", f"/{INDEX}/_search")[0]["query"]["hybrid"]["queries"][0] == MATCH_APPLE


def test_a_document_only_bm25_finds_counts_zero_for_the_clause_that_missed_it(cluster) -> None:
    """Equal weights when none are given; the missing clause is averaged in as 0, not skipped (0.5, not 1.0)."""
    _server, client, model_id = cluster
    client.search_pipeline.put(id="equal", body=normalization())

    answer = client.search(index=INDEX, body=hybrid(MATCH_APPLE, neural(model_id)), params={"search_pipeline": "equal"})

    assert scores(answer) == {
        "pie": pytest.approx((0.001 + 1.0) / 2),
        "cider": pytest.approx((1.0 + 0) / 2),
        "banana": pytest.approx((0 + 0.6) / 2),
        "green": pytest.approx((GREEN_BM25 + 0.001) / 2, abs=1e-6),
    }
    assert list(scores(answer)) == ["pie", "cider", "banana", "green"]


def test_bm25_weighs_each_query_token_by_its_idf(cluster) -> None:
    """ "apple pie": idf(apple) = ln(1 + 1.5 / 3.5) = 0.356675, idf(pie) = ln(1 + 3.5 / 1.5) = 1.203973.

    pie 0.420168 * (0.356675 + 1.203973) = 0.655734, cider 0.591716 * 0.356675 = 0.211050, green 0.495050 *
    0.356675 = 0.176572 → min_max 1.0, (0.211050 - 0.176572) / (0.655734 - 0.176572) = 0.071956, and 0.001.
    """
    _server, client, _model_id = cluster
    client.search_pipeline.put(id="one", body=normalization())

    answer = client.search(
        index=INDEX, body=hybrid({"match": {"text": "apple pie"}}), params={"search_pipeline": "one"}
    )

    assert scores(answer) == {"pie": 1.0, "cider": pytest.approx(0.071956, abs=1e-6), "green": pytest.approx(0.001)}


def test_each_clause_keeps_only_its_top_size_hits_before_combining(cluster) -> None:
    """With size 1 the match clause returns only cider and the neural one only pie: each a single hit, so 1.0."""
    _server, client, model_id = cluster
    client.search_pipeline.put(id="hybrid", body=normalization([0.3, 0.7]))

    answer = client.search(
        index=INDEX, body=hybrid(MATCH_APPLE, neural(model_id), size=1), params={"search_pipeline": "hybrid"}
    )

    assert scores(answer) == {"pie": pytest.approx(0.7)}


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([0.5, 0.2], "sum of weights for combination must be equal to 1.0, submitted weights: [0.5, 0.2]"),
        ([1.5, -0.5], "all weights must be in range [0.0 ... 1.0], submitted weights: [1.5, -0.5]"),
        ([0, 1], "class java.lang.Integer cannot be cast to class java.lang.Double"),
        ("0.5,0.5", "parameter [weights] must be a collection of numbers"),
    ],
)
def test_weights_the_normalization_processor_would_refuse_are_refused(cluster, weights, message) -> None:
    server, client, _model_id = cluster

    error = refused(client.search_pipeline.put, id="bad", body=normalization(weights))

    assert error.error == "illegal_argument_exception" and message in reason(error)
    assert "bad" not in server.search_pipelines


@pytest.mark.parametrize(
    ("body", "kind", "message"),
    [
        (
            {"phase_results_processors": [{"normalisation-processor": {}}]},
            "illegal_argument_exception",
            "Invalid processor type normalisation-processor",
        ),
        (
            {"request_processors": [{"normalization-processor": {}}]},
            "illegal_argument_exception",
            "Invalid processor type normalization-processor",
        ),
        (
            normalization(normalization={"technique": "softmax"}),
            "parse_exception",
            "provided normalization technique is not supported",
        ),
        (
            normalization(weights=[0.5, 0.5], tag="t", extra=1),
            "parse_exception",
            "processor [normalization-processor:t] doesn't support one or more provided configuration parameters: [extra]",
        ),
        (
            {"phase_results_processors": [], "processors": []},
            "parse_exception",
            "pipeline [bad] doesn't support one or more provided configuration parameters [processors]",
        ),
    ],
)
def test_unknown_processors_and_options_are_refused(cluster, body, kind, message) -> None:
    server, client, _model_id = cluster

    error = refused(client.search_pipeline.put, id="bad", body=body)

    assert (error.error, reason(error)) == (kind, message)
    assert server.search_pipelines == {}


@pytest.mark.parametrize("pipeline", [None, {"description": "no normalization", "phase_results_processors": []}])
def test_a_hybrid_query_without_a_normalization_processor_is_refused(cluster, pipeline) -> None:
    _server, client, model_id = cluster
    params = {}
    if pipeline is not None:
        client.search_pipeline.put(id="plain", body=pipeline)
        params = {"search_pipeline": "plain"}

    error = refused(client.search, index=INDEX, body=hybrid(MATCH_APPLE, neural(model_id)), params=params)

    assert error.error == "illegal_argument_exception"
    assert "needs a search pipeline with a normalization processor" in reason(error)


def test_as_many_weights_as_clauses_are_needed(cluster) -> None:
    _server, client, model_id = cluster
    client.search_pipeline.put(id="hybrid", body=normalization([0.3, 0.7]))
    body = hybrid(MATCH_APPLE, neural(model_id), {"match": {"text": "pie"}})

    error = refused(client.search, index=INDEX, body=body, params={"search_pipeline": "hybrid"})

    assert error.error == "illegal_argument_exception"
    assert reason(error) == "number of weights [2] must match number of sub-queries [3] in hybrid query"


def test_more_than_five_sub_queries_are_refused(cluster) -> None:
    _server, client, _model_id = cluster
    client.search_pipeline.put(id="equal", body=normalization())
    body = hybrid(*[{"match": {"text": word}} for word in ("a", "b", "c", "d", "e", "f")])

    error = refused(client.search, index=INDEX, body=body, params={"search_pipeline": "equal"})

    assert error.error == "parsing_exception"
    assert reason(error) == "Number of sub-queries exceeds maximum supported by [hybrid] query"


def test_hybrid_is_only_allowed_at_the_top_of_the_query(cluster) -> None:
    _server, client, _model_id = cluster
    client.search_pipeline.put(id="equal", body=normalization())
    body = hybrid(MATCH_APPLE, {"hybrid": {"queries": [MATCH_APPLE]}})

    error = refused(client.search, index=INDEX, body=body, params={"search_pipeline": "equal"})

    assert reason(error) == "hybrid query must be a top level query and cannot be wrapped into other queries"


def test_an_unknown_search_pipeline_fails_the_search_as_resolve_pipeline_does(cluster) -> None:
    _server, client, model_id = cluster

    error = refused(
        client.search, index=INDEX, body=hybrid(MATCH_APPLE, neural(model_id)), params={"search_pipeline": "nope"}
    )

    assert (error.error, reason(error)) == ("illegal_argument_exception", "Pipeline nope is not defined")


def test_a_pipeline_is_read_replaced_and_deleted(cluster) -> None:
    server, client, _model_id = cluster
    first = normalization([0.5, 0.5])
    assert client.search_pipeline.put(id="hybrid", body=first) == {"acknowledged": True}
    assert client.search_pipeline.get(id="hybrid") == {"hybrid": first}

    second = normalization([0.2, 0.8])
    assert client.search_pipeline.put(id="hybrid", body=second) == {"acknowledged": True}
    assert client.search_pipeline.get(id="hybrid") == {"hybrid": second}

    assert client.search_pipeline.delete(id="hybrid") == {"acknowledged": True}
    assert server.search_pipelines == {}
    with pytest.raises(NotFoundError) as missing:
        client.search_pipeline.get(id="hybrid")
    assert missing.value.info == {}  # GetSearchPipelineResponse: an empty object with status 404
    with pytest.raises(NotFoundError) as gone:
        client.search_pipeline.delete(id="hybrid")
    assert gone.value.error == "resource_not_found_exception" and reason(gone.value) == "pipeline [hybrid] is missing"
