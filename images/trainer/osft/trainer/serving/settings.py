"""Server settings: where the model is, how requests are batched and bounded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DEFAULT_MODEL_DIR = "/opt/ml/model"
Precision = Literal["auto", "fp32", "int8"]


@dataclass(frozen=True)
class ServeSettings:
    """How the server loads the model and bounds its work.

    ``max_batch_size`` is the most texts one model call encodes (concurrent requests are
    merged up to it); ``max_wait_ms`` is how long the first request of a batch waits for
    others (higher: larger batches and throughput, lower: latency). ``max_concurrency``
    bounds requests in flight; beyond it a request waits ``queue_timeout_s`` and then gets
    503. ``max_inputs``, ``max_text_chars`` and ``max_body_bytes`` bound one request (413).
    ``precision`` 'int8' serves an ONNX int8 export (``onnx_file``, or the first
    ``onnx/*qint8*.onnx`` in the model folder); 'auto' picks int8 when ``onnx_file`` is set.
    """

    model: str = DEFAULT_MODEL_DIR
    host: str = "0.0.0.0"  # a container listens on all interfaces
    port: int = 8080
    precision: Precision = "auto"
    onnx_file: str | None = None
    device: str | None = None
    max_batch_size: int = 64
    max_wait_ms: float = 5.0
    max_concurrency: int = 64
    queue_timeout_s: float = 30.0
    max_inputs: int = 256
    max_text_chars: int = 20_000
    max_body_bytes: int = 5 * 1024 * 1024
    warmup_rounds: int = 2
