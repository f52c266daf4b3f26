"""A small, strict OpenSearch stand-in for tests: the REST endpoints the extractor uses, on 127.0.0.1.

It follows the documented OpenSearch REST API for:

- ``HEAD /<index>``, ``GET|POST /<index>/_count``, ``GET /``; ``PUT|DELETE /<index>`` and
  ``POST /_bulk`` (index actions) so the live test can also be pointed at this server;
- ``POST /<index>/_search/point_in_time?keep_alive=&allow_partial_pit_creation=`` (keep_alive
  required; unknown query parameters refused like OpenSearch's REST layer does),
  ``DELETE /_search/point_in_time`` (body ``{"pit_id": [...]}``), ``DELETE /_search/point_in_time/_all``;
- ``GET|POST /_search`` with ``pit`` + ``sort`` + ``search_after`` + ``slice`` (no index in the path)
  and ``allow_partial_search_results``; ``hits.total`` follows ``track_total_hits`` (exact up to
  10,000 by default, then ``relation: gte``);
- ``POST /<index>/_search?scroll=``, ``POST /_search/scroll``, ``DELETE /_search/scroll``.

Wrong requests get the status codes and error bodies OpenSearch returns (400 with
``action_request_validation_exception``/``illegal_argument_exception``/``parsing_exception``,
404 ``index_not_found_exception``/``search_context_missing_exception``, 401 and 403
``security_exception`` from the security plugin, 429 ``rejected_execution_exception``).
``pit=False`` emulates a cluster older than 2.4, which has no point-in-time routes.

Cluster trouble is simulated the way OpenSearch reports it: ``unavailable_shards`` (shards with
no copy when a PIT is created: a partial PIT, or 503 with ``allow_partial_pit_creation=false``),
``search_timeouts`` (searches whose shard runs past the search timeout: ``timed_out: true`` and
fewer hits, or 500 "Time exceeded" with ``allow_partial_search_results=false``), ``denied``
(actions the security plugin refuses) and the ``keep_alive`` limits. ``faults`` inject 429s,
5xx, dropped or cut-short connections, or a web page, before a request is handled.
"""

from __future__ import annotations

import base64
import bisect
import fnmatch
import json
import re
import secrets
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

MAX_RESULT_WINDOW = 10_000
TRACK_TOTAL_HITS = 10_000  # counted exactly up to this many matches unless track_total_hits says otherwise
SEARCH_KEYS = {
    "size",
    "from",
    "query",
    "sort",
    "search_after",
    "pit",
    "slice",
    "_source",
    "track_total_hits",
    "timeout",
}
TIME_VALUE = re.compile(r"^(\d+)(d|h|m|s|ms|micros|nanos)$")
UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "micros": 1e-6, "nanos": 1e-9}
# Parameters every REST handler consumes (the response channel and the error handler read them).
RESPONSE_PARAMS = {"pretty", "human", "filter_path", "error_trace", "source", "source_content_type"}
INDICES_OPTIONS = {"expand_wildcards", "ignore_unavailable", "allow_no_indices", "ignore_throttled"}
# What RestCreatePitAction reads (OpenSearch 2.4+), plus the indices options it parses.
CREATE_PIT_PARAMS = {"index", "keep_alive", "allow_partial_pit_creation", "preference", "routing", *INDICES_OPTIONS}
PIT_ACTIONS = {
    "create": "indices:data/read/point_in_time/create",
    "search": "indices:data/read/search",
    "scroll": "indices:data/read/scroll",
}


@dataclass
class Request:
    """A request as the server saw it (kept in ``FakeOpenSearch.requests``)."""

    method: str
    path: str
    params: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


DROP = "drop"  # close the connection without answering
CUT = "cut"  # send headers and half a body, then close
Fault = Callable[[Request, int], "Reply | str | None"]


class ApiError(Exception):
    def __init__(self, status: int, kind: str, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        cause = {"type": kind, "reason": reason, **extra}
        self.reply = Reply(status, {"error": {"root_cause": [cause], **cause}, "status": status})


def validation_error(message: str) -> ApiError:
    return ApiError(400, "action_request_validation_exception", f"Validation Failed: 1: {message};")


def index_not_found(name: str) -> ApiError:
    return ApiError(
        404,
        "index_not_found_exception",
        f"no such index [{name}]",
        index=name,
        **{"resource.type": "index_or_alias", "resource.id": name, "index_uuid": "_na_"},
    )


def too_many_requests() -> Reply:
    reason = "rejected execution of coordinating operation [thread_pool_name = search, queue_capacity = 1000]"
    cause = {"type": "rejected_execution_exception", "reason": reason}
    return Reply(429, {"error": {"root_cause": [cause], **cause}, "status": 429})


def parse_time(value: str, name: str) -> float:
    match = TIME_VALUE.match(value or "")
    if not match:
        raise ApiError(
            400,
            "illegal_argument_exception",
            f"failed to parse setting [{name}] with value [{value}] as a time value: unit is missing or unrecognized",
        )
    return int(match.group(1)) * UNITS[match.group(2)]


def format_time(seconds: float) -> str:
    """A duration as OpenSearch's ``TimeValue.toString()`` writes it: largest unit, one truncated decimal."""
    for suffix in ("d", "h", "m", "s", "ms"):
        if seconds >= UNITS[suffix] or suffix == "ms":
            whole, _, fraction = f"{seconds / UNITS[suffix]:.10f}".partition(".")
            return whole + ("" if fraction[0] == "0" else "." + fraction[0]) + suffix
    raise AssertionError("unreachable")


def parse_bool(request: Request, name: str, default: bool) -> bool:
    """``RestRequest.paramAsBoolean``: only ``true``/``false``; a bare ``?name`` means true."""
    value = request.params.get(name)
    if value is None:
        return default
    if value in ("", "true"):
        return True
    if value == "false":
        return False
    raise ApiError(
        400, "illegal_argument_exception", f"Failed to parse value [{value}] as only [true] or [false] are allowed."
    )


def _similarity(a: str, b: str) -> float:
    """Lucene's ``LevenshteinDistance``: 1 - edits / longest length (OpenSearch's "did you mean")."""
    previous = list(range(len(a) + 1))
    for j, char_b in enumerate(b, 1):
        current = [j]
        for i, char_a in enumerate(a, 1):
            current.append(min(current[i - 1] + 1, previous[i] + 1, previous[i - 1] + (char_a != char_b)))
        previous = current
    return 1 - previous[-1] / max(len(a), len(b), 1)


def check_params(request: Request, consumed: set[str]) -> None:
    """``BaseRestHandler``: a query parameter the handler did not read is a 400, with suggestions."""
    candidates = consumed | RESPONSE_PARAMS
    unknown = sorted(set(request.params) - candidates)
    if not unknown:
        return
    parts = []
    for name in unknown:
        scores = {c: _similarity(name, c) for c in candidates}
        keys = sorted((c for c in candidates if scores[c] > 0.5), key=lambda c: (-scores[c], c))
        suggestion = ""
        if keys:
            suggestion = (
                f" -> did you mean [{keys[0]}]?" if len(keys) == 1 else f" -> did you mean any of [{', '.join(keys)}]?"
            )
        parts.append(f"[{name}]{suggestion}")
    plural = "s" if len(unknown) > 1 else ""
    raise ApiError(
        400,
        "illegal_argument_exception",
        f"request [{request.path}] contains unrecognized parameter{plural}: {', '.join(parts)}",
    )


def missing_shards(index: str, shards: Iterable[int], phase: str) -> ApiError:
    """A search with partial results disallowed, on an index with a shard that has no copy (503)."""
    names = ", ".join(f"[{index}][{n}]" for n in sorted(shards))
    error = ApiError(
        503,
        "search_phase_execution_exception",
        f"Search rejected due to missing shards [{names}]. "
        "Consider using `allow_partial_search_results` setting to bypass this error.",
        phase=phase,
        grouped=True,
        failed_shards=[],
    )
    error.reply.body["error"]["root_cause"] = []  # root causes come from shard failures, and there are none
    return error


def shard_timeout(index: str, shards: int) -> Reply:
    """A shard ran past the search timeout with partial results disallowed: QueryPhase's "Time exceeded"."""
    cause = {"type": "query_phase_execution_exception", "reason": "Time exceeded"}
    error = {
        "root_cause": [cause],
        "type": "search_phase_execution_exception",
        "reason": "all shards failed" if shards == 1 else "Partial shards failure",
        "phase": "query",
        "grouped": True,
        "failed_shards": [{"shard": 0, "index": index, "node": "node-1", "reason": cause}],
    }
    return Reply(500, {"error": error, "status": 500})


def keep_alive_too_large(seconds: float, limit: float, setting: str) -> ApiError:
    return ApiError(
        400,
        "illegal_argument_exception",
        f"Keep alive for request ({format_time(seconds)}) is too large. It must be less than ({format_time(limit)}). "
        f"This limit can be set by changing the [{setting}] cluster level setting.",
    )


def get_path(source: dict[str, Any], dotted: str) -> Any:
    value: Any = source
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


@dataclass
class Doc:
    seq: int
    id: str
    source: dict[str, Any]


@dataclass
class Context:
    """A point in time or a scroll: a frozen view of the docs, until ``expires``."""

    docs: list[Doc]
    index: str
    expires: float
    cache: dict[str, Any] = field(default_factory=dict)
    position: int = 0
    page_size: int = 10
    source_filter: Any = True
    hits_list: list[Doc] = field(default_factory=list)
    sort_values: list[tuple] = field(default_factory=list)
    allow_partial: bool = True
    total: dict[str, Any] | None = None


class FakeOpenSearch:
    """A threaded HTTP server answering like OpenSearch; use as a context manager.

    Args:
        version: the version ``GET /`` reports; ``_shard_doc`` sorts need 3.3+.
        pit: False emulates a cluster older than 2.4 (no point-in-time API: 400 "no handler found").
        users: username → password; when given, every request needs HTTP basic auth.
        sigv4: (region, service); when given, every request needs a SigV4 Authorization header.
        shards: primary shards of every index (a document's shard comes from a hash of its ``_id``).

    Attributes to set on a started server:
        unavailable_shards: shard numbers with no copy while a PIT is created (counts and searches
            outside a PIT still see every shard).
        search_timeouts: how many of the next searches (PIT pages, scroll pages) time out on a shard.
        denied: action names the security plugin refuses (``PIT_ACTIONS`` values) with a 403.
        pit_max_keep_alive, scroll_max_keep_alive: ``point_in_time.max_keep_alive`` and
            ``search.max_keep_alive`` in seconds (24h by default, as in OpenSearch).
    """

    def __init__(
        self,
        *,
        version: str = "2.17.1",
        pit: bool = True,
        users: dict[str, str] | None = None,
        sigv4: tuple[str, str] | None = None,
        record_requests: bool = True,
        shards: int = 1,
    ) -> None:
        self.version = version
        self.shards = shards
        self.unavailable_shards: set[int] = set()
        self.search_timeouts = 0
        self.denied: set[str] = set()
        self.pit_max_keep_alive = 86400.0
        self.scroll_max_keep_alive = 86400.0
        self.pit_supported = pit
        self.users = users
        self.sigv4 = sigv4
        self.record_requests = record_requests
        self.indexes: dict[str, list[Doc]] = {}
        self.pits: dict[str, Context] = {}
        self.scrolls: dict[str, Context] = {}
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.pits_created = 0
        self.pits_deleted = 0
        self.scrolls_created = 0
        self.scrolls_cleared = 0
        self.lock = threading.Lock()
        self._seq = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- data ----------------------------------------------------------------------------------

    def add_index(self, name: str, sources: Iterable[dict[str, Any]], *, id_field: str | None = "id") -> None:
        """Index ``sources``; ``_id`` is taken from ``id_field`` (which stays in the source) or numbered."""
        docs = self.indexes.setdefault(name, [])
        for source in sources:
            doc_id = str(source[id_field]) if id_field and id_field in source else str(len(docs) + 1)
            docs.append(Doc(len(docs), doc_id, source))

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> str:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeOpenSearch:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def open_contexts(self) -> int:
        """PIT and scroll contexts still alive (the extractor must leave none)."""
        now = time.monotonic()
        with self.lock:
            return sum(1 for c in [*self.pits.values(), *self.scrolls.values()] if c.expires > now)

    # -- request handling ------------------------------------------------------------------------

    def handle(self, request: Request, number: int) -> Reply | str:
        for fault in self.faults:
            outcome = fault(request, number)
            if outcome is not None:
                return outcome
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        try:
            return self._route(request)
        except ApiError as exc:
            return exc.reply

    def _authenticate(self, request: Request) -> Reply | None:
        header = request.headers.get("authorization", "")
        if self.users is not None:
            ok = False
            if header.startswith("Basic "):
                try:
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    ok = self.users.get(user) == password
                except ValueError:
                    ok = False
            if not ok:
                return Reply(
                    401,
                    "Unauthorized",
                    {"WWW-Authenticate": 'Basic realm="OpenSearch Security"', "Content-Type": "text/plain"},
                )
        if self.sigv4 is not None:
            region, service = self.sigv4
            scope = f"/{region}/{service}/aws4_request"
            signed = re.match(
                r"AWS4-HMAC-SHA256 Credential=[^/]+/\d{8}"
                + re.escape(scope)
                + r", SignedHeaders=([^,]+), Signature=[0-9a-f]{64}$",
                header,
            )
            needs = {"host", "x-amz-date"} | ({"x-amz-content-sha256"} if service == "aoss" else set())
            if not signed or not needs <= set(signed.group(1).split(";")) or "x-amz-date" not in request.headers:
                return Reply(403, {"message": "The security token included in the request is invalid."})
        return None

    def _route(self, request: Request) -> Reply:
        method, parts = request.method, [unquote(p) for p in request.path.strip("/").split("/") if p]
        if not parts and method in ("GET", "HEAD"):
            return Reply(
                200,
                {
                    "name": "node-1",
                    "cluster_name": "osft-test",
                    "version": {"distribution": "opensearch", "number": self.version},
                    "tagline": "The OpenSearch Project: https://opensearch.org/",
                },
            )
        if parts[:2] == ["_search", "point_in_time"] and self.pit_supported:
            if method == "DELETE" and parts[2:] == ["_all"]:
                return self._delete_all_pits()
            if method == "DELETE" and len(parts) == 2:
                return self._delete_pits(request)
        elif parts == ["_search", "scroll"] and method in ("GET", "POST"):
            return self._scroll_next(request)
        elif parts == ["_search", "scroll"] and method == "DELETE":
            return self._clear_scroll(request)
        elif parts == ["_search"] and method in ("GET", "POST"):
            return self._search(request, None)
        elif len(parts) == 1 and not parts[0].startswith("_") and method == "HEAD":
            return Reply(200 if self._resolve(parts[0], missing_ok=True) else 404)
        elif len(parts) == 1 and not parts[0].startswith("_") and method == "PUT":
            return self._create_index(parts[0])
        elif len(parts) == 1 and not parts[0].startswith("_") and method == "DELETE":
            return self._delete_index(parts[0])
        elif parts == ["_bulk"] and method in ("POST", "PUT"):
            return self._bulk(request)
        elif len(parts) == 2 and parts[1] == "_count" and method in ("GET", "POST"):
            return self._count(request, parts[0])
        elif len(parts) == 2 and parts[1] == "_search" and method in ("GET", "POST"):
            return self._search(request, parts[0])
        elif parts[1:] == ["_search", "point_in_time"] and method == "POST" and self.pit_supported:
            return self._create_pit(request, parts[0])
        uri = request.path + (("?" + "&".join(f"{k}={v}" for k, v in request.params.items())) if request.params else "")
        return Reply(400, {"error": f"no handler found for uri [{uri}] and method [{method}]"})

    def _resolve(self, expression: str, *, missing_ok: bool = False) -> list[str]:
        names: list[str] = []
        for part in expression.split(","):
            if "*" in part:
                names += sorted(n for n in self.indexes if fnmatch.fnmatchcase(n, part))
            elif part in self.indexes:
                names.append(part)
            elif missing_ok:
                return []
            else:
                raise index_not_found(part)
        return names

    def _docs(self, expression: str) -> list[Doc]:
        return [doc for name in self._resolve(expression) for doc in self.indexes[name]]

    def _create_index(self, name: str) -> Reply:
        with self.lock:
            if name in self.indexes:
                raise ApiError(
                    400, "resource_already_exists_exception", f"index [{name}/_na_] already exists", index=name
                )
            self.indexes[name] = []
        return Reply(200, {"acknowledged": True, "shards_acknowledged": True, "index": name})

    def _delete_index(self, name: str) -> Reply:
        with self.lock:
            if name not in self.indexes:
                raise index_not_found(name)
            del self.indexes[name]
        return Reply(200, {"acknowledged": True})

    def _bulk(self, request: Request) -> Reply:
        """``index`` actions only (what the live test uses); documents are visible at once."""
        lines = request.body if isinstance(request.body, list) else []
        if not lines or len(lines) % 2:
            raise validation_error("no requests added")
        items = []
        for action, source in zip(lines[::2], lines[1::2], strict=True):
            if set(action) != {"index"}:
                raise ApiError(400, "illegal_argument_exception", f"Malformed action/metadata line [{sorted(action)}]")
            meta = action["index"]
            with self.lock:
                docs = self.indexes.setdefault(meta["_index"], [])
                doc_id = str(meta.get("_id") or len(docs) + 1)
                docs.append(Doc(len(docs), doc_id, source))
            items.append({"index": {"_index": meta["_index"], "_id": doc_id, "status": 201, "result": "created"}})
        return Reply(200, {"took": 1, "errors": False, "items": items})

    def _count(self, request: Request, index: str) -> Reply:
        body = request.body or {}
        unknown = set(body) - {"query"}
        if unknown:
            raise ApiError(400, "parsing_exception", f"request does not support [{sorted(unknown)[0]}]")
        query = body.get("query", {"match_all": {}})
        count = sum(1 for doc in self._docs(index) if matches(query, doc))
        return Reply(200, {"count": count, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}})

    # -- point in time -------------------------------------------------------------------------

    def _create_pit(self, request: Request, index: str) -> Reply:
        # RestCreatePitAction parses its parameters, then the REST layer refuses unknown ones, then
        # the request is validated and run (phase 1 over the shards, phase 2 sets the keep_alive).
        allow_partial = parse_bool(request, "allow_partial_pit_creation", True)
        keep_alive = request.params.get("keep_alive")
        seconds = parse_time(keep_alive, "keep_alive") if keep_alive is not None else None
        check_params(request, CREATE_PIT_PARAMS)
        if seconds is None:
            raise validation_error("keep alive not specified")
        self._authorize(request, PIT_ACTIONS["create"])
        docs = self._docs(index)
        missing = sorted(n for n in self.unavailable_shards if n < self.shards)
        if missing and not allow_partial:
            raise missing_shards(index, missing, "create_pit")
        if seconds > self.pit_max_keep_alive:
            raise keep_alive_too_large(seconds, self.pit_max_keep_alive, "point_in_time.max_keep_alive")
        docs = [d for d in docs if self.shard_of(d) not in missing]
        pit_id = base64.urlsafe_b64encode(secrets.token_bytes(48)).decode()
        now = time.monotonic()
        with self.lock:
            self.pits[pit_id] = Context(docs=docs, index=index, expires=now + seconds)
            self.pits_created += 1
        return Reply(
            200,
            {
                "pit_id": pit_id,
                "_shards": self._shards_header(index, missing),
                "creation_time": int(time.time() * 1000),
            },
        )

    def shard_of(self, doc: Doc) -> int:
        return zlib.adler32(doc.id.encode()) % self.shards

    def _shards_header(self, index: str, missing: list[int]) -> dict[str, Any]:
        header: dict[str, Any] = {
            "total": self.shards,
            "successful": self.shards - len(missing),
            "skipped": 0,
            "failed": len(missing),
        }
        if missing:
            header["failures"] = [
                {
                    "shard": n,
                    "index": index,
                    "node": None,
                    "reason": {
                        "type": "no_shard_available_action_exception",
                        "reason": None,
                        "index_uuid": "_na_",
                        "shard": str(n),
                        "index": index,
                    },
                }
                for n in missing
            ]
        return header

    def _authorize(self, request: Request, action: str) -> None:
        """The security plugin's 403 for an action the user's roles do not grant."""
        if action not in self.denied:
            return
        header = request.headers.get("authorization", "")
        user = "reader"
        if header.startswith("Basic "):
            user = base64.b64decode(header[6:]).decode(errors="replace").partition(":")[0]
        raise ApiError(
            403,
            "security_exception",
            f"no permissions for [{action}] and User [name={user}, backend_roles=[], requestedTenant=null]",
        )

    def _take_timeout(self) -> bool:
        with self.lock:
            if self.search_timeouts <= 0:
                return False
            self.search_timeouts -= 1
            return True

    def _delete_pits(self, request: Request) -> Reply:
        body = request.body
        if not isinstance(body, dict) or "pit_id" not in body:
            raise validation_error("no pit ids specified")
        ids = body["pit_id"] if isinstance(body["pit_id"], list) else [body["pit_id"]]
        results = []
        with self.lock:
            for pit_id in ids:
                found = self.pits.pop(pit_id, None) is not None
                self.pits_deleted += found
                results.append({"successful": found, "pit_id": pit_id})
        if not any(r["successful"] for r in results):
            raise ApiError(404, "search_context_missing_exception", f"No search context found for id [{ids[0]}]")
        return Reply(200, {"pits": results})

    def _delete_all_pits(self) -> Reply:
        with self.lock:
            results = [{"successful": True, "pit_id": pit_id} for pit_id in self.pits]
            self.pits_deleted += len(results)
            self.pits.clear()
        return Reply(200, {"pits": results})

    # -- search ----------------------------------------------------------------------------------

    def _search(self, request: Request, index: str | None) -> Reply:
        body = request.body or {}
        if not isinstance(body, dict):
            raise ApiError(400, "parsing_exception", "request body must be an object")
        for key in body:
            if key not in SEARCH_KEYS:
                raise ApiError(400, "parsing_exception", f"Unknown key for a VALUE_STRING in [{key}].", line=1, col=1)
        scroll = request.params.get("scroll")
        allow_partial = parse_bool(request, "allow_partial_search_results", True)
        pit = body.get("pit")
        if pit is not None:
            if index is not None:
                raise validation_error(
                    "[indices] cannot be used with point in time. Do not specify any index with point in time."
                )
            if scroll is not None:
                raise validation_error("using [point in time] is not allowed in a scroll context")
        elif index is None:
            index = ",".join(self.indexes) or "_all"
        size = body.get("size", 10)
        start = body.get("from", 0)
        if not isinstance(size, int) or size < 0:
            raise ApiError(400, "illegal_argument_exception", f"[size] parameter cannot be negative, found [{size}]")
        if start + size > MAX_RESULT_WINDOW and scroll is None:
            raise ApiError(
                400,
                "illegal_argument_exception",
                f"Result window is too large, from + size must be less than or equal to: [{MAX_RESULT_WINDOW}] "
                f"but was [{start + size}].",
            )
        sort = parse_sort(body.get("sort"), self.version)
        search_after = body.get("search_after")
        if search_after is not None:
            if scroll is not None:
                raise validation_error("[search_after] cannot be used in a scroll context")
            if not sort:
                raise ApiError(400, "illegal_argument_exception", "Sort must contain at least one field.")
            if len(search_after) != len(sort):
                raise ApiError(
                    400,
                    "illegal_argument_exception",
                    f"search_after has {len(search_after)} value(s) but sort has {len(sort)}.",
                )
            if start not in (0, -1):
                raise ApiError(
                    400, "illegal_argument_exception", "`from` parameter must be set to 0 when `search_after` is used."
                )
        slicing = parse_slice(body.get("slice"))
        query = body.get("query", {"match_all": {}})
        check_query(query)

        self._authorize(request, PIT_ACTIONS["search"])
        now = time.monotonic()
        if pit is not None:
            pit_id = pit.get("id") if isinstance(pit, dict) else None
            with self.lock:
                context = self.pits.get(pit_id or "")
                if context is None or context.expires < now:
                    self.pits.pop(pit_id or "", None)
                    raise ApiError(
                        404, "search_context_missing_exception", f"No search context found for id [{pit_id}]"
                    )
                if "keep_alive" in pit:
                    context.expires = now + parse_time(pit["keep_alive"], "keep_alive")
            docs, cache, index_name = context.docs, context.cache, context.index
        else:
            docs, cache, index_name = self._docs(index), {}, index
        for key in sort:
            check_sort_field(key[0], docs)

        ordered, keys = self._ordered(docs, query, slicing, sort, cache)
        if search_after is not None:
            after = sort_key(list(search_after), sort)
            begin = (
                bisect.bisect_right(keys, after)
                if all(o == "asc" for _, o in sort)
                else _linear_after(keys, after, sort)
            )
            window = ordered[begin : begin + size]
        else:
            window = ordered[start : start + size]
        timed_out = self._take_timeout()
        if timed_out and not allow_partial:
            return shard_timeout(index_name, self.shards)
        if timed_out:
            window = window[: len(window) // 2]  # the shard returned what it had collected in time

        total = total_hits(body.get("track_total_hits"), len(ordered))
        if scroll is not None:
            seconds = parse_time(scroll, "scroll")
            if seconds > self.scroll_max_keep_alive:
                raise keep_alive_too_large(seconds, self.scroll_max_keep_alive, "search.max_keep_alive")
            scroll_id = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
            with self.lock:
                self.scrolls[scroll_id] = Context(
                    docs=ordered,
                    index=index or "",
                    expires=now + seconds,
                    position=len(window),
                    page_size=size,
                    source_filter=body.get("_source", True),
                    allow_partial=allow_partial,
                    total=total,
                )
                self.scrolls_created += 1
            response = search_response(window, sort, body.get("_source", True), total=total, shards=self.shards)
            response["_scroll_id"] = scroll_id
            response["timed_out"] = timed_out
            return Reply(200, response)
        response = search_response(window, sort, body.get("_source", True), total=total, shards=self.shards)
        response["timed_out"] = timed_out
        if pit is not None:
            response["pit_id"] = pit["id"]
        return Reply(200, response)

    def _ordered(
        self, docs: list[Doc], query: Any, slicing: tuple[int, int] | None, sort: list, cache: dict
    ) -> tuple[list[Doc], list[tuple]]:
        cache_key = json.dumps([query, slicing, sort], sort_keys=True)
        with self.lock:
            if cache_key in cache:
                return cache[cache_key]
        selected = [d for d in docs if matches(query, d) and (slicing is None or slice_of(d, slicing[1]) == slicing[0])]
        if sort:
            selected.sort(key=lambda d: sort_key(sort_values(d, sort), sort))
        keys = [sort_key(sort_values(d, sort), sort) for d in selected] if sort else []
        with self.lock:
            cache[cache_key] = (selected, keys)
        return selected, keys

    # -- scroll ------------------------------------------------------------------------------------

    def _scroll_next(self, request: Request) -> Reply:
        body = request.body or {}
        scroll_id = body.get("scroll_id") or request.params.get("scroll_id")
        keep_alive = body.get("scroll") or request.params.get("scroll")
        if not scroll_id:
            raise validation_error("scrollId is missing")
        self._authorize(request, PIT_ACTIONS["scroll"])
        seconds = parse_time(keep_alive, "scroll") if keep_alive else None
        if seconds is not None and seconds > self.scroll_max_keep_alive:
            raise keep_alive_too_large(seconds, self.scroll_max_keep_alive, "search.max_keep_alive")
        now = time.monotonic()
        with self.lock:
            context = self.scrolls.get(scroll_id)
            if context is None or context.expires < now:
                self.scrolls.pop(scroll_id, None)
                raise ApiError(404, "search_context_missing_exception", f"No search context found for id [{scroll_id}]")
            if seconds is not None:
                context.expires = now + seconds
        timed_out = self._take_timeout()
        if timed_out and not context.allow_partial:
            return shard_timeout(context.index, self.shards)
        with self.lock:
            window = context.docs[context.position : context.position + context.page_size]
            if timed_out:
                window = window[: len(window) // 2]
            context.position += len(window)
        response = search_response(window, [], context.source_filter, total=context.total, shards=self.shards)
        response["_scroll_id"] = scroll_id
        response["timed_out"] = timed_out
        return Reply(200, response)

    def _clear_scroll(self, request: Request) -> Reply:
        body = request.body or {}
        ids = body.get("scroll_id") or request.params.get("scroll_id", "")
        ids = ids if isinstance(ids, list) else [i for i in str(ids).split(",") if i]
        if not ids:
            raise validation_error("no scroll ids specified")
        with self.lock:
            if ids == ["_all"]:
                freed = len(self.scrolls)
                self.scrolls.clear()
            else:
                freed = sum(self.scrolls.pop(i, None) is not None for i in ids)
            self.scrolls_cleared += freed
        return Reply(200 if freed else 404, {"succeeded": True, "num_freed": freed})


def _linear_after(keys: list[tuple], after: tuple, sort: list) -> int:
    for position, key in enumerate(keys):
        if key > after:
            return position
    return len(keys)


# -- query DSL subset -------------------------------------------------------------------------------

QUERY_TYPES = {"match_all", "match_none", "term", "terms", "match", "bool", "range", "exists", "ids"}


def check_query(query: Any) -> None:
    if not isinstance(query, dict) or len(query) != 1:
        raise ApiError(400, "parsing_exception", "[query] malformed, expected a single query object", line=1, col=1)
    ((kind, spec),) = query.items()
    if kind not in QUERY_TYPES:
        raise ApiError(400, "parsing_exception", f"unknown query [{kind}]", line=1, col=1)
    if kind == "bool":
        for clause in ("must", "filter", "should", "must_not"):
            items = spec.get(clause, [])
            for item in items if isinstance(items, list) else [items]:
                check_query(item)


def _field_values(doc: Doc, name: str) -> list[Any]:
    value = doc.id if name == "_id" else get_path(doc.source, name)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def matches(query: dict[str, Any], doc: Doc) -> bool:
    ((kind, spec),) = query.items()
    if kind == "match_all":
        return True
    if kind == "match_none":
        return False
    if kind == "ids":
        return doc.id in spec.get("values", [])
    if kind == "exists":
        return bool(_field_values(doc, spec["field"]))
    if kind in ("term", "terms", "match", "range"):
        ((name, condition),) = spec.items()
        values = _field_values(doc, name)
        if kind == "term":
            wanted = condition.get("value") if isinstance(condition, dict) else condition
            return wanted in values
        if kind == "terms":
            return any(v in condition for v in values)
        if kind == "match":
            text = condition.get("query") if isinstance(condition, dict) else condition
            words = set(re.findall(r"\w+", str(text).lower()))
            return any(words & set(re.findall(r"\w+", str(v).lower())) for v in values)
        ops = {
            "gt": lambda a, b: a > b,
            "gte": lambda a, b: a >= b,
            "lt": lambda a, b: a < b,
            "lte": lambda a, b: a <= b,
        }
        return any(all(ops[op](v, bound) for op, bound in condition.items() if op in ops) for v in values)
    must = spec.get("must", []) + spec.get("filter", [])
    should = spec.get("should", [])
    must_not = spec.get("must_not", [])
    must, should, must_not = ([q] if isinstance(q, dict) else q for q in (must, should, must_not))
    return (
        all(matches(q, doc) for q in must)
        and not any(matches(q, doc) for q in must_not)
        and (not should or any(matches(q, doc) for q in should))
    )


# -- sorting, slicing, responses ----------------------------------------------------------------------


def parse_sort(sort: Any, version: str) -> list[tuple[str, str]]:
    if sort is None:
        return []
    items = sort if isinstance(sort, list) else [sort]
    parsed = []
    for item in items:
        if isinstance(item, str):
            name, order = item, "asc"
        elif isinstance(item, dict) and len(item) == 1:
            ((name, spec),) = item.items()
            order = spec.get("order", "asc") if isinstance(spec, dict) else spec
        else:
            raise ApiError(
                400,
                "parsing_exception",
                "malformed sort format, within the sort array, an object, or an actual string are allowed",
            )
        if order not in ("asc", "desc"):
            raise ApiError(400, "illegal_argument_exception", f"Unknown SortOrder [{order}]")
        if name == "_shard_doc" and tuple(int(x) for x in version.split(".")[:2]) < (3, 3):
            raise ApiError(
                400,
                "search_phase_execution_exception",
                "all shards failed",
                phase="query",
                caused_by={
                    "type": "query_shard_exception",
                    "reason": "No mapping found for [_shard_doc] in order to sort on",
                },
            )
        parsed.append((name, order))
    return parsed


def check_sort_field(name: str, docs: list[Doc]) -> None:
    if name in ("_doc", "_id", "_score", "_shard_doc"):
        return
    if not any(get_path(d.source, name) is not None for d in docs):
        raise ApiError(
            400,
            "search_phase_execution_exception",
            "all shards failed",
            phase="query",
            caused_by={"type": "query_shard_exception", "reason": f"No mapping found for [{name}] in order to sort on"},
        )


def sort_values(doc: Doc, sort: list[tuple[str, str]]) -> list[Any]:
    values = []
    for name, _ in sort:
        if name in ("_doc", "_shard_doc"):
            values.append(doc.seq)
        elif name == "_id":
            values.append(doc.id)
        elif name == "_score":
            values.append(1.0)
        else:
            values.append(get_path(doc.source, name))
    return values


class _Desc:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return self.value > other.value

    def __gt__(self, other: _Desc) -> bool:
        return self.value < other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value


def sort_key(values: list[Any], sort: list[tuple[str, str]]) -> tuple:
    key = []
    for value, (_, order) in zip(values, sort, strict=True):
        present = (0, value) if value is not None else (1, 0)
        key.append(present if order == "asc" else _Desc(present))
    return tuple(key)


def parse_slice(spec: Any) -> tuple[int, int] | None:
    if spec is None:
        return None
    if not isinstance(spec, dict) or "id" not in spec or "max" not in spec:
        raise ApiError(400, "parsing_exception", "[slice] requires [id] and [max]")
    number, maximum = spec["id"], spec["max"]
    if maximum <= 1:
        raise ApiError(400, "illegal_argument_exception", "max must be greater than 1")
    if number < 0:
        raise ApiError(400, "illegal_argument_exception", "id must be greater than or equal to 0")
    if number >= maximum:
        raise ApiError(400, "illegal_argument_exception", "max must be greater than id")
    return number, maximum


def slice_of(doc: Doc, maximum: int) -> int:
    return zlib.crc32(doc.id.encode()) % maximum


def filter_source(source: dict[str, Any], spec: Any) -> dict[str, Any] | None:
    if spec is True or spec is None:
        return source
    if spec is False:
        return None
    includes = spec if isinstance(spec, list) else ([spec] if isinstance(spec, str) else spec.get("includes", []))
    result: dict[str, Any] = {}
    for pattern in includes:
        if "*" in pattern:
            for key in source:
                if fnmatch.fnmatchcase(key, pattern):
                    result[key] = source[key]
            continue
        value = get_path(source, pattern)
        if value is None:
            continue
        target = result
        parts = pattern.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return result


def total_hits(track: Any, matched: int) -> dict[str, Any] | None:
    """``hits.total`` under ``track_total_hits``: exact when true, none when false, else a lower
    bound past the threshold (10,000 by default)."""
    if track is False:
        return None
    threshold = matched if track is True else (TRACK_TOTAL_HITS if track is None else int(track))
    return {"value": matched, "relation": "eq"} if matched <= threshold else {"value": threshold, "relation": "gte"}


def search_response(
    docs: list[Doc], sort: list, source_filter: Any, *, total: dict[str, Any] | None, shards: int = 1
) -> dict[str, Any]:
    hits = []
    for doc in docs:
        hit: dict[str, Any] = {"_index": "index", "_id": doc.id, "_score": None if sort else 1.0}
        source = filter_source(doc.source, source_filter)
        if source is not None:
            hit["_source"] = source
        if sort:
            hit["sort"] = sort_values(doc, sort)
        hits.append(hit)
    result: dict[str, Any] = {"max_score": None if sort else 1.0, "hits": hits}
    if total is not None:
        result = {"total": total, **result}
    return {
        "took": 1,
        "timed_out": False,
        "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0},
        "hits": result,
    }


# -- HTTP ----------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server_fake: FakeOpenSearch
    counter = iter(range(1, 10**12))
    counter_lock = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        fake = self.server_fake
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        body: Any = None
        if raw:
            content_type = headers.get("content-type", "").split(";")[0].strip()
            if content_type not in ("application/json", "application/x-ndjson"):
                self._send(
                    Reply(406, {"error": f"Content-Type header [{content_type}] is not supported", "status": 406})
                )
                return
            try:
                if content_type == "application/x-ndjson" or split.path.endswith("/_bulk"):
                    body = [json.loads(line) for line in raw.splitlines() if line.strip()]
                else:
                    body = json.loads(raw)
            except ValueError as exc:
                self._send(ApiError(400, "parse_exception", f"Failed to parse content to map ({exc})").reply)
                return
        request = Request(self.command, split.path, dict(parse_qsl(split.query)), body, headers)
        with self.counter_lock:
            number = next(self.counter)
        if fake.record_requests:
            with fake.lock:
                fake.requests.append(request)
        outcome = fake.handle(request, number)
        if outcome == DROP:
            self.close_connection = True
            return
        if outcome == CUT:
            payload = json.dumps({"hits": {"hits": [{"_id": "x"}] * 50}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        assert isinstance(outcome, Reply)
        self._send(outcome)

    def _send(self, reply: Reply) -> None:
        if isinstance(reply.body, str):
            payload = reply.body.encode()
            content_type = reply.headers.get("Content-Type", "text/plain; charset=UTF-8")
        else:
            payload = json.dumps(reply.body).encode() if reply.body is not None else b""
            content_type = "application/json; charset=UTF-8"
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            if name != "Content-Type":
                self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = do_HEAD = do_PUT = _serve


# -- faults -------------------------------------------------------------------------------------------


def is_page_request(request: Request) -> bool:
    return request.path.endswith("/_search") or (
        request.path.rstrip("/") == "/_search/scroll" and request.method != "DELETE"
    )


class RateLimitStorm:
    """Answer 429 to ``count`` page requests, every ``every``-th one, starting with the first."""

    def __init__(self, count: int, every: int = 1) -> None:
        self.left = count
        self.every = every
        self.seen = 0
        self.lock = threading.Lock()

    def __call__(self, request: Request, number: int) -> Reply | None:
        if not is_page_request(request):
            return None
        with self.lock:
            self.seen += 1
            if self.left > 0 and (self.seen - 1) % self.every == 0:
                self.left -= 1
                return too_many_requests()
        return None


class DropAfter:
    """Drop (or cut short) the connection of ``times`` page requests once ``after`` pages were served."""

    def __init__(
        self, after: int, times: int = 1, mode: str = DROP, only: Callable[[Request], bool] = is_page_request
    ) -> None:
        self.after = after
        self.times = times
        self.mode = mode
        self.only = only
        self.pages = 0
        self.lock = threading.Lock()

    def __call__(self, request: Request, number: int) -> str | None:
        if not self.only(request):
            return None
        with self.lock:
            self.pages += 1
            if self.pages > self.after and self.times > 0:
                self.times -= 1
                return self.mode
        return None


def is_scroll_continuation(request: Request) -> bool:
    return request.path.rstrip("/") == "/_search/scroll" and request.method != "DELETE"


def always(status: int, predicate: Callable[[Request], bool] = is_page_request) -> Fault:
    """Answer every matching request with ``status`` (429 gets OpenSearch's rejection body)."""

    def fault(request: Request, number: int) -> Reply | None:
        if not predicate(request):
            return None
        if status == 429:
            return too_many_requests()
        return ApiError(status, "status_exception", f"injected {status}").reply

    return fault


def web_page(request: Request, number: int) -> Reply:
    """Answer every request with 200 and an HTML page, as OpenSearch Dashboards or a login proxy does."""
    page = "<!DOCTYPE html><html><head><title>OpenSearch Dashboards</title></head><body>Loading</body></html>"
    return Reply(200, page, {"Content-Type": "text/html; charset=utf-8"})


if __name__ == "__main__":  # serve until interrupted: python tests/extractor/opensearch_server.py
    with FakeOpenSearch(record_requests=False) as fake:
        print(fake.url, flush=True)
        threading.Event().wait()
