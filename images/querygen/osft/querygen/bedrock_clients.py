"""boto3 clients for Bedrock: ``bedrock-runtime`` (Converse) and ``bedrock`` (batch jobs).

Both use botocore's adaptive retry mode, which backs off and rate-limits the client itself
when Bedrock throttles; the providers add their own backoff on top for longer throttling.
Tests replace these two functions to attach ``botocore.stub.Stubber`` or event hooks.
"""

from __future__ import annotations

from typing import Any

from osft.common.errors import OsftError

BOTOCORE_MAX_ATTEMPTS = 4


def _client(service: str, region: str | None, max_pool: int = 10) -> Any:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import NoRegionError

    config = Config(
        retries={"mode": "adaptive", "max_attempts": BOTOCORE_MAX_ATTEMPTS},
        read_timeout=300,
        connect_timeout=10,
        max_pool_connections=max(10, max_pool),
    )
    try:
        return boto3.client(service, region_name=region, config=config)
    except NoRegionError:
        raise OsftError(
            "querygen.bedrock.region: no AWS region set for Bedrock",
            hint="set querygen.bedrock.region (e.g. us-east-1) or AWS_REGION",
        ) from None


def runtime_client(region: str | None, max_pool: int = 10) -> Any:
    """A ``bedrock-runtime`` client for Converse calls."""
    return _client("bedrock-runtime", region, max_pool)


def control_client(region: str | None) -> Any:
    """A ``bedrock`` client for CreateModelInvocationJob / GetModelInvocationJob."""
    return _client("bedrock", region)
