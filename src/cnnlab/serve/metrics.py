"""What `GET /metrics` tells Prometheus: requests by path and status, their latency, the size
of every batch the model ran, and the requests refused, by reason.

Each application has its own registry (not prometheus-client's global one), so two services
in one process, or the tests' many apps, never count into each other.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, max_batch: int):
        self.registry = registry = CollectorRegistry()
        self.requests = Counter("cnnlab_requests", "HTTP requests answered",
                                ["path", "status"], registry=registry)
        self.latency = Histogram("cnnlab_request_seconds", "time from request to response",
                                 ["path"], buckets=LATENCY_BUCKETS, registry=registry)
        sizes = sorted({1, 2, 4, 8, 16, 32, 64, 128, max_batch})
        self.batch_size = Histogram("cnnlab_batch_size", "images per forward pass",
                                    buckets=[s for s in sizes if s <= max_batch],
                                    registry=registry)
        self.rejects = Counter("cnnlab_rejects", "requests refused, by reason",
                               ["reason"], registry=registry)
        self.queued = Gauge("cnnlab_queue_images", "images waiting for the model",
                            registry=registry)

    def observe(self, path: str, status: int, seconds: float) -> None:
        self.requests.labels(path, str(status)).inc()
        self.latency.labels(path).observe(seconds)

    def text(self) -> bytes:
        return generate_latest(self.registry)
