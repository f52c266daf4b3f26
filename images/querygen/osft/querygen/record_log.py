"""The append-only log of finished records that makes LLM generation resumable.

Each finished record (parsed, unparseable or failed after its retries) is appended as one JSON
line and flushed before the next is started. A resumed run reads the log and skips every record
answered in it, so no reply is paid for twice and none is lost; a record that failed (no reply,
nothing billed) is asked again, so a run stopped by an outage resumes. A line cut short by a
kill is cut off, and its record is simply done again.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from osft.common.jsonl import append_jsonl, read_jsonl_tolerant

Status = Literal["ok", "unparseable", "failed"]
Mode = Literal["on-demand", "batch"]


@dataclass
class RecordResult:
    """The outcome of one prompt record and what it cost."""

    record_id: str
    doc_id: str
    status: Status
    mode: Mode
    queries: list[tuple[str, str]] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 1
    error: str | None = None
    stop_reason: str | None = None

    @classmethod
    def from_json(cls, data: dict) -> RecordResult:
        data = dict(data)
        data["queries"] = [tuple(q) for q in data.get("queries", [])]
        return cls(**data)


class RecordLog:
    """Thread-safe appends to ``path``; ``done`` maps record id to its result."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[str, RecordResult] = {}
        _cut_unfinished_line(path)
        for data in read_jsonl_tolerant(path):
            try:
                result = RecordResult.from_json(data)
            except TypeError:
                continue
            if result.status != "failed":
                self.done[result.record_id] = result
        self._lock = threading.Lock()

    def append(self, result: RecordResult) -> None:
        with self._lock:
            if result.record_id in self.done:
                return
            append_jsonl(self.path, asdict(result))
            self.done[result.record_id] = result


def _cut_unfinished_line(path: Path) -> None:
    """Drop a last line a kill left without its newline; the next append would otherwise join it,
    and the record appended there would be unreadable at the following resume."""
    if not path.exists():
        return
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with open(path, "r+b") as handle:
            handle.truncate(end)
