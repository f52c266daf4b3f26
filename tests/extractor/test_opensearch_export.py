"""Exporting an index through opensearch-py against the strict local OpenSearch server."""

from __future__ import annotations

import pytest
from opensearch_server import CUT, DROP, DropAfter, RateLimitStorm, always, is_scroll_continuation

from osft.common.errors import CredentialsError, ServiceError
from osft.common.spec.source import OpenSearchSource
from osft.extractor.opensearch_source import OpenSearchExporter
from tests.extractor.conftest import opensearch_source


def exporter_for(url: str, **overrides) -> OpenSearchExporter:
    return OpenSearchExporter(OpenSearchSource.model_validate(opensearch_source(url, **overrides)))


def exported_ids(exporter: OpenSearchExporter) -> list[str]:
    return [hit["_id"] for hit in exporter.hits()]


def test_pit_slices_overlap_nothing_and_miss_nothing(fake_opensearch):
    server = fake_opensearch(docs=2500)
    exporter = exporter_for(server.url, slices=4, page_size=97)

    ids = exported_ids(exporter)

    assert len(ids) == 2500
    assert set(ids) == {f"d{i}" for i in range(2500)}
    slices = {r.body["slice"]["id"] for r in server.requests if r.body and "slice" in r.body}
    assert slices == {0, 1, 2, 3}
    assert exporter.state.iteration == "pit"


def test_pit_pages_use_search_after_with_a_tiebreak_sort_and_no_index_in_path(fake_opensearch):
    server = fake_opensearch(docs=300)
    exported_ids(exporter_for(server.url, slices=2))

    pages = [r for r in server.requests if r.body and "pit" in r.body]
    assert pages and all(r.path == "/_search" for r in pages)
    assert all(r.body["sort"] == [{"_doc": "asc"}, {"_id": "asc"}] for r in pages)
    assert any("search_after" in r.body for r in pages)


def test_pit_is_deleted_after_a_complete_export(fake_opensearch):
    server = fake_opensearch(docs=200)
    exported_ids(exporter_for(server.url))

    assert server.pits_created == 1
    assert server.pits_deleted == 1
    assert server.open_contexts == 0


def test_a_429_storm_is_retried_with_backoff_and_loses_nothing(fake_opensearch):
    server = fake_opensearch(docs=1500)
    storm = RateLimitStorm(count=25, every=2)
    server.faults.append(storm)
    exporter = exporter_for(server.url, page_size=20, connection={"max_retries": 8})

    ids = exported_ids(exporter)

    assert storm.left == 0
    assert exporter.retry.retries >= 25
    assert sorted(ids) == sorted(f"d{i}" for i in range(1500))


def test_endless_429_fails_with_one_message_and_still_deletes_the_pit(fake_opensearch):
    server = fake_opensearch(docs=500)
    server.faults.append(always(429))
    exporter = exporter_for(server.url, connection={"max_retries": 2})

    with pytest.raises(ServiceError, match="429 Too Many Requests") as caught:
        exported_ids(exporter)

    assert "source.slices" in caught.value.render()
    assert server.pits_created == 1 and server.pits_deleted == 1
    assert server.open_contexts == 0


@pytest.mark.parametrize("mode", [DROP, CUT])
def test_a_connection_drop_mid_export_resumes_without_loss_or_duplicates(fake_opensearch, mode):
    server = fake_opensearch(docs=2000)
    server.faults.append(DropAfter(after=6, times=3, mode=mode))
    exporter = exporter_for(server.url)

    ids = exported_ids(exporter)

    assert len(ids) == 2000 and len(set(ids)) == 2000
    assert exporter.retry.retries >= 3
    assert server.open_contexts == 0


def test_scroll_is_used_where_point_in_time_is_unavailable(fake_opensearch):
    server = fake_opensearch(docs=1200, pit=False, version="2.3.0")
    exporter = exporter_for(server.url, slices=3)

    ids = exported_ids(exporter)

    assert exporter.state.iteration == "scroll"
    assert sorted(ids) == sorted(f"d{i}" for i in range(1200))
    assert server.scrolls_created == 3
    assert server.open_contexts == 0


def test_scroll_contexts_are_cleared_when_the_export_fails(fake_opensearch):
    server = fake_opensearch(docs=1200, pit=False)
    server.faults.append(DropAfter(after=2, times=1, only=is_scroll_continuation))
    exporter = exporter_for(server.url, slices=3)

    with pytest.raises(ServiceError, match="scroll cannot be resumed"):
        exported_ids(exporter)

    assert server.scrolls_created >= 1
    assert server.scrolls_cleared == server.scrolls_created
    assert server.open_contexts == 0


def test_pit_is_deleted_when_the_reader_stops_early(fake_opensearch):
    server = fake_opensearch(docs=1000)
    hits = exporter_for(server.url).hits()
    for _ in range(10):
        next(hits)
    hits.close()

    assert server.pits_deleted == 1 and server.open_contexts == 0


def test_iteration_pit_on_a_cluster_without_pit_says_to_use_scroll(fake_opensearch):
    server = fake_opensearch(docs=10, pit=False)
    with pytest.raises(ServiceError, match="point in time") as caught:
        exported_ids(exporter_for(server.url, iteration="pit"))
    assert "source.iteration" in caught.value.render()


def test_user_query_filters_documents(fake_opensearch):
    server = fake_opensearch(docs=400)
    exporter = exporter_for(server.url, query={"bool": {"filter": [{"term": {"kind": "even"}}]}})

    ids = exported_ids(exporter)

    assert exporter.state.expected == 200
    assert sorted(ids) == sorted(f"d{i}" for i in range(0, 400, 2))


def test_source_filter_asks_only_for_mapped_fields(fake_opensearch):
    server = fake_opensearch(docs=50)
    hits = list(exporter_for(server.url, slices=1).hits())

    assert set(hits[0]["_source"]) == {"title", "body"}
    assert set(hits[0]["_source"]["body"]) == {"content"}


def test_a_nonexistent_index_is_named_in_one_message(fake_opensearch):
    server = fake_opensearch(docs=5)
    with pytest.raises(ServiceError, match="index 'nope' does not exist") as caught:
        exported_ids(exporter_for(server.url, index="nope"))
    assert "_cat/indices" in caught.value.render()


def test_an_invalid_query_is_reported_as_rejected(fake_opensearch):
    server = fake_opensearch(docs=5)
    with pytest.raises(ServiceError, match="unknown query \\[nonsense\\]") as caught:
        exported_ids(exporter_for(server.url, query={"nonsense": {}}))
    assert "source.query" in caught.value.render()


def test_bad_credentials_end_in_one_clear_message(fake_opensearch, monkeypatch):
    server = fake_opensearch(docs=5, users={"reader": "right"})
    monkeypatch.setenv("OS_PASSWORD", "wrong")
    auth = {"type": "basic", "username": "reader", "password_env": "OS_PASSWORD"}
    with pytest.raises(CredentialsError, match="refused the credentials \\(401\\)"):
        exported_ids(exporter_for(server.url, connection={"auth": auth}))


def test_basic_auth_password_comes_from_the_environment(fake_opensearch, monkeypatch):
    server = fake_opensearch(docs=30, users={"reader": "s3cret"})
    monkeypatch.setenv("OS_PASSWORD", "s3cret")
    auth = {"type": "basic", "username": "reader", "password_env": "OS_PASSWORD"}
    assert len(exported_ids(exporter_for(server.url, connection={"auth": auth}))) == 30


def test_a_missing_password_variable_is_named(fake_opensearch, monkeypatch):
    server = fake_opensearch(docs=5, users={"reader": "x"})
    monkeypatch.delenv("OS_PASSWORD_UNSET", raising=False)
    auth = {"type": "basic", "username": "reader", "password_env": "OS_PASSWORD_UNSET"}
    with pytest.raises(CredentialsError, match="OS_PASSWORD_UNSET"):
        exporter_for(server.url, connection={"auth": auth})


def test_basic_auth_password_comes_from_secrets_manager(fake_opensearch, aws_env):
    import json

    import boto3
    from moto import mock_aws

    server = fake_opensearch(docs=20, users={"reader": "from-secret"})
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        arn = client.create_secret(Name="os-reader", SecretString=json.dumps({"password": "from-secret"}))["ARN"]
        auth = {"type": "basic", "username": "reader", "password_secret_arn": arn}
        assert len(exported_ids(exporter_for(server.url, connection={"auth": auth}))) == 20


def test_a_missing_secret_is_named(fake_opensearch, aws_env):
    from moto import mock_aws

    server = fake_opensearch(docs=5)
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf"
    with mock_aws(), pytest.raises(CredentialsError, match="no such secret"):
        exporter_for(server.url, connection={"auth": {"type": "basic", "username": "u", "password_secret_arn": arn}})


@pytest.mark.parametrize("service", ["es", "aoss"])
def test_sigv4_signs_every_request(fake_opensearch, aws_env, service):
    server = fake_opensearch(docs=40, sigv4=("eu-west-1", service))
    auth = {"type": "sigv4", "region": "eu-west-1", "service": service}

    assert len(exported_ids(exporter_for(server.url, connection={"auth": auth}))) == 40
    assert all(r.headers["authorization"].startswith("AWS4-HMAC-SHA256") for r in server.requests)


def test_unsigned_requests_to_a_sigv4_cluster_are_refused_clearly(fake_opensearch):
    server = fake_opensearch(docs=5, sigv4=("eu-west-1", "es"))
    with pytest.raises(CredentialsError, match="does not allow"):
        exported_ids(exporter_for(server.url))


def test_an_unreachable_host_ends_in_one_clear_message():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exporter = exporter_for(f"http://127.0.0.1:{port}", connection={"max_retries": 1})
    with pytest.raises(ServiceError, match=f"cannot reach OpenSearch at http://127.0.0.1:{port}") as caught:
        exported_ids(exporter)
    assert "connection.url" in caught.value.render()


def test_tls_is_verified_and_a_failed_handshake_is_explained(fake_opensearch):
    server = fake_opensearch(docs=5)
    exporter = exporter_for(server.url.replace("http://", "https://"), connection={"max_retries": 0})
    assert exporter.client.transport.kwargs.get("verify_certs", True) is True
    with pytest.raises(ServiceError, match="TLS connection"):
        exported_ids(exporter)


def test_shard_doc_tiebreak_on_a_cluster_before_3_3_names_the_setting(fake_opensearch):
    server = fake_opensearch(docs=20, version="2.17.1")
    with pytest.raises(ServiceError, match="tiebreak field") as caught:
        exported_ids(exporter_for(server.url, tiebreak_field="_shard_doc"))
    assert "source.tiebreak_field" in caught.value.render()
    assert server.open_contexts == 0


def test_shard_doc_tiebreak_works_on_3_3(fake_opensearch):
    server = fake_opensearch(docs=300, version="3.3.0")
    assert len(set(exported_ids(exporter_for(server.url, tiebreak_field="_shard_doc")))) == 300


def test_retry_waits_grow_exponentially_with_jitter_up_to_the_cap():
    from osft.extractor.retries import RetryPolicy

    policy = RetryPolicy(max_retries=10, backoff_s=0.5, backoff_max_s=4.0, seed=1)
    waits = [policy.delay(attempt) for attempt in range(6)]

    assert 0.25 <= waits[0] <= 0.5
    assert 1.0 <= waits[2] <= 2.0  # ceiling 0.5 * 2**2
    assert all(2.0 <= w <= 4.0 for w in waits[3:])  # ceiling 4 s, then capped there
