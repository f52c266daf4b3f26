"""Exporting an OpenSearch index: point-in-time + search_after in parallel slices, scroll as a fallback.

Each slice runs in its own thread and hands pages to the caller through a small bounded queue,
so memory holds about two pages per slice whatever the index size. PIT pages are sorted by ``_doc`` with a
unique tiebreak field, and ``search_after`` resumes from the last hit's sort values, so a page
request can be retried after a 429 or a dropped connection without losing or repeating a hit.
Scroll requests advance server-side state, so they are retried only when the server certainly
did not run them (429/503, connection refused). PIT and scroll contexts are deleted in
``finally``, also when the export fails.

No response may silently hold fewer documents than the index: the PIT is created with
``allow_partial_pit_creation=false`` and searches run with ``allow_partial_search_results=false``
(both default to true), and a response whose ``_shards`` or ``timed_out`` says otherwise stops
the export. Amazon OpenSearch Serverless has no scroll API, so it never falls back to scroll.

References: OpenSearch "Point in Time" and "Paginate results" (scroll, search_after, slice).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import AuthenticationException, OpenSearchException, TransportError

from osft.common.errors import OsftError, ServiceError
from osft.common.logging import get_logger
from osft.common.opensearch import opensearch_client
from osft.common.spec.source import OpenSearchSource, SigV4Auth
from osft.extractor.opensearch_errors import (
    HEALTH_HINT,
    context_expired,
    error_type,
    not_opensearch,
    pit_route_missing,
    shard_trouble,
    user_error,
)
from osft.extractor.retries import RetryPolicy

Hit = dict[str, Any]
CREATING_PIT = "creating a point in time"
PIT_PERMISSIONS = "indices:data/read/point_in_time/create (and .../point_in_time/delete)"
CONTEXT_MISSING = "search_context_missing_exception"
_DONE = object()


@dataclass
class ExportState:
    """What the export did, for the manifest and for tests.

    ``expected`` is the count of matching documents taken before the export, on the live index;
    ``slice_totals`` are the counts each slice's PIT or scroll context reported on its first page,
    over the same frozen view the export reads (None: the response gave no exact count).
    """

    iteration: str = ""
    expected: int | None = None
    slice_totals: dict[int, int | None] = field(default_factory=dict)
    hits_read: int = 0
    pit_ids: set[str] = field(default_factory=set)
    scroll_ids: set[str] = field(default_factory=set)
    contexts_deleted: bool = False

    def expected_hits(self, slices: int) -> int | None:
        """Matching documents in the PIT or scroll contexts, when every slice reported an exact count."""
        totals = [self.slice_totals.get(n) for n in range(slices)]
        return None if any(t is None for t in totals) else sum(t for t in totals if t is not None)


def exact_total(response: Any) -> int | None:
    """``hits.total.value`` when it is exact (``relation: eq``), else None."""
    hits = response.get("hits") if isinstance(response, dict) else None
    total = hits.get("total") if isinstance(hits, dict) else None
    if isinstance(total, dict) and total.get("relation") == "eq" and isinstance(total.get("value"), int):
        return total["value"]
    return None


class OpenSearchExporter:
    """Reads every hit of ``source.index`` matching ``source.query``.

    Args:
        source: the spec's OpenSearch source.
        client: an opensearch-py client (built from ``source.connection`` when omitted).
        log: a structlog logger to bind the index to.

    Example:
        >>> exporter = OpenSearchExporter(source)
        >>> for hit in exporter.hits():  # doctest: +SKIP
        ...     print(hit["_id"], hit["_source"])
    """

    def __init__(self, source: OpenSearchSource, client: OpenSearch | None = None, log: Any = None) -> None:
        self.source = source
        self.connection = source.connection
        # opensearch-py retries without waiting; RetryPolicy retries with backoff instead.
        self.client = client or opensearch_client(
            source.connection, field="source.connection", pool_size=source.slices + 2, max_retries=0
        )
        self.retry = RetryPolicy(
            source.connection.max_retries, source.connection.retry_backoff_s, source.connection.retry_backoff_max_s
        )
        self.state = ExportState()
        self.log = (log or get_logger()).bind(index=source.index)

    @property
    def query(self) -> dict[str, Any]:
        return self.source.query or {"match_all": {}}

    @property
    def serverless(self) -> bool:
        """Amazon OpenSearch Serverless: point in time only, no scroll API."""
        auth = self.connection.auth
        return isinstance(auth, SigV4Auth) and auth.service == "aoss"

    def _request(
        self,
        action: str,
        request: Callable[[], Any],
        *,
        idempotent: bool = True,
        stop: threading.Event | None = None,
        context: str | None = None,
    ) -> Any:
        """Run ``request`` with retries; ``context`` names the PIT or scroll it reads, for an expiry message."""
        try:
            return self.retry.call(request, idempotent=idempotent, stop=stop)
        except OpenSearchException as exc:
            if context and error_type(exc) == CONTEXT_MISSING:
                raise context_expired(self.connection, self.source.index, self.source.keep_alive, context) from None
            raise self._error(exc, action) from None

    def _error(self, exc: OpenSearchException, action: str, needs: str | None = None) -> OsftError:
        return user_error(exc, self.connection, self.source.index, action, self._attempts(exc), needs=needs)

    def _attempts(self, exc: OpenSearchException) -> int:
        return 1 + (self.connection.max_retries if self._retryable_kind(exc) else 0)

    @staticmethod
    def _retryable_kind(exc: OpenSearchException) -> bool:
        if not isinstance(exc, TransportError):
            return False
        return not isinstance(exc.status_code, int) or exc.status_code in (429, 500, 502, 503, 504)

    def _field(self, response: Any, action: str, *path: str) -> Any:
        """``response[path[0]][path[1]]...``, or a clear error when the answer is not shaped like OpenSearch's."""
        value = response
        for key in path:
            if not isinstance(value, dict) or key not in value:
                raise not_opensearch(self.connection, action, f"the response has no '{'.'.join(path)}'")
            value = value[key]
        return value

    def _source_filter(self) -> list[str] | bool:
        fields = self.source.fields
        names = [*fields.text, fields.title, fields.id]
        wanted = sorted({n for n in names if n and not n.startswith("_")})
        return wanted or True

    def check_index(self) -> int:
        """Fail early with one message when the index is missing or the query is invalid; return the count."""
        index = self.source.index
        try:
            exists = self.retry.call(lambda: self.client.indices.exists(index=index))
        except AuthenticationException as exc:
            raise user_error(exc, self.connection, index, "checking the index", 1) from None
        except OpenSearchException as exc:
            # A reader without indices:admin/get may still search.
            if not isinstance(exc, TransportError) or exc.status_code != 403:
                raise self._error(exc, "checking the index") from None
            exists = True
        if not exists:
            raise ServiceError(
                f"index '{index}' does not exist on {self.connection.url}",
                hint="check source.index; GET _cat/indices lists the cluster's indexes",
            )
        response = self._request(
            "counting documents", lambda: self.client.count(index=index, body={"query": self.query})
        )
        count = self._field(response, "counting documents", "count")
        if not isinstance(count, int):
            raise not_opensearch(self.connection, "counting documents", f"'count' is {count!r}, not a number")
        self.state.expected = count
        return count

    def hits(self) -> Iterator[Hit]:
        """Every matching hit exactly once (``_id``, ``_source``), in no particular order."""
        if self.state.expected is None:
            self.check_index()
        try:
            pit_id = self._open_pit() if self.source.iteration in ("auto", "pit") else None
            if pit_id is not None:
                self.state.iteration = "pit"
                yield from self._counted(self._parallel(lambda i, stop: self._pit_slice(pit_id, i, stop)))
            else:
                self.state.iteration = "scroll"
                yield from self._counted(self._parallel(self._scroll_slice))
        finally:
            self._delete_contexts()
        shortfall = self.shortfall()
        if shortfall:
            self.log.warning("export_incomplete", message=shortfall)

    def _counted(self, hits: Iterator[Hit]) -> Iterator[Hit]:
        for hit in hits:
            self.state.hits_read += 1
            yield hit

    def shortfall(self) -> str | None:
        """A message when the export read fewer hits than the index counted, else None.

        The counts taken over the export's own PIT or scroll contexts see the same frozen documents
        as the pages, so any difference is a loss. Without them, the count taken before the export
        is used, and documents deleted since then may explain the difference.
        """
        read, snapshot = self.state.hits_read, self.state.expected_hits(self.source.slices)
        context = "point in time" if self.state.iteration == "pit" else "scroll"
        if snapshot is not None and read < snapshot:
            return (
                f"the export read {read} document(s) but the {context} it read from held {snapshot} "
                f"matching the query: {snapshot - read} missing"
            )
        expected = self.state.expected
        if snapshot is None and expected is not None and read < expected:
            return (
                f"the export read {read} document(s) but the index counted {expected} matching the query "
                "before the export (documents deleted meanwhile would explain the difference)"
            )
        return None

    # -- point in time ------------------------------------------------------------------------

    def _open_pit(self) -> str | None:
        """A PIT over every shard of the index; None to read with scroll where the cluster has no PIT API."""
        index = self.source.index
        try:
            response = self.retry.call(
                lambda: self.client.create_pit(
                    index=index, keep_alive=self.source.keep_alive, allow_partial_pit_creation=False
                )
            )
        except OpenSearchException as exc:
            if isinstance(exc, TransportError) and pit_route_missing(exc):
                return self._pit_unavailable(exc)
            raise self._error(exc, CREATING_PIT, needs=PIT_PERMISSIONS) from None
        pit_id = self._field(response, CREATING_PIT, "pit_id")
        if not isinstance(pit_id, str) or not pit_id:
            raise not_opensearch(self.connection, CREATING_PIT, f"'pit_id' is {pit_id!r}")
        self.state.pit_ids.add(pit_id)
        trouble = shard_trouble(response)
        if trouble:
            raise ServiceError(
                f"the point in time on '{index}' at {self.connection.url} does not cover every shard: {trouble}; "
                "documents on the others would be missing",
                hint=HEALTH_HINT,
            )
        return pit_id

    def _pit_unavailable(self, exc: TransportError) -> None:
        if self.source.iteration == "auto" and not self.serverless:
            self.log.warning("pit_unavailable_using_scroll", status=exc.status_code, reason=str(exc.error))
            return None
        hint = (
            "Amazon OpenSearch Serverless reads large results only with point in time (it has no scroll API); "
            "check that source.connection.url is the collection endpoint"
            if self.serverless
            else "point in time needs OpenSearch 2.4+; set source.iteration to 'scroll' or 'auto'"
        )
        raise ServiceError(
            f"OpenSearch at {self.connection.url} cannot create a point in time on '{self.source.index}' "
            f"({exc.status_code} {exc.error})",
            hint=hint,
        ) from None

    def _sort(self) -> list[dict[str, str]]:
        tiebreak = self.source.tiebreak_field
        if tiebreak == "_shard_doc":
            return [{"_shard_doc": "asc"}]
        return [{"_doc": "asc"}, {tiebreak: "asc"}]

    def _pit_slice(self, pit_id: str, number: int, stop: threading.Event) -> Iterator[list[Hit]]:
        body: dict[str, Any] = {
            "size": self.source.page_size,
            "query": self.query,
            "pit": {"id": pit_id, "keep_alive": self.source.keep_alive},
            "sort": self._sort(),
            "_source": self._source_filter(),
            # Counted once, on the first page: the slice's documents in the PIT, to check the export against.
            "track_total_hits": True,
        }
        if self.source.slices > 1:
            body["slice"] = {"id": number, "max": self.source.slices}
        while not stop.is_set():
            response = self._request(
                "reading a page",
                lambda: self.client.search(body=body, allow_partial_search_results=False),
                stop=stop,
                context="point in time",
            )
            page = self._page(response, "reading a page")
            if body["track_total_hits"]:
                self.state.slice_totals[number] = exact_total(response)
                body["track_total_hits"] = False
            if response.get("pit_id"):
                body["pit"]["id"] = response["pit_id"]
                self.state.pit_ids.add(response["pit_id"])
            if not page:
                return
            yield page
            body["search_after"] = self._field(page[-1], "reading a page", "sort")

    # -- scroll ---------------------------------------------------------------------------------

    def _scroll_slice(self, number: int, stop: threading.Event) -> Iterator[list[Hit]]:
        body: dict[str, Any] = {
            "size": self.source.page_size,
            "query": self.query,
            "sort": ["_doc"],
            "_source": self._source_filter(),
            "track_total_hits": True,
        }
        if self.source.slices > 1:
            body["slice"] = {"id": number, "max": self.source.slices}
        keep_alive = self.source.keep_alive
        index = self.source.index
        response = self._request(
            "starting a scroll",
            lambda: self.client.search(
                index=index, body=body, params={"scroll": keep_alive}, allow_partial_search_results=False
            ),
            stop=stop,
        )
        self.state.slice_totals[number] = exact_total(response)
        while True:
            scroll_id = response.get("_scroll_id") if isinstance(response, dict) else None
            if scroll_id:
                self.state.scroll_ids.add(scroll_id)
            page = self._page(response, "reading a scroll page")
            if not page or stop.is_set():
                return
            yield page
            response = self._next_scroll_page(scroll_id, stop)

    def _next_scroll_page(self, scroll_id: str | None, stop: threading.Event) -> Any:
        keep_alive = self.source.keep_alive
        try:
            return self.retry.call(
                lambda: self.client.scroll(body={"scroll": keep_alive, "scroll_id": scroll_id}),
                idempotent=False,
                stop=stop,
            )
        except OpenSearchException as exc:
            if error_type(exc) == CONTEXT_MISSING:
                raise context_expired(self.connection, self.source.index, keep_alive, "scroll") from None
            error = user_error(exc, self.connection, self.source.index, "continuing a scroll", 1)
            raise type(error)(
                f"{error.message}; a scroll cannot be resumed after a failed page, so the export stopped",
                hint="run the stage again; clusters with point in time (OpenSearch 2.4+) resume pages safely",
            ) from None

    # -- shared ---------------------------------------------------------------------------------

    def _page(self, response: Any, action: str) -> list[Hit]:
        """The hits of a search response, once it is known to be complete."""
        hits = self._field(response, action, "hits", "hits")
        if not isinstance(hits, list):
            raise not_opensearch(self.connection, action, "'hits.hits' is not a list")
        self._check_complete(response, action)
        return hits

    def _check_complete(self, response: dict[str, Any], action: str) -> None:
        """Stop when a shard failed or timed out: the page would silently lack its documents."""
        index, url = self.source.index, self.connection.url
        trouble = shard_trouble(response)
        if trouble:
            raise ServiceError(
                f"a search on '{index}' at {url} did not reach every shard while {action}: {trouble}; "
                "their documents would be missing",
                hint=HEALTH_HINT,
            )
        if response.get("timed_out") is True:
            raise ServiceError(
                f"a search on '{index}' at {url} timed out while {action}, so the page may lack documents",
                hint="lower source.page_size, or raise the cluster's search.default_search_timeout",
            )

    def _parallel(self, slice_pages: Callable[[int, threading.Event], Iterator[list[Hit]]]) -> Iterator[Hit]:
        """Run every slice in a thread; yield hits as pages arrive; stop all slices on the first error."""
        slices = self.source.slices
        # At most one page waiting per slice, plus the page each slice is fetching: memory holds
        # about 2 x slices x page_size hits, whatever the index size.
        pages: queue.Queue[Any] = queue.Queue(maxsize=slices)
        stop = threading.Event()

        def put(item: Any) -> bool:
            while not stop.is_set():
                try:
                    pages.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def worker(number: int) -> None:
            try:
                for page in slice_pages(number, stop):
                    if not put(page):
                        return
                put(_DONE)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread and raised there
                put(exc)

        threads = [
            threading.Thread(target=worker, args=(n,), name=f"osft-slice-{n}", daemon=True) for n in range(slices)
        ]
        for thread in threads:
            thread.start()
        try:
            running = slices
            while running:
                item = pages.get()
                if item is _DONE:
                    running -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield from item
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=self.connection.timeout_s + 5)

    def _delete_contexts(self) -> None:
        """Delete every PIT and scroll context this export opened; failures are logged, not raised."""
        deleted = True
        if self.state.pit_ids:
            ids = sorted(self.state.pit_ids)
            try:
                self.retry.call(lambda: self.client.delete_pit(body={"pit_id": ids}))
                self.log.info("pit_deleted", count=len(ids))
            except (OpenSearchException, OsftError) as exc:
                deleted = False
                self.log.warning("pit_delete_failed", error=str(exc), note="it expires after keep_alive")
        if self.state.scroll_ids:
            ids = sorted(self.state.scroll_ids)
            try:
                self.retry.call(lambda: self.client.clear_scroll(body={"scroll_id": ids}))
                self.log.info("scroll_cleared", count=len(ids))
            except (OpenSearchException, OsftError) as exc:
                if getattr(exc, "status_code", None) != 404:  # 404: every context had expired already
                    deleted = False
                    self.log.warning("scroll_clear_failed", error=str(exc), note="it expires after keep_alive")
        self.state.contexts_deleted = deleted
