"""deploy.opensearch.passage_vectors: the pipelines register creates, the index body and queries it writes, the check."""

from __future__ import annotations

import json

import pytest
from opensearchpy import OpenSearch

from osft.common.errors import OsftError, SpecError
from osft.common.hybrid_search import clause_weights
from osft.common.passage_search import PassageFields, ingest_pipeline_body
from osft.common.passages import document_passages
from osft.common.spec import parse_spec
from osft.common.stage import run_stage
from osft.registrar.passage_index import INGEST_DESCRIPTION
from osft.registrar.stage import STAGE
from osft.trainer.passage_vectors import HYBRID_WEIGHTS
from tests.registrar.conftest import opensearch_section

# The relevant sentence sits in the middle of a long document about something else, with a decimal that the
# delimiter splits inside ("0." then "05 ..."), as the cluster would, and spaces after the last full stop, which
# untrimmed would be a blank passage that text_embedding refuses.
LONG_DOCUMENT = (
    "The committee met on a rainy Tuesday to review the annual budget. Travel costs rose by 0.05 percent. "
    "Vitamin D supplements reduce the risk of hip fractures in older women. The cafeteria menu was also "
    "discussed. Members agreed to meet again in spring.  "
)
OTHER_DOCUMENTS = (
    "Hip replacement surgery is scheduled by the orthopaedic department of the hospital.",
    "Older buildings in the city centre need new roofs before winter.",
    "A short note about café opening hours.",
)


def passage_section(url: str, **overrides) -> dict:
    return opensearch_section(url, mode="local", local_upload="chunks", **overrides)


def filled(body: dict, text: str) -> dict:
    """An example body from passage_index.json with the user's query in place of the placeholder."""
    return json.loads(json.dumps(body).replace("the user's query", text))


def test_register_creates_the_passage_pipelines_writes_the_index_and_queries_and_checks_them(
    run_folder, ml_server
) -> None:
    server = ml_server()
    section = passage_section(server.url, search_check={}, hybrid_search={}, passage_vectors={})
    spec, run_dir = run_folder({"opensearch": section})

    manifest, _ = run_stage(STAGE, str(spec), str(run_dir))

    stats = manifest.stats
    assert server.pipelines["osft-passages"] == ingest_pipeline_body(
        stats.model_id, PassageFields(), INGEST_DESCRIPTION
    )
    processor = server.search_pipelines["osft-hybrid-passages"]["phase_results_processors"][0]
    assert processor["normalization-processor"]["combination"]["parameters"]["weights"] == [0.5, 0.25, 0.25]
    assert list(HYBRID_WEIGHTS.values()) == [0.5, 0.25, 0.25], "evaluate scores the hybrid at these weights"
    assert {"ingest pipeline osft-passages", "search pipeline osft-hybrid-passages"} <= set(stats.created)
    assert stats.passage_pipeline == "osft-passages"
    assert stats.smoke_test.endswith(
        "query of document and passage vectors returned the right document first of 3; "
        "hybrid query with passage vectors through osft-hybrid-passages returned the right document first of 3"
    )
    (bool_search,) = [c for c in server.calls("POST", "/osft-smoke-test/_search") if "bool" in c["query"]]
    neural, nested = bool_search["query"]["bool"]["should"]
    assert (
        next(iter(neural)) == "neural"
        and nested["nested"]["path"] == "passage_embedding"
        and nested["nested"]["score_mode"] == "max"
    )
    assert "passage_index.json" in {record.path.rsplit("/", 1)[-1] for record in manifest.outputs}
    assert any("passage_index.json" in note for note in manifest.notes)
    registration = json.loads((run_dir / "register" / "registration.json").read_text())
    assert registration["opensearch"]["passage_pipeline"] == "osft-passages"
    assert server.indices == {} and "osft-smoke-test" not in server.pipelines, "the check cleans up after itself"

    written = json.loads((run_dir / "register" / "passage_index.json").read_text())
    assert written["index"]["body"]["settings"]["index"]["default_pipeline"] == "osft-passages"
    mapping = written["index"]["body"]["mappings"]["properties"]
    assert mapping["passage_embedding"]["properties"]["knn"]["dimension"] == 384
    assert written["hybrid_query"]["request"] == "GET /<index>/_search?search_pipeline=osft-hybrid-passages"


def test_an_index_built_from_passage_index_json_finds_a_document_by_one_of_its_sentences(run_folder, ml_server) -> None:
    server = ml_server()
    spec, run_dir = run_folder(
        {"opensearch": passage_section(server.url, hybrid_search={}, passage_vectors={"k": 4}, smoke_test=False)}
    )
    run_stage(STAGE, str(spec), str(run_dir))
    written = json.loads((run_dir / "register" / "passage_index.json").read_text())
    client = OpenSearch(hosts=[server.url])

    client.indices.create(index="papers", body=written["index"]["body"])
    for number, text in enumerate((LONG_DOCUMENT, *OTHER_DOCUMENTS)):
        client.index(index="papers", id=str(number), body={"text": text}, params={"refresh": "true"})
    claim = "Taking vitamin D lowers hip fracture risk for elderly women."
    plain = client.search(index="papers", body=filled(written["query"]["body"], claim))
    hybrid = client.search(
        index="papers",
        body=filled(written["hybrid_query"]["body"], claim),
        params={"search_pipeline": "osft-hybrid-passages"},
    )

    stored = server.indices["papers"]["docs"]["0"]
    assert stored["text_passages"] == document_passages(LONG_DOCUMENT), "evaluate cuts passages as the cluster does"
    assert stored["text"] == LONG_DOCUMENT, "the text is trimmed into the passages field, not in place"
    assert len(stored["passage_embedding"]) == 6 and len(stored["passage_embedding"][0]["knn"]) == 384
    assert plain["hits"]["hits"][0]["_id"] == "0"
    assert hybrid["hits"]["hits"][0]["_id"] == "0"


def test_a_second_run_reuses_both_pipelines_and_a_foreign_ingest_pipeline_is_left_alone(run_folder, ml_server) -> None:
    server = ml_server()
    section = passage_section(server.url, hybrid_search={"keyword_weight": 0.3}, passage_vectors={})
    spec, run_dir = run_folder({"opensearch": section})
    run_stage(STAGE, str(spec), str(run_dir))

    again, _ = run_stage(STAGE, str(spec), str(run_dir), force=True)

    assert {"ingest pipeline osft-passages", "search pipeline osft-hybrid-passages"} <= set(again.stats.reused)
    assert len(server.calls("PUT", "/_ingest/pipeline/osft-passages")) == 1
    processor = server.search_pipelines["osft-hybrid-passages"]["phase_results_processors"][0]
    weights = processor["normalization-processor"]["combination"]["parameters"]["weights"]
    assert weights == clause_weights(0.3, 2) == [0.3, 0.35, 0.35]

    theirs = {"description": "the search team's pipeline", "processors": []}
    server.pipelines["shop-passages"] = theirs
    changed = json.loads(spec.read_text())
    changed["deploy"]["opensearch"]["passage_vectors"]["ingest_pipeline"] = "shop-passages"
    spec.write_text(json.dumps(changed))
    with pytest.raises(OsftError, match="ingest pipeline shop-passages already exists and osft did not create it"):
        run_stage(STAGE, str(spec), str(run_dir))
    assert server.pipelines["shop-passages"] == theirs


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"search_check": {"pipeline": "osft-passages"}}, "the check deletes its pipeline afterwards"),
        (
            {"hybrid_search": {"pipeline": "p"}, "passage_vectors": {"hybrid_pipeline": "p"}},
            "needs a pipeline of its own",
        ),
        (
            {"hybrid_search": {"text_field": "body"}, "passage_vectors": {}},
            r"hybrid_search\.text_field \('body'\) and passage_vectors\.text_field \('text'\)",
        ),
        ({"passage_vectors": {"passages_field": "text"}}, "must be four different fields"),
    ],
)
def test_passage_settings_that_cannot_work_together_are_refused(change: dict, message: str) -> None:
    section = {"connection": {"url": "http://localhost:9200"}, "mode": "local", "passage_vectors": {}, **change}
    with pytest.raises(SpecError, match=message):
        parse_spec({"name": "r", "source": {"type": "local", "path": "docs"}, "deploy": {"opensearch": section}})


def test_passage_vectors_are_refused_for_a_sparse_model() -> None:
    with pytest.raises(SpecError, match=r"deploy\.opensearch\.passage_vectors: passage vectors are nested knn_vector"):
        parse_spec(
            {
                "name": "r",
                "source": {"type": "local", "path": "docs"},
                "model": {"type": "sparse"},
                "deploy": {
                    "opensearch": {
                        "connection": {"url": "http://localhost:9200"},
                        "mode": "local",
                        "passage_vectors": {},
                    }
                },
            }
        )


def test_a_model_that_fails_its_smoke_test_never_becomes_the_ingest_pipelines_model(run_folder, ml_server) -> None:
    server = ml_server(local_embed=lambda _model, texts: [[1.0] + [0.0] * 383 for _ in texts])
    spec, run_dir = run_folder({"opensearch": passage_section(server.url, passage_vectors={})})

    with pytest.raises(OsftError, match="smoke"):
        run_stage(STAGE, str(spec), str(run_dir))

    assert "osft-passages" not in server.pipelines
    assert not (run_dir / "register" / "passage_index.json").exists()
