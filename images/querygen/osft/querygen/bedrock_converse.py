"""Amazon Bedrock Converse on demand: one call per prompt record, with backoff on throttling.

botocore's adaptive retries absorb short bursts of ``ThrottlingException``; when they run
out (or a connection is lost or times out), ``BedrockConverse`` waits (exponential backoff with jitter) and tries again, up to
``querygen.bedrock.max_retries`` times, before reporting the record as failed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from osft.common.errors import CredentialsError, ServiceError
from osft.common.spec.querygen import BedrockOptions
from osft.querygen.on_demand import Completion, CompletionFailed, backoff_delays
from osft.querygen.prompts import PromptRecord

RETRYABLE = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "ServiceUnavailable",
        "InternalServerException",
        "ModelNotReadyException",
        "ModelTimeoutException",
        "TooManyRequestsException",
        "ModelErrorException",  # 424: the model failed on this request ("Try your request again")
    }
)
FATAL_CREDENTIALS = frozenset({"AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException"})
# ValidationException messages that refuse the model itself, so every record would fail the same way:
# "Invocation of model ID ... with on-demand throughput isn't supported" (a base id where an inference
# profile is needed), "The provided model doesn't support on-demand throughput", "The provided model
# identifier is invalid", "This action doesn't support the model that you provided".
_MODEL_REFUSED = re.compile(r"on-demand throughput|model identifier is invalid|support the model", re.IGNORECASE)


def converse_request(record: PromptRecord, options: BedrockOptions) -> dict[str, Any]:
    """The Converse request body for a record (also the ``modelInput`` of a batch record)."""
    return {
        "messages": [{"role": "user", "content": [{"text": record.user}]}],
        "system": [{"text": record.system}],
        "inferenceConfig": {"maxTokens": options.max_tokens, "temperature": options.temperature},
    }


# Converse stopReason values after which the text is not a whole reply (end_turn and stop_sequence are).
ABNORMAL_STOPS = frozenset(
    {
        "max_tokens",
        "model_context_window_exceeded",
        "guardrail_intervened",
        "content_filtered",
    }
)


def converse_completion(response: dict[str, Any], requests: int = 1) -> Completion:
    """The reply text, tokens and abnormal stop reason of a Converse response body (or batch modelOutput)."""
    content = response.get("output", {}).get("message", {}).get("content", [])
    text = "".join(block.get("text", "") for block in content if isinstance(block, dict))
    usage = response.get("usage", {})
    stop = response.get("stopReason")
    return Completion(
        text,
        int(usage.get("inputTokens", 0)),
        int(usage.get("outputTokens", 0)),
        requests,
        stop_reason=stop if stop in ABNORMAL_STOPS else None,
    )


class BedrockConverse:
    """Completes prompt records with ``bedrock-runtime`` Converse.

    Args:
        client: a ``bedrock-runtime`` client (see ``bedrock_clients.runtime_client``).
        model_id: a model id, inference-profile id or ARN.
        options: ``querygen.bedrock`` (max tokens, temperature, retries and their base delay).
        sleep: how to wait between retries (tests pass a no-op).
    """

    def __init__(
        self, client: Any, model_id: str, options: BedrockOptions, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.client = client
        self.model_id = model_id
        self.options = options
        self.sleep = sleep

    def complete(self, record: PromptRecord) -> Completion:
        from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError
        from botocore.exceptions import ConnectionError as BotoConnectionError

        request = converse_request(record, self.options)
        delays = backoff_delays(self.options.retry_base_seconds, self.options.max_retries)
        requests = 0
        while True:
            try:
                response = self.client.converse(modelId=self.model_id, **request)
            except NoCredentialsError:
                raise CredentialsError(
                    "Bedrock: no AWS credentials found", hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID"
                ) from None
            except (BotoConnectionError, HTTPClientError) as exc:
                # A read timeout or lost connection once botocore's own retries are spent: like throttling,
                # wait and try again, then report this record instead of ending the run with a traceback.
                requests += 1
                delay = next(delays, None)
                if delay is None:
                    raise CompletionFailed(f"{type(exc).__name__}: {exc}", requests) from None
                self.sleep(delay)
                continue
            except ClientError as exc:
                requests += 1 + exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
                code = exc.response.get("Error", {}).get("Code", "")
                message = exc.response.get("Error", {}).get("Message", "")
                if code in FATAL_CREDENTIALS:
                    raise CredentialsError(
                        f"Bedrock refused Converse on {self.model_id} ({code}: {message})",
                        hint="grant bedrock:InvokeModel on the model (and inference profile) and request model access",
                    ) from None
                if code == "ValidationException" and _MODEL_REFUSED.search(message):
                    raise ServiceError(
                        f"querygen.model_id: Bedrock cannot run '{self.model_id}' on demand ({message})",
                        hint="use an inference-profile id (e.g. 'us.' + the model id) or ARN, or a text model "
                        "the region offers on demand",
                    ) from None
                if code == "ResourceNotFoundException":
                    raise ServiceError(
                        f"querygen.model_id: Bedrock does not know '{self.model_id}' ({message})",
                        hint="check the model id or inference-profile ARN and the region",
                    ) from None
                if code in RETRYABLE:
                    delay = next(delays, None)
                    if delay is not None:
                        self.sleep(delay)
                        continue
                raise CompletionFailed(f"{code}: {message}", requests) from None
            requests += 1 + response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
            return converse_completion(response, requests)
