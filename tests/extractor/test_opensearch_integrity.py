"""The OpenSearch export never silently misses documents, and every failure is one clear message.

Partial PITs, shard timeouts, expired contexts, non-OpenSearch answers, refused permissions and
broken AWS credentials, each against the strict local OpenSearch server.
"""

from __future__ import annotations

import json
import os
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from opensearch_server import PIT_ACTIONS, Reply, Request, is_page_request, web_page
from opensearchpy import OpenSearch
from opensearchpy.exceptions import RequestError

from osft.common.errors import CredentialsError, ServiceError, SpecError
from osft.common.spec import parse_spec
from osft.common.spec.source import OpenSearchSource
from osft.extractor.opensearch_source import OpenSearchExporter
from tests.extractor.conftest import opensearch_source

SIGV4_AOSS = {"type": "sigv4", "region": "eu-west-1", "service": "aoss"}


def exporter_for(url: str, **overrides) -> OpenSearchExporter:
    return OpenSearchExporter(OpenSearchSource.model_validate(opensearch_source(url, **overrides)))


def exported_ids(exporter: OpenSearchExporter) -> list[str]:
    return [hit["_id"] for hit in exporter.hits()]


def is_create_pit(request: Request) -> bool:
    return request.method == "POST" and request.path.endswith("/_search/point_in_time")


def ignoring(param: str, only=lambda request: True):
    """A fault that drops a query parameter before the server sees it, like a cluster that ignores it."""

    def fault(request: Request, number: int) -> None:
        if only(request):
            request.params.pop(param, None)

    return fault


# -- 1. partial point in time -------------------------------------------------------------------


def test_pit_with_an_unavailable_shard_fails_instead_of_missing_documents(fake_opensearch):
    server = fake_opensearch(docs=400, shards=2)
    server.unavailable_shards = {1}
    exporter = exporter_for(server.url, connection={"max_retries": 1})

    with pytest.raises(ServiceError, match=r"no available copy.*\[\[docs\]\[1\]\]") as caught:
        exported_ids(exporter)

    assert "_cluster/health" in caught.value.render()
    creates = [r for r in server.requests if is_create_pit(r)]
    assert creates and all(r.params["allow_partial_pit_creation"] == "false" for r in creates)
    assert server.pits_created == 0


def test_a_partial_pit_is_refused_and_deleted(fake_opensearch):
    server = fake_opensearch(docs=400, shards=2)
    server.unavailable_shards = {1}
    server.faults.append(ignoring("allow_partial_pit_creation", only=is_create_pit))

    with pytest.raises(ServiceError, match=r"does not cover every shard: 1 of 2 shard\(s\) answered") as caught:
        exported_ids(exporter_for(server.url))

    assert "no_shard_available_action_exception" in caught.value.message
    assert server.pits_created == 1 and server.pits_deleted == 1


def test_create_pit_refuses_unknown_parameters_like_opensearch(fake_opensearch):
    server = fake_opensearch(docs=5)
    client = OpenSearch(hosts=[server.url])

    with pytest.raises(RequestError) as caught:
        client.create_pit(index="docs", params={"keepalive": "1m"})

    error = caught.value.info["error"]
    assert error["type"] == "illegal_argument_exception"
    assert error["reason"] == (
        "request [/docs/_search/point_in_time] contains unrecognized parameter: [keepalive] -> did you mean [keep_alive]?"
    )
    with pytest.raises(RequestError, match="Failed to parse value"):
        client.create_pit(index="docs", params={"keep_alive": "1m", "allow_partial_pit_creation": "False"})


# -- 2. answers that are not OpenSearch's, AWS credentials -------------------------------------------


def test_a_web_page_instead_of_opensearch_is_named_without_a_traceback(fake_opensearch):
    server = fake_opensearch(docs=5)
    server.faults.append(web_page)

    with pytest.raises(ServiceError, match="did not answer like OpenSearch while counting documents") as caught:
        exported_ids(exporter_for(server.url))

    assert "text/html" in caught.value.message
    assert "not OpenSearch Dashboards" in caught.value.render()


@pytest.mark.parametrize(
    ("only", "body", "missing"),
    [
        (is_create_pit, {"_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}}, "pit_id"),
        (is_page_request, {"took": 1, "timed_out": False}, "hits.hits"),
        (is_page_request, {"hits": {"hits": [{"_id": "a", "_source": {}}]}, "timed_out": False}, "sort"),
    ],
)
def test_a_response_without_the_expected_fields_is_named(fake_opensearch, only, body, missing):
    server = fake_opensearch(docs=5)
    server.faults.append(lambda request, number: Reply(200, body) if only(request) else None)

    with pytest.raises(ServiceError, match=f"did not answer like OpenSearch.*no '{missing}'"):
        exported_ids(exporter_for(server.url, slices=1))


def _no_aws_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    config = tmp_path / "config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    return config


def test_a_missing_aws_profile_is_a_credentials_error(fake_opensearch, monkeypatch, tmp_path):
    server = fake_opensearch(docs=5, sigv4=("eu-west-1", "aoss"))
    _no_aws_keys(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_PROFILE", "osft-no-such-profile")

    with pytest.raises(CredentialsError, match="osft-no-such-profile") as caught:
        exporter_for(server.url, connection={"auth": SIGV4_AOSS})

    assert "AWS_PROFILE" in caught.value.render()


def test_aws_credentials_that_fail_to_refresh_mid_export_are_a_credentials_error(
    fake_opensearch, monkeypatch, tmp_path
):
    """Like an SSO session that expires: the first credentials load, the refresh when signing fails."""
    server = fake_opensearch(docs=5, sigv4=("eu-west-1", "aoss"))
    config = _no_aws_keys(monkeypatch, tmp_path)
    expires = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()  # inside botocore's mandatory refresh
    first = json.dumps({"Version": 1, "AccessKeyId": "AKIDEXAMPLE", "SecretAccessKey": "s", "Expiration": expires})
    script = tmp_path / "credentials.sh"
    script.write_text(
        f'#!/bin/sh\nif [ -e "{tmp_path}/used" ]; then echo "session expired" >&2; exit 1; fi\n'
        f"touch \"{tmp_path}/used\"\necho '{first}'\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    config.write_text(f"[profile expiring]\ncredential_process = {script}\n")
    monkeypatch.setenv("AWS_PROFILE", "expiring")

    exporter = exporter_for(server.url, connection={"auth": SIGV4_AOSS})
    with pytest.raises(CredentialsError, match="cannot load AWS credentials"):
        exported_ids(exporter)

    assert os.path.exists(tmp_path / "used")


# -- 3. expired point in time or scroll ------------------------------------------------------------


@pytest.mark.parametrize(("pit", "kind"), [(True, "point in time"), (False, "scroll")])
def test_a_slow_consumer_outliving_keep_alive_is_told_to_raise_it(fake_opensearch, pit, kind):
    server = fake_opensearch(docs=80, pit=pit)
    hits = exporter_for(server.url, keep_alive="1s", slices=1, page_size=10).hits()
    next(hits)
    time.sleep(1.6)  # the slice waits on the full queue; the context is not used for over 1 s

    with pytest.raises(ServiceError, match=f"the {kind} on index 'docs' .* expired") as caught:
        list(hits)

    hint = caught.value.hint or ""
    assert "raise source.keep_alive (now 1s)" in hint and "restarts from the beginning" in hint
    assert server.open_contexts == 0


# -- 4. shard timeouts ---------------------------------------------------------------------------


def test_searches_refuse_partial_results_so_a_shard_timeout_loses_nothing(fake_opensearch):
    server = fake_opensearch(docs=500)
    server.search_timeouts = 3

    ids = exported_ids(exporter_for(server.url, page_size=50))

    assert server.search_timeouts == 0
    assert sorted(ids) == sorted(f"d{i}" for i in range(500))
    pages = [r for r in server.requests if r.body and "pit" in r.body]
    assert all(r.params.get("allow_partial_search_results") == "false" for r in pages)


def test_scroll_searches_refuse_partial_results(fake_opensearch):
    server = fake_opensearch(docs=300, pit=False)
    server.search_timeouts = 1

    assert len(set(exported_ids(exporter_for(server.url, slices=1)))) == 300
    starts = [r for r in server.requests if r.path == "/docs/_search"]
    assert starts and all(r.params.get("allow_partial_search_results") == "false" for r in starts)


def test_a_timed_out_page_stops_the_export(fake_opensearch):
    server = fake_opensearch(docs=300)
    server.search_timeouts = 1
    server.faults.append(ignoring("allow_partial_search_results"))

    with pytest.raises(ServiceError, match="timed out while reading a page") as caught:
        exported_ids(exporter_for(server.url))

    assert "search.default_search_timeout" in caught.value.render()
    assert server.open_contexts == 0


def test_shard_timeouts_that_persist_name_the_cluster_timeout(fake_opensearch):
    server = fake_opensearch(docs=50)
    server.search_timeouts = 1000

    with pytest.raises(ServiceError, match="ran past the cluster's search timeout") as caught:
        exported_ids(exporter_for(server.url, connection={"max_retries": 1}))

    assert "search.default_search_timeout" in caught.value.render()


# -- 5. why a point in time could not be created ----------------------------------------------------


def test_a_role_without_the_pit_permission_gets_a_permission_error_not_scroll(fake_opensearch):
    server = fake_opensearch(docs=20)
    server.denied = {PIT_ACTIONS["create"]}

    with pytest.raises(CredentialsError, match="does not allow creating a point in time") as caught:
        exported_ids(exporter_for(server.url))

    assert "indices:data/read/point_in_time/create" in caught.value.render()
    assert server.scrolls_created == 0


def test_keep_alive_over_the_cluster_maximum_names_the_setting(fake_opensearch):
    server = fake_opensearch(docs=20)

    with pytest.raises(ServiceError, match=r"refused source.keep_alive.*\(2d\) is too large") as caught:
        exported_ids(exporter_for(server.url, keep_alive="48h"))

    assert "point_in_time.max_keep_alive" in caught.value.render()
    assert server.scrolls_created == 0 and server.pits_created == 0


# -- 6. Amazon OpenSearch Serverless has no scroll ------------------------------------------------------


def test_scroll_with_serverless_is_rejected_in_the_spec():
    source = opensearch_source("https://abc.eu-west-1.aoss.amazonaws.com", iteration="scroll")
    source["connection"]["auth"] = SIGV4_AOSS

    with pytest.raises(SpecError) as caught:
        parse_spec({"name": "aoss", "source": source})

    assert any(p.startswith("source.iteration: Amazon OpenSearch Serverless") for p in caught.value.problems)


def test_serverless_never_falls_back_to_scroll(fake_opensearch, aws_env):
    server = fake_opensearch(docs=20, pit=False, sigv4=("eu-west-1", "aoss"))

    with pytest.raises(ServiceError, match="cannot create a point in time") as caught:
        exported_ids(exporter_for(server.url, connection={"auth": SIGV4_AOSS}))

    assert "Serverless" in caught.value.render()
    assert server.scrolls_created == 0
