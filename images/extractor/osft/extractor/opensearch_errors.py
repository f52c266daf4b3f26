"""OpenSearch failures as user-facing errors: what failed, on which cluster and index, and what to do.

The client itself comes from ``osft.common.opensearch`` (auth from an environment variable,
AWS Secrets Manager or SigV4; TLS verified by default).
"""

from __future__ import annotations

from typing import Any

from opensearchpy.exceptions import (
    AuthenticationException,
    AuthorizationException,
    ConnectionTimeout,
    NotFoundError,
    OpenSearchException,
    SSLError,
    TransportError,
)
from opensearchpy.exceptions import ConnectionError as OSConnectionError

from osft.common.errors import CredentialsError, OsftError, ServiceError
from osft.common.opensearch import error_reason
from osft.common.spec.source import BasicAuth, OpenSearchConnection, SigV4Auth

NOT_OPENSEARCH_HINT = (
    "set source.connection.url to the OpenSearch REST endpoint (e.g. https://host:9200 or the "
    "domain/collection endpoint), not OpenSearch Dashboards or a login page"
)
HEALTH_HINT = "check the cluster's health (GET _cluster/health?level=indices) and run the stage again"


def error_type(exc: Exception) -> str:
    info = getattr(exc, "info", None)
    error = info.get("error") if isinstance(info, dict) else None
    return error.get("type", "") if isinstance(error, dict) else ""


def not_opensearch(connection: OpenSearchConnection, action: str, detail: str) -> ServiceError:
    """The URL answered, but not like OpenSearch (an HTML page, JSON of another shape)."""
    return ServiceError(
        f"{connection.url} did not answer like OpenSearch while {action} ({detail})", hint=NOT_OPENSEARCH_HINT
    )


def _unreadable(exc: OpenSearchException) -> str:
    """What opensearch-py could not parse, without dumping a whole web page into the message."""
    cause = next((arg for arg in exc.args if isinstance(arg, Exception)), None)
    if cause is not None:
        return f"the response is not valid JSON: {cause}"
    text = str(exc.args[0]) if exc.args else type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def pit_route_missing(exc: TransportError) -> bool:
    """True when the cluster has no point-in-time API at all (OpenSearch before 2.4, some proxies)."""
    status = exc.status_code
    if status == 405:
        return True
    if status == 404:
        return error_type(exc) != "index_not_found_exception"
    return status == 400 and "no handler found" in str(exc.error)


def context_expired(connection: OpenSearchConnection, index: str, keep_alive: str, kind: str) -> ServiceError:
    """A point in time or scroll that the cluster dropped between two pages (404 search_context_missing)."""
    return ServiceError(
        f"the {kind} on index '{index}' at {connection.url} expired before the export finished "
        f"(404 search_context_missing_exception): pages were not read within source.keep_alive ({keep_alive}), "
        "or a node holding it restarted",
        hint=f"raise source.keep_alive (now {keep_alive}) for slow consumers and run the stage again; the export "
        f"restarts from the beginning, as a new {kind} cannot resume this one (documents come in another order)",
    )


def user_error(
    exc: Exception,
    connection: OpenSearchConnection,
    index: str,
    action: str,
    attempts: int,
    *,
    needs: str | None = None,
) -> OsftError:
    """One clear message for an OpenSearch failure: what, where, and what to do.

    ``needs`` names the permission ``action`` requires, for the hint of a 403.
    """
    if isinstance(exc, OsftError):
        return exc
    if isinstance(exc, OpenSearchException) and not isinstance(exc, TransportError):
        return not_opensearch(connection, action, _unreadable(exc))
    if isinstance(exc, AuthenticationException):
        return _refused(connection, action)
    if isinstance(exc, AuthorizationException):
        return _forbidden(exc, connection, index, action, needs)
    if isinstance(exc, OSConnectionError):
        return _unreachable(exc, connection, action, attempts)
    if isinstance(exc, TransportError):
        return _rejected(exc, connection, index, action, attempts)
    return ServiceError(f"OpenSearch at {connection.url}: {exc}")


def _refused(connection: OpenSearchConnection, action: str) -> CredentialsError:
    hint = {
        BasicAuth: "check the username and the password in the environment variable or secret",
        SigV4Auth: "check the AWS identity in use and the domain's access policy (or the collection's data policy)",
    }.get(type(connection.auth), "the cluster requires authentication: set source.connection.auth")
    return CredentialsError(f"OpenSearch at {connection.url} refused the credentials (401) while {action}", hint=hint)


def _forbidden(
    exc: TransportError, connection: OpenSearchConnection, index: str, action: str, needs: str | None
) -> CredentialsError:
    hint = (
        f"grant the user or role {needs} on the index"
        if needs
        else "grant the user or role read access (search, point-in-time or scroll) on the index"
    )
    return CredentialsError(
        f"OpenSearch at {connection.url} does not allow {action} on index '{index}' (403: {error_reason(exc)})",
        hint=hint,
    )


def _unreachable(exc: OSConnectionError, connection: OpenSearchConnection, action: str, attempts: int) -> ServiceError:
    url = connection.url
    if isinstance(exc, SSLError):
        return ServiceError(
            f"TLS connection to {url} failed ({exc.error})",
            hint="set source.connection.ca_certs to the cluster's CA bundle (verify_certs: false only for tests)",
        )
    if isinstance(exc, ConnectionTimeout):
        return ServiceError(
            f"OpenSearch at {url} did not answer within {connection.timeout_s:g}s while {action} "
            f"({attempts} attempt(s))",
            hint="raise source.connection.timeout_s, or lower source.page_size",
        )
    return ServiceError(
        f"cannot reach OpenSearch at {url} while {action} ({attempts} attempt(s)): {exc.info or exc.error}",
        hint="check source.connection.url, that the cluster is up, and the network path (VPC, security group, proxy)",
    )


def _rejected(
    exc: TransportError, connection: OpenSearchConnection, index: str, action: str, attempts: int
) -> ServiceError:
    """An HTTP error status from the cluster."""
    url, status, reason = connection.url, exc.status_code, error_reason(exc)
    text = str(exc.info)
    if isinstance(exc, NotFoundError) and error_type(exc) == "index_not_found_exception":
        return ServiceError(
            f"index '{index}' does not exist on {url}",
            hint="check source.index; GET _cat/indices lists the cluster's indexes",
        )
    if status == 429:
        return ServiceError(
            f"OpenSearch at {url} kept rejecting requests (429 Too Many Requests) while {action}, "
            f"after {attempts} attempt(s)",
            hint="lower source.slices or source.page_size, or raise source.connection.max_retries",
        )
    if "missing shards" in text:
        return ServiceError(
            f"index '{index}' on {url} has shards with no available copy ({status} {reason}); "
            "their documents would be missing",
            hint=HEALTH_HINT,
        )
    if "Time exceeded" in text:
        return ServiceError(
            f"a shard of index '{index}' on {url} ran past the cluster's search timeout while {action} "
            f"({status} {reason}, {attempts} attempt(s))",
            hint="lower source.page_size, or raise the cluster's search.default_search_timeout",
        )
    if status == 400:
        return _bad_request(exc, connection, index, action)
    return ServiceError(
        f"OpenSearch at {url} failed while {action} on index '{index}' ({status} {reason})",
        hint="retry later; raise source.connection.max_retries for a busy cluster",
    )


def _bad_request(exc: TransportError, connection: OpenSearchConnection, index: str, action: str) -> ServiceError:
    url, reason, text = connection.url, error_reason(exc), str(exc.info)
    if "in order to sort on" in text:
        return ServiceError(
            f"OpenSearch at {url} cannot sort index '{index}' by the tiebreak field (400 {reason})",
            hint="set source.tiebreak_field to a unique field the index maps (default _id; "
            "_shard_doc needs OpenSearch 3.3+)",
        )
    if "Keep alive for request" in text and "is too large" in text:
        return ServiceError(
            f"OpenSearch at {url} refused source.keep_alive while {action} (400 {reason})",
            hint="lower source.keep_alive below the cluster's limit (point_in_time.max_keep_alive for a point in "
            "time, search.max_keep_alive for a scroll; both 24h by default)",
        )
    return ServiceError(
        f"OpenSearch at {url} rejected the request while {action} on index '{index}' (400 {reason})",
        hint="check source.query and the field names in source.fields",
    )


def shard_trouble(response: dict[str, Any]) -> str | None:
    """Why a response's ``_shards`` header says documents are missing, or None when every shard answered."""
    shards = response.get("_shards")
    if not isinstance(shards, dict):
        return None
    total, successful, failed = shards.get("total"), shards.get("successful"), shards.get("failed") or 0
    if not failed and not (isinstance(total, int) and isinstance(successful, int) and successful < total):
        return None
    failures = shards.get("failures") or [{}]
    cause = failures[0].get("reason") if isinstance(failures[0], dict) else None
    cause = cause if isinstance(cause, dict) else {}
    why = ": ".join(str(part) for part in (cause.get("type"), cause.get("reason")) if part) or "no reason given"
    return f"{successful if successful is not None else '?'} of {total if total is not None else '?'} shard(s) answered ({why})"
