"""A small OpenAI-compatible chat-completions server on 127.0.0.1 for the ``openai`` provider tests.

It implements ``POST /v1/chat/completions`` as documented by OpenAI (and served by vLLM, Ollama
and llama.cpp): a ``model`` and ``messages`` in, ``choices[0].message.content`` and ``usage``
out. It checks the bearer token, and can answer a chosen share of calls with 429 or 500 first.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fake_bedrock import doc_id_of, reply_for


class ChatServer:
    """Start with ``start()``; ``url`` is the base URL to put in ``querygen.openai.base_url``."""

    def __init__(
        self,
        api_key: str = "sk-test",
        fail_first: int = 0,
        delay_s: float = 0.0,
        also_answer: str = "",
        message_for: Callable[[str, str], tuple[dict[str, Any], str]] | None = None,
        reject_response_format: bool = False,
    ) -> None:
        """``also_answer``: a query added to every reply, as a small model repeats a prompt's example.
        ``message_for(doc_id, reply)``: the ``message`` and ``finish_reason`` to answer with instead of
        the reply in a code fence (a reasoning model's fields, a reply cut at ``max_tokens``).
        ``reject_response_format``: answer 400 to a request with ``response_format``, as servers without
        JSON mode do."""
        self.reject_response_format = reject_response_format
        self.rejected = 0
        self.message_for = message_for
        self.api_key = api_key
        self.also_answer = also_answer
        self.fail_first = fail_first
        self.delay_s = delay_s
        self.lock = threading.Lock()
        self.requests = 0
        self.served: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def start(self) -> ChatServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
                    return
                if self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    self._send(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_api_key"}})
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests += 1
                    number = server.requests
                if number <= server.fail_first:
                    status = 429 if number % 2 else 500
                    self._send(status, {"error": {"message": "Rate limit reached", "type": "rate_limit_error"}})
                    return
                if server.reject_response_format and "response_format" in body:
                    with server.lock:
                        server.rejected += 1
                    message = "Unsupported parameter: 'response_format' is not supported with this model."
                    self._send(400, {"error": {"message": message, "type": "invalid_request_error"}})
                    return
                if not (body.get("model") and isinstance(body.get("messages"), list)):
                    self._send(400, {"error": {"message": "model and messages are required"}})
                    return
                time.sleep(server.delay_s)
                doc_id = doc_id_of(body["messages"][-1]["content"])
                with server.lock:
                    server.served[doc_id] += 1
                    server.bodies.append(body)
                reply = reply_for(doc_id)
                if server.also_answer:
                    queries = json.loads(reply)["queries"] + [{"type": "factoid", "query": server.also_answer}]
                    reply = json.dumps({"queries": queries})
                message: dict[str, Any] = {"role": "assistant", "content": "```json\n" + reply + "\n```"}
                finish_reason = "stop"
                if server.message_for is not None:
                    message, finish_reason = server.message_for(doc_id, reply)
                self._send(
                    200,
                    {
                        "id": f"chatcmpl-{number}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body["model"],
                        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
                        "usage": {"prompt_tokens": 380, "completion_tokens": 55, "total_tokens": 435},
                    },
                )

        return Handler
