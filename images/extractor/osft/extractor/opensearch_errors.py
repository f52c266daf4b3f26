"""OpenSearch failures as user-facing errors: what failed, on which cluster and index, and what to do.

The client itself comes from ``osft.common.opensearch`` (auth from an environment variable,
AWS Secrets Manager or SigV4; TLS verified by default).
"""

from __future__ import annotations

from opensearchpy.exceptions import (
    AuthenticationException,
    AuthorizationException,
    ConnectionTimeout,
    NotFoundError,
    SSLError,
    TransportError,
)
from opensearchpy.exceptions import ConnectionError as OSConnectionError

from osft.common.errors import CredentialsError, OsftError, ServiceError
from osft.common.opensearch import error_reason
from osft.common.spec.source import BasicAuth, OpenSearchConnection, SigV4Auth


def error_type(exc: TransportError) -> str:
    info = exc.info if isinstance(exc.info, dict) else {}
    error = info.get("error")
    return error.get("type", "") if isinstance(error, dict) else ""


def user_error(exc: Exception, connection: OpenSearchConnection, index: str, action: str, attempts: int) -> OsftError:
    """One clear message for an OpenSearch failure: what, where, and what to do."""
    url = connection.url
    if isinstance(exc, OsftError):
        return exc
    if isinstance(exc, AuthenticationException):
        hint = {
            BasicAuth: "check the username and the password in the environment variable or secret",
            SigV4Auth: "check the AWS identity in use and the domain's access policy (or the collection's data policy)",
        }.get(type(connection.auth), "the cluster requires authentication: set source.connection.auth")
        return CredentialsError(f"OpenSearch at {url} refused the credentials (401) while {action}", hint=hint)
    if isinstance(exc, AuthorizationException):
        return CredentialsError(
            f"OpenSearch at {url} does not allow {action} on index '{index}' (403: {error_reason(exc)})",
            hint="grant the user or role read access (search, point-in-time or scroll) on the index",
        )
    if isinstance(exc, NotFoundError) and error_type(exc) == "index_not_found_exception":
        return ServiceError(
            f"index '{index}' does not exist on {url}",
            hint="check source.index; GET _cat/indices lists the cluster's indexes",
        )
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
    if isinstance(exc, OSConnectionError):
        return ServiceError(
            f"cannot reach OpenSearch at {url} while {action} ({attempts} attempt(s)): {exc.info or exc.error}",
            hint="check source.connection.url, that the cluster is up, and the network path (VPC, security group, proxy)",
        )
    if isinstance(exc, TransportError):
        status = exc.status_code
        if status == 429:
            return ServiceError(
                f"OpenSearch at {url} kept rejecting requests (429 Too Many Requests) while {action}, "
                f"after {attempts} attempt(s)",
                hint="lower source.slices or source.page_size, or raise source.connection.max_retries",
            )
        if status == 400 and "in order to sort on" in str(exc.info):
            return ServiceError(
                f"OpenSearch at {url} cannot sort index '{index}' by the tiebreak field (400 {error_reason(exc)})",
                hint="set source.tiebreak_field to a unique field the index maps (default _id; "
                "_shard_doc needs OpenSearch 3.3+)",
            )
        if status == 400:
            return ServiceError(
                f"OpenSearch at {url} rejected the request while {action} on index '{index}' (400 {error_reason(exc)})",
                hint="check source.query and the field names in source.fields",
            )
        return ServiceError(
            f"OpenSearch at {url} failed while {action} on index '{index}' ({status} {error_reason(exc)})",
            hint="retry later; raise source.connection.max_retries for a busy cluster",
        )
    return ServiceError(f"OpenSearch at {url}: {exc}")
