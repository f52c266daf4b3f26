"""The FastAPI app: SageMaker's ``/ping`` and ``/invocations``, plus ``/embed``, ``/healthz``, ``/info``, ``/metrics``.

``/invocations`` takes what ML Commons' default SageMaker embedding connector sends, a JSON
list of texts, and answers a list of vectors (dense) or of ``{token: weight}`` maps (sparse).
``/embed`` takes ``{"inputs": [...]}`` and answers ``{"embeddings": [...], "dim": N, ...}``.
Malformed bodies get 400, oversized ones 413, a saturated server 503, each with a JSON
``{"error": ...}`` that says what was expected.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from osft.common.logging import get_logger
from osft.trainer.serving.batcher import MicroBatcher
from osft.trainer.serving.encoder import Encoder
from osft.trainer.serving.metrics import ServerMetrics
from osft.trainer.serving.settings import ServeSettings

ROUTES = ("/ping", "/invocations", "/embed", "/healthz", "/info", "/metrics")
WARMUP_TEXTS = ["warm-up: the quick brown fox jumps over the lazy dog", "a second, shorter warm-up text"]


class RequestError(Exception):
    """A request the server refuses, with its HTTP status and a message for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_json(request: Request, max_bytes: int) -> Any:
    """The request's JSON body, refusing bodies over ``max_bytes`` before reading them whole."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise RequestError(413, f"request body is {declared} bytes; the limit is {max_bytes} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise RequestError(413, f"request body exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body:
        raise RequestError(400, "empty body; send JSON")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"body is not valid JSON ({exc})") from None


def texts_from(payload: Any, settings: ServeSettings, *, route: str) -> list[str]:
    """The list of texts in a request: ``["a", ...]`` or ``{"inputs": [...]}`` (or ``text_docs``)."""
    expected = (
        'a JSON list of strings, e.g. ["hello world"]'
        if route == "/invocations"
        else 'a JSON object {"inputs": ["hello world", ...]}'
    )
    texts = payload
    if isinstance(payload, dict):
        key = next((k for k in ("inputs", "text_docs") if k in payload), None)
        if key is None:
            raise RequestError(400, f"expected {expected}; the object has no 'inputs' field")
        texts = payload[key]
        if isinstance(texts, str):
            texts = [texts]
    elif route == "/embed":
        raise RequestError(400, f"expected {expected}")
    if not isinstance(texts, list) or not texts:
        raise RequestError(400, f"expected {expected} (a non-empty list)")
    if len(texts) > settings.max_inputs:
        raise RequestError(413, f"{len(texts)} texts in one request; the limit is {settings.max_inputs}")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise RequestError(400, f"inputs[{index}] is {type(text).__name__}; expected a string")
        if len(text) > settings.max_text_chars:
            raise RequestError(
                413, f"inputs[{index}] has {len(text)} characters; the limit is {settings.max_text_chars}"
            )
    return texts


def create_app(encoder: Encoder, settings: ServeSettings, metrics: ServerMetrics | None = None) -> FastAPI:
    """The app serving ``encoder``; warms the model up and starts the batcher when it starts."""
    metrics = metrics or ServerMetrics()
    log = get_logger(component="serve")
    batcher = MicroBatcher(
        encoder.encode,
        max_batch_size=settings.max_batch_size,
        max_wait_s=settings.max_wait_ms / 1000,
        on_batch=metrics.batch_size.observe,
    )
    state: dict[str, Any] = {"ready": False, "slots": None}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        clock = time.perf_counter()
        for _round in range(settings.warmup_rounds):
            await asyncio.to_thread(encoder.encode, WARMUP_TEXTS)
        state["slots"] = asyncio.Semaphore(settings.max_concurrency)
        await batcher.start()
        state["ready"] = True
        log.info("server_ready", **encoder.info(), warmup_seconds=round(time.perf_counter() - clock, 3))
        yield
        state["ready"] = False
        await batcher.stop()

    app = FastAPI(title="osft model server", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        route = request.url.path if request.url.path in ROUTES else "other"
        clock = time.perf_counter()
        response = await call_next(request)
        metrics.latency.labels(route=route).observe(time.perf_counter() - clock)
        metrics.requests.labels(route=route, status=str(response.status_code)).inc()
        return response

    @app.exception_handler(RequestError)
    async def refused(_: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    async def encode(texts: list[str]) -> list[Any]:
        if not state["ready"]:
            raise RequestError(503, "the model is still loading")
        try:
            await asyncio.wait_for(state["slots"].acquire(), settings.queue_timeout_s)
        except TimeoutError:
            raise RequestError(
                503, f"server busy: {settings.max_concurrency} requests in flight for {settings.queue_timeout_s:g}s"
            ) from None
        metrics.in_flight.inc()
        try:
            results = await batcher.submit(texts)
        finally:
            metrics.in_flight.dec()
            state["slots"].release()
        metrics.texts.inc(len(texts))
        return results

    @app.get("/ping")
    async def ping() -> Response:
        return Response(status_code=200 if state["ready"] else 503)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse(
            {"status": "ok" if state["ready"] else "loading", "model": encoder.name},
            status_code=200 if state["ready"] else 503,
        )

    @app.get("/info")
    async def info() -> dict[str, Any]:
        return {
            **encoder.info(),
            "max_batch_size": settings.max_batch_size,
            "max_inputs": settings.max_inputs,
            "max_concurrency": settings.max_concurrency,
        }

    @app.get("/metrics")
    async def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.post("/invocations")
    async def invocations(request: Request) -> JSONResponse:
        texts = texts_from(await read_json(request, settings.max_body_bytes), settings, route="/invocations")
        return JSONResponse(await encode(texts))

    @app.post("/embed")
    async def embed(request: Request) -> JSONResponse:
        texts = texts_from(await read_json(request, settings.max_body_bytes), settings, route="/embed")
        results = await encode(texts)
        return JSONResponse(
            {"model": encoder.name, "kind": encoder.kind, "dim": encoder.dimension, "embeddings": results}
        )

    return app
