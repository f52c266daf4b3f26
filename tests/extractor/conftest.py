"""Fixtures for the extractor tests: a strict local OpenSearch, moto-backed AWS, spec files."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from opensearch_server import FakeOpenSearch


def corpus(n: int, prefix: str = "d") -> list[dict[str, Any]]:
    """``n`` small, distinct documents with a nested body (``body.content``)."""
    return [
        {
            "id": f"{prefix}{i}",
            "title": f"Title {i}",
            "body": {
                "content": f"Document number {i} explains topic {i % 17} in enough words to pass the length filter."
            },
            "kind": "even" if i % 2 == 0 else "odd",
        }
        for i in range(n)
    ]


@pytest.fixture
def fake_opensearch() -> Iterator[Callable[..., FakeOpenSearch]]:
    """Factory: ``fake_opensearch(docs=100, **server_options)`` → a started server with index ``docs``."""
    servers: list[FakeOpenSearch] = []

    def start(docs: int = 0, **options: Any) -> FakeOpenSearch:
        server = FakeOpenSearch(**options)
        if docs:
            server.add_index("docs", corpus(docs))
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region, so boto3 talks only to moto."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("OSFT_S3_ENDPOINT_URL", raising=False)


def opensearch_source(url: str, **overrides: Any) -> dict[str, Any]:
    """An OpenSearch source section for the test index, with fast retries."""
    source: dict[str, Any] = {
        "type": "opensearch",
        "connection": {"url": url, "retry_backoff_s": 0.01, "retry_backoff_max_s": 0.05, "timeout_s": 5},
        "index": "docs",
        "page_size": 100,
        "slices": 4,
        "fields": {"id": "_id", "title": "title", "text": ["body.content"]},
    }
    connection = overrides.pop("connection", {})
    source["connection"].update(connection)
    source.update(overrides)
    return source


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., str]:
    """Write a run spec next to the test's files and return its path."""

    def write(source: dict[str, Any], **sections: Any) -> str:
        path = tmp_path / "spec.json"
        path.write_text(json.dumps({"name": "extract-test", "source": source, **sections}))
        return str(path)

    return write
