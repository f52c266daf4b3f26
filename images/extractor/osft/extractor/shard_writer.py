"""Writing the corpus as gzip-compressed JSONL shards, incrementally and atomically."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import IO, Any

from osft.common.jsonl import open_gzip_text
from osft.extractor.cleaning import length_bucket

SHARD_SIZE = 50_000
SHARD_PATTERN = "docs-{:05d}.jsonl.gz"


class ShardWriter:
    """Appends documents to ``docs-NNNNN.jsonl.gz`` shards of ``shard_size`` documents each.

    A shard is written under a temporary name and renamed when full or at ``close``, so a shard
    with its final name is always complete. Length statistics are gathered on the way.
    """

    def __init__(self, folder: Path, shard_size: int | None = None, compresslevel: int = 6) -> None:
        self.folder = folder
        self.shard_size = shard_size or SHARD_SIZE
        self.compresslevel = compresslevel
        self.shards: list[str] = []
        self.count = 0
        self.histogram: Counter[str] = Counter()
        self.min_chars: int | None = None
        self.max_chars = 0
        self.total_chars = 0
        self._handle: IO[str] | None = None
        self._tmp: Path | None = None
        self._in_shard = 0

    def _open(self) -> None:
        name = SHARD_PATTERN.format(len(self.shards))
        self.folder.mkdir(parents=True, exist_ok=True)
        self._tmp = self.folder / f".{name}.tmp"
        # Kept open across write() calls; closed in _finish/abort.
        self._handle = open_gzip_text(self._tmp, compresslevel=self.compresslevel)
        self.shards.append(name)
        self._in_shard = 0

    def _finish(self) -> None:
        if self._handle is None or self._tmp is None:
            return
        self._handle.close()
        os.replace(self._tmp, self.folder / self.shards[-1])
        self._handle = None
        self._tmp = None

    def write(self, doc: dict[str, Any]) -> None:
        if self._handle is None:
            self._open()
        assert self._handle is not None
        self._handle.write(json.dumps(doc, ensure_ascii=False) + "\n")
        self._in_shard += 1
        self.count += 1
        chars = len(doc["text"])
        self.histogram[length_bucket(chars)] += 1
        self.total_chars += chars
        self.max_chars = max(self.max_chars, chars)
        self.min_chars = chars if self.min_chars is None else min(self.min_chars, chars)
        if self._in_shard >= self.shard_size:
            self._finish()

    def close(self) -> None:
        self._finish()

    def abort(self) -> None:
        """Drop the shard being written (after a failure); completed shards stay."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None
            self.shards.pop()

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    @property
    def length_summary(self) -> dict[str, float]:
        if not self.count:
            return {}
        return {"min": self.min_chars or 0, "mean": round(self.total_chars / self.count, 1), "max": self.max_chars}
