"""The exported count is checked against the count of the PIT or scroll contexts it read from."""

from __future__ import annotations

import threading

import pytest
from opensearch_server import ApiError, FakeOpenSearch, Reply, Request, is_page_request, total_hits

from osft.common.spec.source import OpenSearchSource
from osft.common.stage import run_stage
from osft.extractor.opensearch_source import OpenSearchExporter
from osft.extractor.stage import STAGE
from tests.extractor.conftest import opensearch_source


def drop_one_hit(server: FakeOpenSearch):
    """A fault that answers one page with its first hit missing, as a faulty node or proxy would."""
    lock = threading.Lock()
    dropped: list[str] = []

    def fault(request: Request, number: int) -> Reply | None:
        if not is_page_request(request):
            return None
        with lock:
            if dropped:
                return None
            try:
                reply = server._route(request)
            except ApiError as exc:
                return exc.reply
            hits = reply.body["hits"]["hits"] if reply.status == 200 else []
            if hits:
                dropped.append(hits.pop(0)["_id"])
            return reply

    return fault


@pytest.mark.parametrize("pit", [True, False])
def test_an_export_short_of_the_pit_count_is_a_warning_naming_both_numbers(fake_opensearch, write_spec, tmp_path, pit):
    server = fake_opensearch(docs=300, pit=pit)
    server.faults.append(drop_one_hit(server))
    spec = write_spec(opensearch_source(server.url, slices=3))

    manifest, _ = run_stage(STAGE, spec, str(tmp_path / "run"))

    assert manifest.stats.documents_written == 299
    assert manifest.counts["index_count"] == 300
    assert manifest.counts["expected_hits"] == 300
    assert manifest.counts["hits_read"] == 299
    context = "point in time" if pit else "scroll"
    (warning,) = [n for n in manifest.notes if n.startswith("warning:")]
    assert f"read 299 document(s) but the {context} it read from held 300" in warning


def test_a_complete_export_records_the_counts_without_a_warning(fake_opensearch, write_spec, tmp_path):
    server = fake_opensearch(docs=250)
    spec = write_spec(opensearch_source(server.url, query={"term": {"kind": "even"}}))

    manifest, _ = run_stage(STAGE, spec, str(tmp_path / "run"))

    assert manifest.counts["index_count"] == manifest.counts["expected_hits"] == 125
    assert manifest.counts["hits_read"] == 125
    assert not [n for n in manifest.notes if n.startswith("warning:")]


def test_documents_deleted_between_the_count_and_the_pit_are_no_warning(fake_opensearch, write_spec, tmp_path):
    server = fake_opensearch(docs=200)

    def delete_ten_before_the_pit(request: Request, number: int) -> None:
        if request.method == "POST" and request.path.endswith("/_search/point_in_time"):
            with server.lock:
                del server.indexes["docs"][:10]

    server.faults.append(delete_ten_before_the_pit)
    spec = write_spec(opensearch_source(server.url))

    manifest, _ = run_stage(STAGE, spec, str(tmp_path / "run"))

    assert manifest.counts["index_count"] == 200
    assert manifest.counts["expected_hits"] == manifest.counts["hits_read"] == 190
    assert not [n for n in manifest.notes if n.startswith("warning:")]


def test_pages_after_the_first_do_not_count_again(fake_opensearch):
    server = fake_opensearch(docs=300)
    exporter = OpenSearchExporter(OpenSearchSource.model_validate(opensearch_source(server.url, slices=2)))

    list(exporter.hits())

    pages = [r.body for r in server.requests if r.body and "pit" in r.body]
    counted = [p for p in pages if p["track_total_hits"] is True]
    assert len(counted) == 2 and all("search_after" not in p for p in counted)
    assert exporter.state.expected_hits(2) == 300 and exporter.shortfall() is None


def test_without_exact_slice_counts_the_count_before_the_export_is_used(fake_opensearch):
    server = fake_opensearch(docs=10)
    exporter = OpenSearchExporter(OpenSearchSource.model_validate(opensearch_source(server.url, slices=2)))
    exporter.state.iteration = "pit"
    exporter.state.expected, exporter.state.hits_read = 10, 8
    exporter.state.slice_totals = {0: 5, 1: None}

    message = exporter.shortfall()

    assert message is not None and "read 8 document(s) but the index counted 10" in message


@pytest.mark.parametrize(
    ("track", "matched", "total"),
    [
        (None, 10_000, {"value": 10_000, "relation": "eq"}),
        (None, 10_001, {"value": 10_000, "relation": "gte"}),
        (True, 10_001, {"value": 10_001, "relation": "eq"}),
        (50, 60, {"value": 50, "relation": "gte"}),
        (False, 60, None),
    ],
)
def test_the_fake_server_reports_hits_total_like_opensearch(track, matched, total):
    assert total_hits(track, matched) == total
