"""deploy.opensearch.hybrid_search: the search pipeline register creates, the query it writes, the check it runs."""

from __future__ import annotations

import json

import pytest

from osft.common.errors import OsftError
from osft.common.hybrid_search import search_pipeline_body
from osft.common.stage import run_stage
from osft.registrar.stage import STAGE
from tests.registrar.conftest import opensearch_section


def local_section(url: str, **overrides) -> dict:
    return opensearch_section(url, mode="local", local_upload="chunks", **overrides)


def test_the_pipeline_evaluate_scores_is_created_and_a_hybrid_query_through_it_finds_the_document(
    run_folder, ml_server
) -> None:
    server = ml_server()
    spec, run_dir = run_folder({"opensearch": local_section(server.url, search_check={}, hybrid_search={})})

    manifest, _ = run_stage(STAGE, str(spec), str(run_dir))

    stats = manifest.stats
    assert server.search_pipelines["osft-hybrid"] == search_pipeline_body(0.5)
    processor = server.search_pipelines["osft-hybrid"]["phase_results_processors"][0]["normalization-processor"]
    assert processor["combination"]["parameters"]["weights"] == [0.5, 0.5]
    assert stats.search_pipeline == "osft-hybrid" and "search pipeline osft-hybrid" in stats.created
    assert stats.smoke_test.endswith(
        "neural query returned the right document first of 3; "
        "hybrid query through osft-hybrid returned the right document first of 3"
    )
    (hybrid,) = [c for c in server.calls("POST", "/osft-smoke-test/_search") if "hybrid" in c["query"]]
    assert [next(iter(clause)) for clause in hybrid["query"]["hybrid"]["queries"]] == ["match", "neural"]
    example = json.loads((run_dir / "register" / "hybrid_query.json").read_text())
    assert example["request"] == "GET /<index>/_search?search_pipeline=osft-hybrid"
    match, neural = example["body"]["query"]["hybrid"]["queries"]
    assert match == {"match": {"text": {"query": "the user's query"}}}
    assert neural == {"neural": {"embedding": {"query_text": "the user's query", "model_id": stats.model_id, "k": 100}}}
    assert example["body"]["size"] == 100, "each clause combines its top size documents: what evaluate scored"
    assert "hybrid_query.json" in {record.path.rsplit("/", 1)[-1] for record in manifest.outputs}
    registration = json.loads((run_dir / "register" / "registration.json").read_text())
    assert registration["opensearch"]["search_pipeline"] == "osft-hybrid"
    assert server.indices == {}, "the check's index is deleted; the search pipeline stays for the search box"


def test_a_second_run_reuses_the_pipeline_and_a_new_weight_updates_it(run_folder, ml_server) -> None:
    server = ml_server()
    spec, run_dir = run_folder({"opensearch": local_section(server.url, hybrid_search={"keyword_weight": 0.3})})
    run_stage(STAGE, str(spec), str(run_dir))

    again, _ = run_stage(STAGE, str(spec), str(run_dir), force=True)

    assert again.stats.created == [] and "search pipeline osft-hybrid" in again.stats.reused
    assert len(server.calls("PUT", "/_search/pipeline/")) == 1
    processor = server.search_pipelines["osft-hybrid"]["phase_results_processors"][0]["normalization-processor"]
    assert processor["combination"]["parameters"]["weights"] == [0.3, 0.7]

    changed = json.loads(spec.read_text())
    changed["deploy"]["opensearch"]["hybrid_search"]["keyword_weight"] = 0.6
    spec.write_text(json.dumps(changed))
    updated, _ = run_stage(STAGE, str(spec), str(run_dir))

    assert updated.stats.created == ["search pipeline osft-hybrid"]
    processor = server.search_pipelines["osft-hybrid"]["phase_results_processors"][0]["normalization-processor"]
    assert processor["combination"]["parameters"]["weights"] == [0.6, 0.4]


def test_a_pipeline_of_that_name_osft_did_not_create_is_left_alone(run_folder, ml_server) -> None:
    server = ml_server()
    theirs = {"description": "the search team's pipeline", "phase_results_processors": []}
    server.search_pipelines["shop-hybrid"] = theirs
    spec, run_dir = run_folder({"opensearch": local_section(server.url, hybrid_search={"pipeline": "shop-hybrid"})})

    with pytest.raises(OsftError, match="search pipeline shop-hybrid already exists and osft did not create it"):
        run_stage(STAGE, str(spec), str(run_dir))

    assert server.search_pipelines["shop-hybrid"] == theirs


def test_a_sparse_model_is_queried_with_neural_sparse_through_its_query_tokenizer() -> None:
    from osft.common.spec.deploy import HybridSearch
    from osft.registrar.search_pipeline import example_query

    spec = HybridSearch(text_field="body", embedding_field="body_sparse")
    example = example_query(spec, "sparse", "doc-model", "tokenizer-model")

    match, sparse = example["body"]["query"]["hybrid"]["queries"]
    assert match == {"match": {"body": {"query": "the user's query"}}}
    assert sparse == {
        "neural_sparse": {"body_sparse": {"query_text": "the user's query", "model_id": "tokenizer-model"}}
    }


@pytest.mark.parametrize(
    ("hybrid_search", "field"),
    [({"keyword_weight": 1.0}, "keyword_weight"), ({"pipeline": "a/b"}, "pipeline"), ({"k": 0}, "k")],
)
def test_a_bad_hybrid_search_setting_is_named_by_its_field_path(hybrid_search: dict, field: str) -> None:
    from osft.common.errors import SpecError
    from osft.common.spec import parse_spec

    spec = {
        "name": "tiny",
        "source": {"type": "local", "path": "corpus.jsonl"},
        "deploy": {
            "opensearch": {"connection": {"url": "https://x:9200"}, "mode": "local", "hybrid_search": hybrid_search}
        },
    }
    with pytest.raises(SpecError, match=rf"deploy\.opensearch\.hybrid_search\.{field}"):
        parse_spec(spec)
