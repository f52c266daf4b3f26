"""boto3 clients the stages share, with the retry policy they need."""

from __future__ import annotations

from typing import Any


def sagemaker_client(region: str | None, service: str = "sagemaker") -> Any:
    """A SageMaker (or ``sagemaker-runtime``) client with adaptive retries: throttling and a cold endpoint pass."""
    import boto3
    from botocore.config import Config

    return boto3.client(service, region_name=region, config=Config(retries={"max_attempts": 10, "mode": "adaptive"}))
