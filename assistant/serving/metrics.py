"""Prometheus metrics on a registry of the app's own (several apps in one process never collide)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

KNOWN_ROUTES = frozenset({"/v1/chat/completions", "/v1/models", "/health", "/metrics"})


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("dermassist_http_requests", "HTTP requests answered",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("dermassist_http_request_duration_seconds", "time to the full response",
                                 ["route"], registry=self.registry,
                                 buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
        self.errors = Counter("dermassist_errors", "error responses by kind", ["kind"], registry=self.registry)
        self.in_flight = Gauge("dermassist_requests_in_flight", "HTTP requests being handled",
                               registry=self.registry)
        self.queued = Gauge("dermassist_requests_queued", "completions waiting for a slot", registry=self.registry)
        self.completions = Counter("dermassist_completions", "successful completions by model and task",
                                   ["model", "task"], registry=self.registry)

    @staticmethod
    def route(path: str) -> str:
        if path.startswith("/v1/models/"):
            return "/v1/models/{id}"
        return path if path in KNOWN_ROUTES else "other"  # bounded label values

    def render(self) -> bytes:
        return generate_latest(self.registry)
