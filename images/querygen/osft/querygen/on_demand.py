"""Sending prompt records to a chat model one call each, a bounded number at a time.

Used by the Bedrock Converse and OpenAI-compatible providers, and for the batch records that
need a second try. Every finished record goes to the ``RecordLog`` as soon as it is done, so a
killed run loses at most the calls in flight, and a resumed run skips what the log holds.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Protocol

from osft.querygen.prompts import PromptRecord
from osft.querygen.record_log import Mode, RecordLog, RecordResult
from osft.querygen.replies import UnparseableReply, parse_reply

MAX_TOKENS = "max_tokens"
# Stop reasons after which a reply may end mid-list (Bedrock's names; OpenAI's "length" maps to max_tokens).
CUT_OFF = frozenset({MAX_TOKENS, "model_context_window_exceeded"})


@dataclass(frozen=True)
class Completion:
    """A model reply and what it cost; ``requests`` counts the calls it took, retries included.

    ``stop_reason`` is set when the reply did not end normally: ``max_tokens`` (cut at the token
    limit) or why a filter or guardrail replaced it, as the provider says.
    """

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 1
    stop_reason: str | None = None


class CompletionFailed(Exception):
    """A record got no reply after every retry; the run goes on and reports it."""

    def __init__(self, reason: str, requests: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.requests = requests


class Completer(Protocol):
    """One chat call with the provider's own retries. Raises ``CompletionFailed`` for this record,
    or an ``OsftError`` when no record can succeed (bad credentials, unknown model)."""

    def complete(self, record: PromptRecord) -> Completion: ...


def backoff_delays(base: float, retries: int, cap: float = 60.0, seed: int | None = None) -> Iterator[float]:
    """Exponential backoff with full jitter: ``retries`` delays, the n-th up to ``base * 2**n``."""
    rng = random.Random(seed)
    for attempt in range(retries):
        yield rng.uniform(0.5, 1.0) * min(cap, base * 2**attempt)


def result_of(record: PromptRecord, completion: Completion, mode: Mode) -> RecordResult:
    """Parse a reply into a record result: ``ok`` with its queries, or ``unparseable``."""
    try:
        queries = parse_reply(completion.text, record.kinds, cut=completion.stop_reason in CUT_OFF)
        status, error = "ok", None
    except UnparseableReply as exc:
        queries, status, error = [], "unparseable", str(exc)
        if completion.stop_reason:
            error = f"stopped by {completion.stop_reason}: {error}"
    return RecordResult(
        record_id=record.record_id,
        doc_id=record.doc_id,
        status=status,  # type: ignore[arg-type]
        mode=mode,
        queries=queries,
        input_tokens=completion.input_tokens,
        output_tokens=completion.output_tokens,
        requests=completion.requests,
        error=error,
        stop_reason=completion.stop_reason,
    )


def _run_one(completer: Completer, record: PromptRecord) -> RecordResult:
    try:
        return result_of(record, completer.complete(record), "on-demand")
    except CompletionFailed as exc:
        return RecordResult(
            record.record_id, record.doc_id, "failed", "on-demand", requests=exc.requests, error=exc.reason
        )


def run_records(
    records: Iterable[PromptRecord],
    completer: Completer,
    log: RecordLog,
    *,
    concurrency: int,
    checkpoint: Callable[[], None] = lambda: None,
    progress: Callable[[Iterable[PromptRecord]], Iterable[PromptRecord]] = lambda it: it,
) -> int:
    """Complete every record not yet in ``log``, at most ``concurrency`` at a time; returns how many ran.

    At most ``concurrency`` calls are in flight, so an error (or a kill) abandons only those;
    ``checkpoint`` is called after each finished record (it decides itself when to sync).
    """
    pending = [r for r in records if r.record_id not in log.done]
    if not pending:
        return 0
    todo = iter(progress(pending))
    ran = 0
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="querygen") as pool:
        in_flight: set[Future[RecordResult]] = set()
        try:
            while True:
                while len(in_flight) < concurrency and (record := next(todo, None)) is not None:
                    in_flight.add(pool.submit(_run_one, completer, record))
                if not in_flight:
                    break
                finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    log.append(future.result())
                    ran += 1
                    checkpoint()
        finally:
            for future in in_flight:
                future.cancel()
    return ran


class Checkpointer:
    """Calls ``save`` at most every ``every_seconds`` (and always on ``flush``)."""

    def __init__(self, save: Callable[[], None], every_seconds: float = 30.0) -> None:
        self.save = save
        self.every_seconds = every_seconds
        self._last = time.monotonic()

    def __call__(self) -> None:
        if time.monotonic() - self._last >= self.every_seconds:
            self.flush()

    def flush(self) -> None:
        self.save()
        self._last = time.monotonic()
