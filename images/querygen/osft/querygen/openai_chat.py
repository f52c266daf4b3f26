"""Any OpenAI-compatible chat-completions endpoint: OpenAI, vLLM, Ollama, llama.cpp server.

``POST {base_url}/chat/completions`` with the model name, a system and a user message. The API
key is read from the environment variable named by ``querygen.openai.api_key_env`` and sent as
a bearer token. 429, 5xx and lost connections are retried with backoff (honouring
``Retry-After``); 401/403/404 stop the run, since no record could succeed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import httpx

from osft.common.errors import CredentialsError, ServiceError
from osft.common.spec.querygen import OpenAIOptions
from osft.querygen.on_demand import Completion, CompletionFailed, backoff_delays
from osft.querygen.prompts import PromptRecord


def api_key(options: OpenAIOptions) -> str | None:
    """The key from the named environment variable; None when the spec names none."""
    if options.api_key_env is None:
        return None
    value = os.environ.get(options.api_key_env)
    if not value:
        raise CredentialsError(
            f"querygen.openai.api_key_env: environment variable {options.api_key_env} is not set",
            hint=f"export {options.api_key_env}=..., or set api_key_env to null for a server without keys",
        )
    return value


class OpenAIChat:
    """Completes prompt records through ``/chat/completions``.

    Args:
        model: the model name the endpoint serves (``querygen.model_id``).
        options: ``querygen.openai`` (base URL, key variable, timeout, retries, sampling).
        sleep: how to wait between retries (tests pass a no-op).
    """

    def __init__(self, model: str, options: OpenAIOptions, sleep: Callable[[float], None] = time.sleep) -> None:
        self.model = model
        self.options = options
        self.sleep = sleep
        headers = {"Content-Type": "application/json"}
        if key := api_key(options):
            headers["Authorization"] = f"Bearer {key}"
        self.client = httpx.Client(
            base_url=options.base_url.rstrip("/") + "/",
            headers=headers,
            timeout=options.timeout_s,
            limits=httpx.Limits(max_connections=options.max_concurrency),
        )

    def close(self) -> None:
        self.client.close()

    def request_body(self, record: PromptRecord) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "system", "content": record.system}, {"role": "user", "content": record.user}],
            "max_tokens": self.options.max_tokens,
            "temperature": self.options.temperature,
        }
        if self.options.json_mode:
            body["response_format"] = {"type": "json_object"}
        return body

    def complete(self, record: PromptRecord) -> Completion:
        body = self.request_body(record)
        delays = backoff_delays(self.options.retry_base_seconds, self.options.max_retries)
        requests = 0
        url = f"{self.options.base_url.rstrip('/')}/chat/completions"
        while True:
            requests += 1
            try:
                response = self.client.post("chat/completions", json=body)
            except httpx.TransportError as exc:
                reason, retry_after = f"{type(exc).__name__}: {exc}", None
            else:
                if response.status_code == 200:
                    return self._completion(response, requests)
                reason = f"HTTP {response.status_code}: {response.text[:200]}"
                retry_after = response.headers.get("Retry-After")
                if response.status_code in (401, 403):
                    env = self.options.api_key_env
                    raise CredentialsError(
                        f"{url} refused the request ({reason})",
                        hint=f"check the key in {env}"
                        if env
                        else "the server wants a key: set querygen.openai.api_key_env to the variable holding it",
                    )
                if response.status_code == 404:
                    raise ServiceError(
                        f"{url}: not found ({reason})",
                        hint="check querygen.openai.base_url (usually ends in /v1) and querygen.model_id",
                    )
                if response.status_code != 429 and response.status_code < 500:
                    raise CompletionFailed(reason, requests)
            delay = next(delays, None)
            if delay is None:
                raise CompletionFailed(reason, requests)
            if retry_after and retry_after.replace(".", "", 1).isdigit():
                delay = max(delay, min(60.0, float(retry_after)))
            self.sleep(delay)

    def _completion(self, response: httpx.Response, requests: int) -> Completion:
        try:
            data = response.json()
            text = _content_text(data["choices"][0]["message"]["content"])
        except (ValueError, KeyError, IndexError, TypeError):
            raise CompletionFailed(f"not a chat-completions response: {response.text[:200]}", requests) from None
        usage = data.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        return Completion(text, _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens")), requests)


def _content_text(content: object) -> str:
    """The message text: a string, null, or a list of content parts (some servers send parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type", "text") == "text" and isinstance(part.get("text"), str)
        )
    raise TypeError(f"message content is a {type(content).__name__}")


def _count(value: object) -> int:
    """A token count as servers send it; null or a missing count is 0."""
    return int(value) if isinstance(value, int | float) else 0
