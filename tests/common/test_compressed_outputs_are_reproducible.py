"""Equal content must give equal bytes, or a re-run stage would make every later stage re-run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from osft.common.jsonl import read_jsonl, write_jsonl
from osft.extractor.shard_writer import ShardWriter

RECORDS = [{"id": str(i), "text": f"document number {i}"} for i in range(5)]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch):
    """A wall clock the test moves forward, as a stage re-run a minute later would see it."""
    now = [1_700_000_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    return now


def test_gzip_jsonl_written_at_different_times_is_byte_identical(tmp_path: Path, clock):
    write_jsonl(tmp_path / "a.jsonl.gz", RECORDS)
    clock[0] += 60
    write_jsonl(tmp_path / "b.jsonl.gz", RECORDS)
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()
    assert list(read_jsonl(tmp_path / "b.jsonl.gz")) == RECORDS


def test_corpus_shards_written_at_different_times_are_byte_identical(tmp_path: Path, clock):
    shards = []
    for folder in ("first", "second"):
        with ShardWriter(tmp_path / folder) as writer:
            for record in RECORDS:
                writer.write(record)
        shards.append((tmp_path / folder / writer.shards[0]).read_bytes())
        clock[0] += 60
    assert shards[0] == shards[1]
