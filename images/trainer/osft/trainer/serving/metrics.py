"""Prometheus metrics of the server: requests, latency, batch sizes, requests in flight."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass
class ServerMetrics:
    """One registry per app, so several servers (or tests) in a process do not share counts."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "osft_serve_requests",
            "HTTP requests by route and status code.",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "osft_serve_request_seconds",
            "Request latency in seconds, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "osft_serve_batch_texts", "Texts encoded per model call.", buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.texts = Counter("osft_serve_texts", "Texts encoded.", registry=self.registry)
        self.in_flight = Gauge("osft_serve_in_flight", "Encoding requests in flight.", registry=self.registry)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
