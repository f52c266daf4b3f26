"""An opensearch-py client from the spec's connection, and OpenSearch failures as user-facing errors.

Passwords come from an environment variable or AWS Secrets Manager, never from the spec.
SigV4 signing (Amazon OpenSearch Service ``es``, Serverless ``aoss``) uses the default AWS
credential chain.
"""

from __future__ import annotations

import json
import os
from typing import Any

from opensearchpy import AWSV4SignerAuth, OpenSearch, RequestsHttpConnection
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
from osft.common.spec.source import BasicAuth, OpenSearchConnection, SigV4Auth


def _region_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if arn.startswith("arn:") and len(parts) > 3 and parts[3] else None


def secret_password(auth: BasicAuth) -> str:
    """The password held in AWS Secrets Manager: the whole string, or one key of a JSON secret."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    secret_id = auth.password_secret_arn or ""
    where = f"secret {secret_id} (source.connection.auth.password_secret_arn)"
    try:
        client = boto3.client("secretsmanager", region_name=_region_of(secret_id))
        value = client.get_secret_value(SecretId=secret_id).get("SecretString")
    except NoCredentialsError:
        raise CredentialsError(f"{where}: no AWS credentials to read it", hint="set AWS_PROFILE or AWS keys") from None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise CredentialsError(f"{where}: no such secret", hint="check the ARN and its region") from None
        raise CredentialsError(
            f"{where}: cannot read it ({code})", hint="allow secretsmanager:GetSecretValue on it"
        ) from None
    except BotoCoreError as exc:
        raise CredentialsError(f"{where}: cannot read it ({exc})") from None
    if not value:
        raise CredentialsError(f"{where}: the secret has no string value")
    try:
        data = json.loads(value)
    except ValueError:
        data = None
    if isinstance(data, dict):
        key = auth.secret_key or "password"
        if key not in data:
            raise CredentialsError(
                f"{where}: the JSON secret has no key '{key}' (keys: {', '.join(sorted(data))})",
                hint="set source.connection.auth.secret_key to the key holding the password",
            )
        return str(data[key])
    return value


def password(auth: BasicAuth) -> str:
    if auth.password_env:
        value = os.environ.get(auth.password_env)
        if not value:
            raise CredentialsError(
                f"environment variable {auth.password_env} (source.connection.auth.password_env) is not set",
                hint=f"export {auth.password_env}=<password for {auth.username}>",
            )
        return value
    return secret_password(auth)


def sigv4_auth(auth: SigV4Auth) -> AWSV4SignerAuth:
    import boto3

    credentials = boto3.Session().get_credentials()
    if credentials is None:
        raise CredentialsError(
            "SigV4 signing needs AWS credentials and none were found",
            hint="set AWS_PROFILE or AWS keys, or run with an IAM role allowed on the domain/collection",
        )
    return AWSV4SignerAuth(credentials, auth.region, auth.service)


def make_client(connection: OpenSearchConnection, *, pool_size: int = 10) -> OpenSearch:
    """A thread-safe client; its own retries are off (see ``retries.RetryPolicy``)."""
    http_auth: Any = None
    if isinstance(connection.auth, BasicAuth):
        http_auth = (connection.auth.username, password(connection.auth))
    elif isinstance(connection.auth, SigV4Auth):
        http_auth = sigv4_auth(connection.auth)
    return OpenSearch(
        hosts=[connection.url],
        http_auth=http_auth,
        use_ssl=connection.url.startswith("https://"),
        verify_certs=connection.verify_certs,
        ssl_show_warn=connection.verify_certs,
        ca_certs=connection.ca_certs,
        timeout=connection.timeout_s,
        max_retries=0,
        retry_on_timeout=False,
        connection_class=RequestsHttpConnection,
        pool_maxsize=pool_size,
    )


def reason_of(exc: TransportError) -> str:
    """The server's own reason (root cause first), or the status text."""
    info = exc.info if isinstance(exc.info, dict) else {}
    error = info.get("error")
    if isinstance(error, dict):
        causes = error.get("root_cause") or []
        first = causes[0] if causes and isinstance(causes[0], dict) else error
        kind, reason = first.get("type", ""), first.get("reason", "")
        return f"{kind}: {reason}" if kind and reason else kind or reason or str(exc.error)
    if isinstance(error, str):
        return error
    return str(exc.error)


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
            f"OpenSearch at {url} does not allow {action} on index '{index}' (403: {reason_of(exc)})",
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
        if status == 400:
            return ServiceError(
                f"OpenSearch at {url} rejected the request while {action} on index '{index}' (400 {reason_of(exc)})",
                hint="check source.query and the field names in source.fields",
            )
        return ServiceError(
            f"OpenSearch at {url} failed while {action} on index '{index}' ({status} {reason_of(exc)})",
            hint="retry later; raise source.connection.max_retries for a busy cluster",
        )
    return ServiceError(f"OpenSearch at {url}: {exc}")
