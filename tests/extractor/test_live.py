"""Against a real cluster, only when OPENSEARCH_URL is set: ``OPENSEARCH_URL=... pytest -m live tests/extractor``.

Optional: ``OPENSEARCH_USER`` with ``OPENSEARCH_PASSWORD`` (basic auth), ``OPENSEARCH_VERIFY_CERTS=0``
for a self-signed test cluster. The test writes a small index ``osft-live-<random>`` and deletes it.
"""

from __future__ import annotations

import os
import uuid

import pytest

from osft.common.opensearch import opensearch_client
from osft.common.spec.source import OpenSearchSource
from osft.extractor.opensearch_source import OpenSearchExporter

URL = os.environ.get("OPENSEARCH_URL")
pytestmark = [pytest.mark.live, pytest.mark.skipif(not URL, reason="set OPENSEARCH_URL to run against a real cluster")]


def connection() -> dict:
    conn: dict = {"url": URL, "verify_certs": os.environ.get("OPENSEARCH_VERIFY_CERTS", "1") != "0"}
    if os.environ.get("OPENSEARCH_USER"):
        conn["auth"] = {
            "type": "basic",
            "username": os.environ["OPENSEARCH_USER"],
            "password_env": "OPENSEARCH_PASSWORD",
        }
    return conn


@pytest.mark.parametrize("iteration", ["auto", "scroll"])
def test_live_export_yields_every_document_once_and_leaves_no_context(iteration):
    index = f"osft-live-{uuid.uuid4().hex[:8]}"
    source = OpenSearchSource.model_validate(
        {
            "type": "opensearch",
            "connection": connection(),
            "index": index,
            "slices": 3,
            "page_size": 50,
            "iteration": iteration,
            "fields": {"id": "_id", "text": ["body.content"]},
        }
    )
    client = opensearch_client(source.connection)
    client.indices.create(index=index, body={"settings": {"number_of_shards": 2}})
    try:
        lines = []
        for i in range(500):
            lines += [{"index": {"_index": index, "_id": f"doc-{i}"}}, {"body": {"content": f"live document {i}"}}]
        client.bulk(body=lines, refresh=True)

        exporter = OpenSearchExporter(source, client=client)
        ids = [hit["_id"] for hit in exporter.hits()]

        assert sorted(ids) == sorted(f"doc-{i}" for i in range(500))
        assert exporter.state.contexts_deleted
    finally:
        client.indices.delete(index=index, ignore=[404])
