"""Any OpenAI-compatible chat-completions endpoint: OpenAI, vLLM, Ollama, llama.cpp server.

``POST {base_url}/chat/completions`` with the model name, a system and a user message. The API
key is read from the environment variable named by ``querygen.openai.api_key_env`` and sent as
a bearer token. 429, 5xx and lost connections are retried with backoff (honouring
``Retry-After``); 401/403/404 stop the run, since no record could succeed.
"""

from __future__ import annotations

import email.utils
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from osft.common.errors import CredentialsError, ServiceError
from osft.common.logging import get_logger
from osft.common.spec.querygen import OpenAIOptions
from osft.querygen.on_demand import MAX_TOKENS, Completion, CompletionFailed, backoff_delays
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
        # A base URL pasted with its endpoint works as the base it contains.
        self.base_url = options.base_url.rstrip("/").removesuffix("/chat/completions")
        self.client = httpx.Client(
            base_url=self.base_url + "/",
            headers=headers,
            timeout=options.timeout_s,
            limits=httpx.Limits(max_connections=options.max_concurrency),
        )
        self.path = "chat/completions"
        # Given a server's root (http://localhost:11434), /chat/completions is a 404 on vLLM and Ollama.
        self._try_v1 = not urlsplit(self.base_url).path.endswith("/v1")
        self.json_mode = options.json_mode

    def close(self) -> None:
        self.client.close()

    def request_body(self, record: PromptRecord) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "system", "content": record.system}, {"role": "user", "content": record.user}],
            "max_tokens": self.options.max_tokens,
            "temperature": self.options.temperature,
        }
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        return body

    def complete(self, record: PromptRecord) -> Completion:
        body = self.request_body(record)
        delays = backoff_delays(self.options.retry_base_seconds, self.options.max_retries)
        requests = 0
        while True:
            requests += 1
            try:
                response, calls = self._post(body)
            except httpx.TransportError as exc:
                reason, retry_after = f"{type(exc).__name__}: {exc}", None
            else:
                requests += calls - 1
                url = f"{self.base_url}/{self.path}"
                if response.status_code == 200:
                    return self._completion(response, requests)
                reason = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code in (400, 422) and self._refuses_json_mode(body, response):
                    continue
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
            if (wait := retry_after_seconds(retry_after)) is not None:
                delay = max(delay, min(60.0, wait))
            self.sleep(delay)

    def _post(self, body: dict[str, Any]) -> tuple[httpx.Response, int]:
        """POST to the chat endpoint; (response, HTTP calls made). A 404 from a base URL without /v1
        is tried once more under /v1, which then serves every later call."""
        path = self.path
        response = self.client.post(path, json=body)
        if response.status_code != 404 or not self._try_v1 or path != "chat/completions":
            return response, 1
        retried = self.client.post("v1/chat/completions", json=body)
        if retried.status_code == 404:
            return response, 2
        if self._try_v1:
            self._try_v1, self.path = False, "v1/chat/completions"
            get_logger().warning("openai_base_url_without_v1", base_url=self.base_url, using=f"{self.base_url}/v1")
        return retried, 2

    def _refuses_json_mode(self, body: dict[str, Any], response: httpx.Response) -> bool:
        """True (and json_mode is off from now on) when the server rejects ``response_format``;
        the prompt asks for JSON anyway, and the reply parser does not need it."""
        if "response_format" not in body or "response_format" not in response.text:
            return False
        body.pop("response_format")
        if self.json_mode:
            self.json_mode = False
            get_logger().warning(
                "openai_json_mode_unsupported", reason=response.text[:200], hint="set querygen.openai.json_mode false"
            )
        return True

    def _completion(self, response: httpx.Response, requests: int) -> Completion:
        try:
            data = response.json()
            choice = data["choices"][0]
            message = choice["message"]
            text = _content_text(message.get("content"))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise CompletionFailed(f"not a chat-completions response: {response.text[:200]}", requests) from None
        if not text.strip():
            # A reasoning parser (vLLM, llama.cpp, Ollama) that found no end of thinking puts the whole
            # reply, JSON included, in reasoning_content (or reasoning) and leaves content empty.
            reasoning = message.get("reasoning_content") or message.get("reasoning")
            text = reasoning if isinstance(reasoning, str) else text
        usage = data.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        return Completion(
            text,
            _count(usage.get("prompt_tokens")),
            _count(usage.get("completion_tokens")),
            requests,
            stop_reason=_stop_reason(choice.get("finish_reason")),
        )


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


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A ``Retry-After`` header in seconds: a number of seconds, or an HTTP date (RFC 9110); else None."""
    if not value:
        return None
    if value.replace(".", "", 1).isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _stop_reason(finish_reason: object) -> str | None:
    """``max_tokens`` for a reply cut at the limit ("length"), the reason for a filtered one, else None."""
    if finish_reason == "length":
        return MAX_TOKENS
    return "content_filter" if finish_reason == "content_filter" else None


def _count(value: object) -> int:
    """A token count as servers send it; null or a missing count is 0."""
    return int(value) if isinstance(value, int | float) else 0
