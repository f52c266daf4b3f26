"""boto3 SageMaker calls whose failures become user-facing errors: the base of the deployer and the orphan sweep."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from osft.common.errors import CredentialsError, ServiceError
from osft.common.logging import get_logger

ACCESS_DENIED_CODES = ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException")
ACCESS_HINT = "allow the registrar's role the SageMaker endpoint APIs and iam:PassRole on the execution role"


class SageMakerApi:
    """One boto3 ``sagemaker`` client: calls, Describe* that may find nothing, and paginated lists."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.log = get_logger(component="sagemaker")

    def call(self, action: str, method: str, **kwargs: Any) -> dict[str, Any]:
        """``client.<method>(**kwargs)``; failures become errors naming ``action``."""
        return self._guarded(action, lambda: getattr(self.client, method)(**kwargs))

    def describe(self, method: str, **kwargs: Any) -> dict[str, Any] | None:
        """The Describe* (or ListTags) answer, or None when the resource does not exist."""
        from botocore.exceptions import ClientError

        def answer() -> dict[str, Any] | None:
            try:
                return getattr(self.client, method)(**kwargs)
            except ClientError as exc:
                code, message = client_error(exc)
                if code == "ValidationException" and ("Could not find" in message or "does not exist" in message):
                    return None
                raise

        return self._guarded(f"calling {method}", answer)

    def listed(self, action: str, method: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
        """Every row under ``key`` of a paginated List* call."""

        def rows() -> list[dict[str, Any]]:
            pages = self.client.get_paginator(method).paginate(**kwargs)
            return [row for page in pages for row in page.get(key, [])]

        return self._guarded(action, rows)

    def _guarded(self, action: str, func: Callable[[], Any]) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            return func()
        except NoCredentialsError:
            raise CredentialsError(
                f"SageMaker: no AWS credentials while {action}", hint="set AWS_PROFILE or AWS keys"
            ) from None
        except ClientError as exc:
            code, message = client_error(exc)
            if code in ACCESS_DENIED_CODES:
                raise CredentialsError(f"SageMaker refused {action} ({code}: {message})", hint=ACCESS_HINT) from None
            if code in ("ResourceLimitExceeded", "ThrottlingException"):
                raise ServiceError(
                    f"SageMaker quota or rate limit while {action} ({code}: {message})",
                    hint="ask for a quota increase, pick another instance type, or use serverless",
                ) from None
            raise ServiceError(f"SageMaker failed while {action} ({code}: {message})") from None
        except BotoCoreError as exc:
            raise ServiceError(f"SageMaker failed while {action} ({exc})") from None


def client_error(exc: Any) -> tuple[str, str]:
    """(code, message) of a botocore ``ClientError``."""
    error = exc.response.get("Error", {})
    return error.get("Code", ""), error.get("Message", "")
