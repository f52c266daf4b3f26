"""An opensearch-py client from an ``OpenSearchConnection``, for every stage that talks to OpenSearch.

Passwords come from an environment variable or AWS Secrets Manager, never from the spec.
SigV4 signing (Amazon OpenSearch Service ``es``, Serverless ``aoss``) uses the default AWS
credential chain. TLS certificates are verified unless the spec turns it off. opensearch-py
is imported lazily: images that never talk to OpenSearch do not need it.

``field`` arguments are the spec path of the connection (``source.connection``,
``deploy.opensearch.connection``), so messages point at what the user wrote.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from osft.common.errors import CredentialsError
from osft.common.spec.source import BasicAuth, OpenSearchConnection, SigV4Auth

if TYPE_CHECKING:
    from opensearchpy import OpenSearch


def region_of_arn(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if arn.startswith("arn:") and len(parts) > 3 and parts[3] else None


def secret_password(auth: BasicAuth, field: str = "connection") -> str:
    """The password held in AWS Secrets Manager: the whole string, or one key of a JSON secret."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    secret_id = auth.password_secret_arn or ""
    where = f"secret {secret_id} ({field}.auth.password_secret_arn)"
    try:
        client = boto3.client("secretsmanager", region_name=region_of_arn(secret_id))
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
                hint=f"set {field}.auth.secret_key to the key holding the password",
            )
        return str(data[key])
    return value


def password(auth: BasicAuth, field: str = "connection") -> str:
    """The basic-auth password, from the environment variable or the secret the spec names."""
    if auth.password_env:
        value = os.environ.get(auth.password_env)
        if not value:
            raise CredentialsError(
                f"environment variable {auth.password_env} ({field}.auth.password_env) is not set",
                hint=f"export {auth.password_env}=<password for {auth.username}>",
            )
        return value
    return secret_password(auth, field)


SIGV4_HINT = "set AWS_PROFILE or AWS keys, or run with an IAM role allowed on the domain/collection"


def _aws_credentials_error(exc: Exception) -> CredentialsError:
    from botocore.exceptions import ProfileNotFound

    if isinstance(exc, ProfileNotFound):
        return CredentialsError(
            f"SigV4 signing cannot load AWS credentials: {exc}",
            hint="set AWS_PROFILE to a profile in ~/.aws/config (aws configure list-profiles lists them), or unset it",
        )
    return CredentialsError(f"SigV4 signing cannot load AWS credentials: {exc}", hint=SIGV4_HINT)


class _Signer:
    """Signs each request; botocore failures while refreshing credentials (an expired SSO session, a
    refused role) become a ``CredentialsError`` instead of escaping from opensearch-py, which signs
    outside its own error handling."""

    def __init__(self, signer: Any) -> None:
        self.signer = signer

    def __call__(self, request: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.signer(request)
        except (BotoCoreError, ClientError) as exc:
            raise _aws_credentials_error(exc) from None


def sigv4_auth(auth: SigV4Auth) -> Any:
    """An opensearch-py SigV4 signer with the default AWS credential chain."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError
    from opensearchpy import AWSV4SignerAuth

    try:
        credentials = boto3.Session().get_credentials()
    except (BotoCoreError, ClientError) as exc:
        raise _aws_credentials_error(exc) from None
    if credentials is None:
        raise CredentialsError("SigV4 signing needs AWS credentials and none were found", hint=SIGV4_HINT)
    return _Signer(AWSV4SignerAuth(credentials, auth.region, auth.service))


def opensearch_client(
    connection: OpenSearchConnection, *, field: str = "connection", pool_size: int = 10, max_retries: int | None = None
) -> OpenSearch:
    """A thread-safe opensearch-py client for ``connection``.

    ``max_retries`` defaults to the connection's own (retries on 429/5xx/lost connections
    with opensearch-py's retry); pass 0 when the caller retries itself.
    """
    from opensearchpy import OpenSearch, RequestsHttpConnection

    http_auth: Any = None
    if isinstance(connection.auth, BasicAuth):
        http_auth = (connection.auth.username, password(connection.auth, field))
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
        max_retries=connection.max_retries if max_retries is None else max_retries,
        retry_on_status=(429, 502, 503, 504),
        retry_on_timeout=False,
        connection_class=RequestsHttpConnection,
        pool_maxsize=pool_size,
    )


def error_reason(exc: Any) -> str:
    """The server's own reason of an opensearch-py ``TransportError`` (root cause first), or its status text."""
    info = exc.info if isinstance(getattr(exc, "info", None), dict) else {}
    error = info.get("error")
    if isinstance(error, dict):
        causes = error.get("root_cause") or []
        first = causes[0] if causes and isinstance(causes[0], dict) else error
        kind, reason = first.get("type", ""), first.get("reason", "")
        return f"{kind}: {reason}" if kind and reason else kind or reason or str(exc.error)
    if isinstance(error, str):
        return error
    return str(getattr(exc, "error", exc))
