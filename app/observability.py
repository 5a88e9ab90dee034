"""Logs as event streams (one JSON line per request on stdout) and metrics for Prometheus."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram

ACCESS_LOGGER = "app.access"


class JsonFormatter(logging.Formatter):
    """Every record is one JSON object; request fields come from the record's `extra`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:  # a 500's traceback: the one clue to what broke
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, sort_keys=True)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def instrument(app: Flask, release: str) -> None:
    """Count and time every request by route and status; log it as one JSON line."""
    registry = CollectorRegistry()
    requests_total = Counter(
        "http_requests_total", "HTTP requests", ["method", "route", "status"], registry=registry
    )
    latency = Histogram(
        "http_request_duration_seconds", "HTTP request latency", ["method", "route"], registry=registry
    )
    app.extensions["metrics_registry"] = registry
    access = logging.getLogger(ACCESS_LOGGER)

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _record(response: Response) -> Response:
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule else "<unmatched>"
        requests_total.labels(request.method, route, str(response.status_code)).inc()
        latency.labels(request.method, route).observe(elapsed)
        fields = {
            "method": request.method,
            "path": request.full_path.removesuffix("?"),  # with its query string, as access logs show it
            "status": response.status_code,
            "duration_ms": round(elapsed * 1000, 2),
            "release": release,
        }
        access.info("request", extra={"fields": fields})
        return response
