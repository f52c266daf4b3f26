"""The ML Commons stand-in's passage vectors, over HTTP with opensearch-py: ``text_chunking`` and ``text_embedding``
over a list at ingest, a ``nested`` knn_vector mapping, and ``nested`` / ``bool`` / three-clause ``hybrid`` searches.

The model embeds by lookup: every text the pipeline sends (documents and their passages, as the delimiter cuts
them, leading spaces kept) has a hand-picked 2-d vector, so each expected score below is worked out in the comments.
Against the query "fruit", [1, 0], a vector's neural score is (1 + cos) / 2.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import NotFoundError, OpenSearch

from tests.registrar.ml_commons_server import FakeMLCommons
from tests.registrar.test_fake_hybrid_search import (
    _deployed_model,
    lookup_index,
    normalization,
    reason,
    refused,
    scores,
)

INDEX = "papers"
PIPELINE = "passages"
# document text → the document's vector and neural score, then its passages' (cut on ".").
DOCS = {
    "a": "Apples are red. Bananas are yellow.",  # doc [0, 1] 0.5; passages 1.0 and 0.0: best 1.0
    "b": "Cherries are dark. Apples and cherries. Plums",  # doc [0.6, 0.8] 0.8; passages 0.5, 0.9, 0.5: best 0.9
    "c": "Bananas only.",  # doc and its one passage [-0.6, 0.8] 0.2
}
VECTORS = {
    "fruit": [1.0, 0.0],
    DOCS["a"]: [0.0, 1.0],
    DOCS["b"]: [0.6, 0.8],
    DOCS["c"]: [-0.6, 0.8],
    "Apples are red.": [1.0, 0.0],
    " Bananas are yellow.": [-1.0, 0.0],
    "Cherries are dark.": [0.0, -1.0],
    " Apples and cherries.": [0.8, 0.6],
    " Plums": [0.0, 1.0],
}
NESTED_BEST = {"a": 1.0, "b": 0.9, "c": pytest.approx(0.2)}
CHUNKING = {"text_chunking": {"algorithm": {"delimiter": {"delimiter": "."}}, "field_map": {"text": "text_passages"}}}
MATCH_APPLES = {"match": {"text": {"query": "apples"}}}
_names = itertools.count()


def knn_vector(dimension: int = 2) -> dict[str, Any]:
    return {"type": "knn_vector", "dimension": dimension, "method": {"name": "hnsw", "engine": "lucene"}}


def passage_index(pipeline: str | None = PIPELINE, dimension: int = 2) -> dict[str, Any]:
    """The layout osft writes: the text, its passages, the document's vector and the passages' nested ones."""
    settings: dict[str, Any] = {"knn": True} if pipeline is None else {"knn": True, "default_pipeline": pipeline}
    return {
        "settings": {"index": settings},
        "mappings": {
            "properties": {
                "text": {"type": "text"},
                "text_passages": {"type": "text", "index": False},
                "embedding": knn_vector(dimension),
                "passage_embedding": {"type": "nested", "properties": {"knn": knn_vector(dimension)}},
            }
        },
    }


def embedding_processor(model_id: str) -> dict[str, Any]:
    field_map = {"text": "embedding", "text_passages": "passage_embedding"}
    return {"text_embedding": {"model_id": model_id, "field_map": field_map}}


@pytest.fixture(scope="module")
def indexed() -> Iterator[tuple[FakeMLCommons, OpenSearch, str]]:
    """A started stand-in, a client, a deployed lookup model, and DOCS indexed through the passage pipeline."""

    def pipeline(model_id: str) -> dict[str, Any]:
        return {"description": "osft: passages", "processors": [CHUNKING, embedding_processor(model_id)]}

    with lookup_index(VECTORS, DOCS, INDEX, pipeline, passage_index()) as started:
        yield started


@pytest.fixture
def cluster(indexed: tuple[FakeMLCommons, OpenSearch, str]) -> tuple[FakeMLCommons, OpenSearch, str]:
    indexed[0].search_pipelines.clear()
    return indexed


def neural(model_id: str, field: str = "embedding", k: int = 3) -> dict[str, Any]:
    return {"neural": {field: {"query_text": "fruit", "model_id": model_id, "k": k}}}


def nested(model_id: str, k: int = 3, score_mode: str | None = "max", **changes: Any) -> dict[str, Any]:
    spec = {"path": "passage_embedding", "query": neural(model_id, "passage_embedding.knn", k), **changes}
    if score_mode is not None:
        spec["score_mode"] = score_mode
    return {"nested": spec}


def search(client: OpenSearch, query: dict[str, Any], **params: str) -> dict[str, float]:
    return scores(client.search(index=INDEX, body={"query": query, "size": 10}, params=params))


def chunked(client: OpenSearch, server: FakeMLCommons, body: dict[str, Any], processor: dict[str, Any]) -> Any:
    """What a chunking-only pipeline stores for ``body``: a fresh pipeline and index, removed afterwards."""
    name = f"chunk-{next(_names)}"
    client.ingest.put_pipeline(id=name, body={"processors": [{"text_chunking": processor}]})
    client.indices.create(index=name, body={"settings": {"index": {"default_pipeline": name}}})
    try:
        client.index(index=name, id="1", body=body)
        return server.indices[name]["docs"]["1"]
    finally:
        client.indices.delete(index=name)
        client.ingest.delete_pipeline(id=name)


def delimiter(**params: Any) -> dict[str, Any]:
    return {"algorithm": {"delimiter": {"delimiter": ".", **params}}, "field_map": {"text": "text_passages"}}


# --- ingest ---------------------------------------------------------------------------------------------------------
def test_the_pipeline_stores_passages_with_their_delimiters_and_a_vector_object_per_passage(cluster) -> None:
    server, _client, _model_id = cluster

    stored = server.indices[INDEX]["docs"]

    assert stored["a"]["text_passages"] == ["Apples are red.", " Bananas are yellow."]
    assert stored["b"]["text_passages"] == ["Cherries are dark.", " Apples and cherries.", " Plums"]  # the remainder
    assert stored["a"]["embedding"] == [0.0, 1.0]  # the text field, a string: its vector
    assert stored["a"]["passage_embedding"] == [{"knn": [1.0, 0.0]}, {"knn": [-1.0, 0.0]}]  # a list: {"knn": ...}s
    assert stored["c"]["passage_embedding"] == [{"knn": [-0.6, 0.8]}]


@pytest.mark.parametrize(
    ("text", "params", "passages"),
    [
        ("One. Two. Three. Four", {"max_chunk_limit": 2}, ["One.", " Two. Three. Four"]),
        ("One. Two. Three. Four", {"max_chunk_limit": "3"}, ["One.", " Two.", " Three. Four"]),  # a string: decoded
        ("One. Two. Three. Four", {"max_chunk_limit": 1}, ["One. Two. Three. Four"]),
        ("One. Two. Three. Four", {"max_chunk_limit": -1}, ["One.", " Two.", " Three.", " Four"]),
        ("One..Two.", {}, ["One.", ".", "Two."]),  # nothing after the last delimiter: no empty passage
        ("", {}, []),
        ("   ", {}, []),  # blank: no passages
    ],
)
def test_the_delimiter_algorithm_keeps_delimiters_and_stops_cutting_at_max_chunk_limit(
    cluster, text, params, passages
) -> None:
    server, client, _model_id = cluster

    assert chunked(client, server, {"text": text}, delimiter(**params))["text_passages"] == passages


def test_the_limit_counts_over_a_list_and_a_missing_field_is_an_empty_list_unless_ignore_missing(cluster) -> None:
    """Two texts and a limit of 3: the first stops once its passages plus the one text left reach 3."""
    server, client, _model_id = cluster
    processor = {
        "algorithm": {"delimiter": {"delimiter": ".", "max_chunk_limit": 3}},
        "field_map": {"text": "text_passages", "title": "title_passages"},
    }

    stored = chunked(client, server, {"text": ["A. B. C.", "D. E."]}, processor)
    assert stored["text_passages"] == ["A.", " B. C.", "D. E."]
    assert stored["title_passages"] == []
    assert "title_passages" not in chunked(client, server, {"text": "A."}, {**processor, "ignore_missing": True})


def test_a_blank_passage_fails_the_text_embedding_processor(cluster) -> None:
    """A space after the last delimiter is a passage of its own, which text_embedding refuses as empty."""
    server, client, _model_id = cluster
    before = dict(server.indices[INDEX]["docs"])

    error = refused(client.index, index=INDEX, id="blank", body={"text": "Apples are red. "})

    assert reason(error) == "list type field [text_passages] has empty string, cannot process it"
    assert server.indices[INDEX]["docs"] == before


def test_trim_into_the_passages_field_then_chunking_in_place_leaves_no_blank_passage(cluster) -> None:
    """The pipeline osft writes: ``trim`` (Java's String.trim) into the passages field, then cut it in place."""
    server, client, _model_id = cluster
    name = f"trim-{next(_names)}"
    trim = {"trim": {"field": "text", "target_field": "text_passages", "ignore_missing": True}}
    cut = {"text_chunking": {**delimiter(), "field_map": {"text_passages": "text_passages"}}}
    client.ingest.put_pipeline(id=name, body={"processors": [trim, cut]})
    client.indices.create(index=name, body={"settings": {"index": {"default_pipeline": name}}})
    try:
        client.index(index=name, id="1", body={"text": "\tApples are red. Plums.  \u00a0 "})
        client.index(index=name, id="2", body={"title": "no text"})
        stored = server.indices[name]["docs"]
    finally:
        client.indices.delete(index=name)
        client.ingest.delete_pipeline(id=name)

    assert stored["1"]["text"] == "\tApples are red. Plums.  \u00a0 ", "the source field is left as sent"
    assert stored["1"]["text_passages"] == ["Apples are red.", " Plums.", "  \u00a0"], "trim keeps U+00A0"
    assert stored["2"]["text_passages"] == [], "a missing text: trim skips it, chunking writes no passages"


@pytest.mark.parametrize(
    ("processor", "message"),
    [
        ({"target_field": "x"}, "[field] required property is missing"),
        ({"field": "text", "fields": ["x"]}, "processor [trim] doesn't support one or more provided configuration"),
        ({"field": 3}, "[field] property isn't a string, but of type [java.lang.Integer]"),
    ],
)
def test_trim_configurations_opensearch_refuses_are_refused(cluster, processor, message) -> None:
    server, client, _model_id = cluster

    error = refused(client.ingest.put_pipeline, id="bad", body={"processors": [{"trim": processor}]})

    assert error.error == "parse_exception" and message in reason(error)
    assert "bad" not in server.pipelines


def test_a_fixed_token_length_pipeline_is_accepted_but_this_stand_in_does_not_cut_with_it(cluster) -> None:
    server, client, _model_id = cluster
    processor = {"algorithm": {"fixed_token_length": {"token_limit": 10}}, "field_map": {"text": "text_passages"}}

    error = refused(chunked, client=client, server=server, body={"text": "a b c"}, processor=processor)

    assert "delimiter algorithm only, not [fixed_token_length]" in reason(error)


def test_a_nested_vector_of_another_dimension_is_refused(cluster) -> None:
    server, client, _model_id = cluster
    client.indices.create(index="wide", body=passage_index(pipeline=None, dimension=3))
    body = {"embedding": [1.0, 0.0, 0.0], "passage_embedding": [{"knn": [1.0, 0.0, 0.0]}, {"knn": [1.0, 0.0]}]}
    try:
        error = refused(client.index, index="wide", id="1", body=body)
        assert (error.error, reason(error)) == (
            "mapper_parsing_exception",
            "Vector dimension mismatch. Expected: 3, Given: 2",
        )
        assert server.indices["wide"]["docs"] == {}
    finally:
        client.indices.delete(index="wide")


@pytest.mark.parametrize(
    ("nested_vector", "settings", "message"),
    [
        ({"type": "knn_vector"}, {"knn": True}, "field [passage_embedding.knn]: dimension is required"),
        (knn_vector(), {}, "field [passage_embedding.knn]: knn_vector needs index.knn: true"),
    ],
)
def test_a_nested_knn_vector_is_checked_as_a_top_level_one(cluster, nested_vector, settings, message) -> None:
    server, client, _model_id = cluster
    body = {
        "settings": {"index": settings},
        "mappings": {"properties": {"passage_embedding": {"type": "nested", "properties": {"knn": nested_vector}}}},
    }

    error = refused(client.indices.create, index="bad", body=body)

    assert (error.error, reason(error)) == ("mapper_parsing_exception", message)
    assert "bad" not in server.indices


def test_real_embeddings_fill_the_nested_field_and_a_smaller_nested_dimension_is_refused(ml_server) -> None:
    """With the packaged MiniLM: each passage gets a 384-d vector; a nested mapping of 8 refuses them."""
    server = ml_server()
    client = OpenSearch(hosts=[server.url], max_retries=0)
    model_id = _deployed_model(client)
    client.ingest.put_pipeline(id=PIPELINE, body={"processors": [CHUNKING, embedding_processor(model_id)]})
    client.indices.create(index="real", body=passage_index(dimension=384))
    small = passage_index(dimension=384)
    small["mappings"]["properties"]["passage_embedding"]["properties"]["knn"] = knn_vector(8)
    client.indices.create(index="small", body=small)

    client.index(index="real", id="1", body={"text": DOCS["b"]})
    error = refused(client.index, index="small", id="1", body={"text": DOCS["b"]})

    stored = server.indices["real"]["docs"]["1"]
    assert [len(item["knn"]) for item in stored["passage_embedding"]] == [384, 384, 384]
    assert reason(error) == "Vector dimension mismatch. Expected: 8, Given: 384"


# --- ingest pipelines ------------------------------------------------------------------------------------------------
def test_an_ingest_pipeline_is_read_back_and_a_missing_one_is_a_404_with_an_empty_body(cluster) -> None:
    _server, client, model_id = cluster

    found = client.ingest.get_pipeline(id=PIPELINE)

    assert found == {
        PIPELINE: {"description": "osft: passages", "processors": [CHUNKING, embedding_processor(model_id)]}
    }
    with pytest.raises(NotFoundError) as missing:
        client.ingest.get_pipeline(id="nope")
    assert missing.value.info == {}


@pytest.mark.parametrize(
    ("processor", "kind", "message"),
    [
        ({"algorithm": {"delimiter": {}}}, "parse_exception", "[field_map] required property is missing"),
        ({"field_map": {"text": "p"}}, "parse_exception", "[algorithm] required property is missing"),
        (
            {"field_map": ["text"], "algorithm": {}},
            "parse_exception",
            "[field_map] property isn't a map, but of type [java.util.ArrayList]",
        ),
        (
            {"field_map": {}, "algorithm": {"delimiter": {}, "fixed_token_length": {}}},
            "illegal_argument_exception",
            "Unable to create text_chunking processor as [algorithm] contains multiple algorithms",
        ),
        (
            {"field_map": {}, "algorithm": {"sentence": {}}},
            "illegal_argument_exception",
            "Chunking algorithm [sentence] is not supported. Supported chunking algorithms are "
            "[fixed_token_length, delimiter, fixed_char_length]",
        ),
        (
            {"field_map": {}, "algorithm": {"delimiter": "."}},
            "illegal_argument_exception",
            "Unable to create text_chunking processor as parameters for [delimiter] algorithm must be an object",
        ),
        (delimiter(delimiter=""), "illegal_argument_exception", "Parameter [delimiter] should not be empty."),
        (
            delimiter(delimiter=1),
            "illegal_argument_exception",
            "Parameter [delimiter] must be of java.lang.String type",
        ),
        (
            delimiter(max_chunk_limit=0),
            "illegal_argument_exception",
            "Parameter [max_chunk_limit] must be positive or -1 to disable this parameter",
        ),
        (
            delimiter(max_chunk_limit=-2),
            "illegal_argument_exception",
            "Parameter [max_chunk_limit] must be positive or -1 to disable this parameter",
        ),
        (
            delimiter(max_chunk_limit=2.5),
            "illegal_argument_exception",
            "Parameter [max_chunk_limit] must be of java.lang.Integer type",
        ),
        (
            {"field_map": {}, "algorithm": {"fixed_token_length": {"overlap_rate": 0.7}}},
            "illegal_argument_exception",
            "Parameter [overlap_rate] must be between 0.0 and 0.5",
        ),
        (
            {**delimiter(), "ignore_missing": "yes"},
            "parse_exception",
            "[ignore_missing] property isn't a boolean, but of type [java.lang.String]",
        ),
        (
            {**delimiter(), "fields": ["text"]},
            "parse_exception",
            "processor [text_chunking] doesn't support one or more provided configuration parameters [fields]",
        ),
    ],
)
def test_text_chunking_configurations_the_plugin_refuses_are_refused(cluster, processor, kind, message) -> None:
    server, client, _model_id = cluster

    error = refused(client.ingest.put_pipeline, id="bad", body={"processors": [{"text_chunking": processor}]})

    assert (error.error, reason(error)) == (kind, message)
    assert "bad" not in server.pipelines


@pytest.mark.parametrize(
    "processor",
    [
        {"field_map": {"text": "p"}, "algorithm": {}},  # fixed_token_length with its defaults
        {"field_map": {"text": "p"}, "algorithm": {"fixed_token_length": {"token_limit": 10, "overlap_rate": 0.2}}},
        {**delimiter(max_chunk_limit="5", unknown=True), "tag": "t", "description": "d", "ignore_missing": True},
    ],
)
def test_text_chunking_configurations_the_plugin_accepts_are_accepted(cluster, processor) -> None:
    server, client, _model_id = cluster

    assert client.ingest.put_pipeline(id="ok", body={"processors": [{"text_chunking": processor}]}) == {
        "acknowledged": True
    }
    assert server.pipelines.pop("ok") == {"processors": [{"text_chunking": processor}]}


# --- searches --------------------------------------------------------------------------------------------------------
def test_a_nested_query_ranks_documents_by_their_best_passage(cluster) -> None:
    """By the document's own vector b leads (0.8 > 0.5); by its best passage a does (1.0 > 0.9)."""
    _server, client, model_id = cluster

    assert list(search(client, neural(model_id))) == ["b", "a", "c"]
    assert search(client, nested(model_id)) == NESTED_BEST
    assert list(search(client, nested(model_id))) == ["a", "b", "c"]
    assert search(client, nested(model_id, k=2)) == {"a": 1.0, "b": 0.9}  # k: the top k documents


@pytest.mark.parametrize("score_mode", [None, "avg", "min", "sum"])
def test_every_score_mode_scores_the_one_nested_vector_k_nn_matches(cluster, score_mode) -> None:
    """Averaged over all passages b would score (0.5 + 0.9 + 0.5) / 3 = 0.63 and lead a's (1.0 + 0.0) / 2; but k-NN
    matches only each document's nearest nested vector, so every mode but none gives that vector's score."""
    _server, client, model_id = cluster

    assert search(client, nested(model_id, score_mode=score_mode)) == NESTED_BEST


def test_score_mode_none_scores_zero(cluster) -> None:
    _server, client, model_id = cluster

    assert search(client, nested(model_id, score_mode="none")) == {"a": 0.0, "b": 0.0, "c": 0.0}


@pytest.mark.parametrize(
    ("query", "kind", "message"),
    [
        (
            {"nested": {"path": "passages", "score_mode": "max", "query": {"match_all": {}}}},
            "query_shard_exception",
            "failed to create query: [nested] failed to find nested object under path [passages]",
        ),
        (
            {"nested": {"path": "embedding", "query": {"match_all": {}}}},
            "query_shard_exception",
            "failed to create query: [nested] nested object under path [embedding] is not of nested type",
        ),
        ({"nested": {"query": {"match_all": {}}}}, "illegal_argument_exception", "[nested] requires 'path' field"),
        (
            {"nested": {"path": "passage_embedding", "score_mode": "median", "query": {"match_all": {}}}},
            "illegal_argument_exception",
            "No score mode for child query [median] found",
        ),
        (
            {"nested": {"path": "passage_embedding", "query": {"match_all": {}}, "scoremode": "max"}},
            "parsing_exception",
            "[nested] query does not support [scoremode]",
        ),
    ],
)
def test_nested_queries_opensearch_refuses_are_refused(cluster, query, kind, message) -> None:
    _server, client, _model_id = cluster

    error = refused(client.search, index=INDEX, body={"query": query})

    assert (error.info["error"]["root_cause"][0]["type"], error.info["error"]["root_cause"][0]["reason"]) == (
        kind,
        message,
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("outside", "is not under the nested path [passage_embedding]"),
        ("unwrapped", "lies under the nested field [passage_embedding]"),
    ],
)
def test_a_passage_field_outside_its_nested_query_is_refused(cluster, query, message) -> None:
    _server, client, model_id = cluster
    body = {
        "outside": {"nested": {"path": "passage_embedding", "query": neural(model_id, "embedding")}},
        "unwrapped": neural(model_id, "passage_embedding.knn"),
    }[query]

    error = refused(client.search, index=INDEX, body={"query": body})

    assert message in reason(error)


def test_a_bool_of_should_clauses_sums_the_scores_of_the_clauses_that_returned_each_document(cluster) -> None:
    """neural k=1 returns b (0.8) only; nested k=2 returns a (1.0) and b (0.9); c neither."""
    _server, client, model_id = cluster

    both = search(client, {"bool": {"should": [neural(model_id, k=1), nested(model_id, k=2)]}})

    assert both == {"b": pytest.approx(0.8 + 0.9), "a": 1.0}
    assert search(client, {"bool": {"should": [neural(model_id), nested(model_id)]}}) == {
        "b": pytest.approx(0.8 + 0.9),
        "a": pytest.approx(0.5 + 1.0),
        "c": pytest.approx(0.2 + 0.2),
    }


# BM25 of "apples": a (6 tokens) and b (7 tokens) hold it once, avgdl 15 / 3 = 5, one idf: min_max leaves
# 1 / (1 + 1.2 * (0.25 + 0.75 * dl / 5)): a 0.420 → 1.0, b 0.391 → 0.001; c 0.
# neural (k 3): b 0.8, a 0.5, c 0.2 → 1.0, 0.5, 0.001.  nested (k 3): a 1.0, b 0.9, c 0.2 → 1.0, 0.875, 0.001.
def test_a_three_clause_hybrid_of_match_neural_and_nested_combines_with_the_pipeline_weights(cluster) -> None:
    _server, client, model_id = cluster
    client.search_pipeline.put(id="three", body=normalization([0.5, 0.25, 0.25]))

    answer = search(
        client, {"hybrid": {"queries": [MATCH_APPLES, neural(model_id), nested(model_id)]}}, search_pipeline="three"
    )

    assert answer == {
        "a": pytest.approx(0.5 * 1.0 + 0.25 * 0.5 + 0.25 * 1.0),  # 0.875
        "b": pytest.approx(0.5 * 0.001 + 0.25 * 1.0 + 0.25 * 0.875),  # 0.46925
        "c": pytest.approx(0.5 * 0 + 0.25 * 0.001 + 0.25 * 0.001),  # 0.0005
    }
    assert list(answer) == ["a", "b", "c"]


def test_a_bool_clause_in_a_hybrid_is_normalised_as_one_clause(cluster) -> None:
    """The bool's sums b 1.7, a 1.5, c 0.4 → min_max 1.0, 0.846154, 0.001, beside BM25's a 1.0, b 0.001."""
    _server, client, model_id = cluster
    client.search_pipeline.put(id="two", body=normalization([0.5, 0.5]))
    model = {"bool": {"should": [neural(model_id), nested(model_id)]}}

    answer = search(client, {"hybrid": {"queries": [MATCH_APPLES, model]}}, search_pipeline="two")

    assert answer == {
        "a": pytest.approx(0.5 * 1.0 + 0.5 * 1.1 / 1.3),
        "b": pytest.approx(0.5 * 0.001 + 0.5 * 1.0),
        "c": pytest.approx(0.5 * 0.001),
    }


def test_a_three_clause_hybrid_through_a_two_weight_pipeline_is_refused(cluster) -> None:
    _server, client, model_id = cluster
    client.search_pipeline.put(id="two", body=normalization([0.5, 0.5]))
    body = {"query": {"hybrid": {"queries": [MATCH_APPLES, neural(model_id), nested(model_id)]}}}

    error = refused(client.search, index=INDEX, body=body, params={"search_pipeline": "two"})

    assert (error.error, reason(error)) == (
        "illegal_argument_exception",
        "number of weights [2] must match number of sub-queries [3] in hybrid query",
    )
