"""Prometheus metrics of the platform service.

Each finished request is counted and timed by handler (a short route name such
as ``me``), method and status. ``GET /metrics`` serves them in the Prometheus
text format to callers allowed to read them (see :mod:`.app`). The metrics live
in their own registry, so several services in one process (tests) do not clash.
"""

from __future__ import annotations

import logging

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

access_log = logging.getLogger("jupyter_mlplat.service.access")

# Latency buckets in seconds: most calls are sub-10 ms, Hub round-trips add tens of ms.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServiceMetrics:
    """Request counter and latency histogram, the process's CPU and memory, and (given
    ``state_counts``) job runs, approval requests and deployments by state."""

    def __init__(self, state_counts=None) -> None:
        self.registry = CollectorRegistry()
        if state_counts is not None:
            self.registry.register(_StateCollector(state_counts))
        self.requests = Counter(
            "mlplat_service_requests",
            "Requests answered by the platform service.",
            ["handler", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlplat_service_request_duration_seconds",
            "Time to answer a request of the platform service.",
            ["handler", "status"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)

    def observe(self, handler: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(handler, method, str(status)).inc()
        self.latency.labels(handler, str(status)).observe(seconds)

    def log_request(self, handler) -> None:
        """Tornado ``log_function``: record metrics and write one access-log line.

        Only the path is logged, never the query string or headers (no tokens).
        """
        request = handler.request
        status = handler.get_status()
        seconds = request.request_time()
        self.observe(getattr(handler, "metric_name", "other"), request.method, status, seconds)
        level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
        if status < 400 and getattr(handler, "metric_name", "") in ("health", "metrics"):
            level = logging.DEBUG
        access_log.log(
            level,
            "%d %s %s (%s) %.1fms",
            status,
            request.method,
            request.path,
            request.remote_ip,
            seconds * 1000,
        )

    def render(self) -> tuple[bytes, str]:
        """The metrics in the Prometheus text format, with their content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _StateCollector:
    """Gauges read from the platform store at each scrape; a failed read drops them from
    that scrape (logged) rather than failing the whole endpoint."""

    def __init__(self, state_counts) -> None:
        self.state_counts = state_counts

    def describe(self):
        return []  # no read at registration time

    def collect(self):
        try:
            counts = self.state_counts()
        except Exception:  # noqa: BLE001 - logged; request metrics are still served
            logging.getLogger("jupyter_mlplat.service").exception("reading state counts failed")
            return
        families = (
            ("mlplat_job_runs", "Job and pipeline runs by kind and status.", ["kind", "status"],
             counts.job_runs),
            ("mlplat_approval_requests", "Approval requests by target and status.",
             ["target", "status"], counts.approval_requests),
            ("mlplat_deployments", "Deployments by target and status.", ["target", "status"],
             counts.deployments),
        )  # fmt: skip
        for name, documentation, labels, values in families:
            family = GaugeMetricFamily(name, documentation, labels=labels)
            for key, value in sorted(values.items()):
                family.add_metric(list(key), value)
            yield family
