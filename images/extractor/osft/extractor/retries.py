"""Retrying OpenSearch requests on 429, 5xx and lost connections, with exponential backoff and jitter.

opensearch-py retries without waiting, which turns a 429 storm into a hammering; its own
retries are therefore turned off and every request goes through ``RetryPolicy.call``.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import TypeVar

from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import ConnectionTimeout, SSLError, TransportError

T = TypeVar("T")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def _never_sent(exc: OSConnectionError) -> bool:
    """True when the connection failed before the request reached the server (refused, DNS)."""
    text = f"{exc.info!r} {exc.error}"
    return any(mark in text for mark in ("NewConnectionError", "Connection refused", "NameResolutionError"))


def is_retryable(exc: Exception, *, idempotent: bool) -> bool:
    if isinstance(exc, SSLError):
        return False
    if isinstance(exc, OSConnectionError):  # includes timeouts
        return idempotent or (_never_sent(exc) and not isinstance(exc, ConnectionTimeout))
    if isinstance(exc, TransportError) and isinstance(exc.status_code, int):
        # A rejected (429/503) request did not run; other 5xx may have, which matters only for scroll.
        return exc.status_code in RETRY_STATUSES if idempotent else exc.status_code in (429, 503)
    return False


class RetryPolicy:
    """Calls a request function again after a retryable failure, waiting longer each time.

    Args:
        max_retries: retries after the first attempt.
        backoff_s: first delay; each retry doubles it, up to ``backoff_max_s``; the wait is drawn
            between half and all of that (jitter), so parallel slices do not retry in step.
        stop: when set (another slice failed), waiting ends early and the last error is raised.
    """

    def __init__(self, max_retries: int, backoff_s: float, backoff_max_s: float, seed: int | None = None) -> None:
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.retries = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def delay(self, attempt: int) -> float:
        ceiling = min(self.backoff_max_s, self.backoff_s * (2**attempt))
        with self._lock:
            return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def call(self, request: Callable[[], T], *, idempotent: bool = True, stop: threading.Event | None = None) -> T:
        attempt = 0
        while True:
            try:
                return request()
            except TransportError as exc:
                if attempt >= self.max_retries or not is_retryable(exc, idempotent=idempotent):
                    raise
                with self._lock:
                    self.retries += 1
                waited = self.delay(attempt)
                if stop is not None:
                    if stop.wait(waited):
                        raise
                else:
                    threading.Event().wait(waited)
                attempt += 1
