"""Buffering metrics so a loop of log calls becomes a few ``log_batch`` requests."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

from ..errors import ServiceUnavailable

# MLflow refuses a batch with more metrics than this.
MLFLOW_MAX_METRICS_PER_BATCH = 1000


class MetricBatcher:
    """Collects metrics per run and sends them with ``MlflowClient.log_batch``.

    A batch goes out when ``batch_size`` metrics are waiting, when the oldest
    waiting metric is older than ``flush_seconds`` (checked on the next call),
    and whenever :meth:`flush` is called (end of a cell, end of a run, exit).
    Steps count up per run and key when the caller gives none.
    """

    def __init__(self, send, batch_size: int = 1000, flush_seconds: float = 2.0):
        self._send = send  # callable(run_id, list[Metric])
        self.batch_size = max(1, min(batch_size, MLFLOW_MAX_METRICS_PER_BATCH))
        self.flush_seconds = flush_seconds
        self._pending: dict[str, list] = defaultdict(list)
        self._oldest: float | None = None
        self._count = 0  # metrics waiting, over all runs
        self._steps: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._metric_cls = None

    def _metric(self, key, value, timestamp, step):
        if self._metric_cls is None:
            from mlflow.entities import Metric

            self._metric_cls = Metric
        return self._metric_cls(key, value, timestamp, step)

    def add(self, run_id: str, metrics: dict[str, float], step: int | None = None) -> int:
        """Queue ``metrics`` for ``run_id``; returns how many are waiting afterwards."""
        timestamp = int(time.time() * 1000)
        now = time.monotonic()
        steps = self._steps
        with self._lock:
            queue = self._pending[run_id]
            for key, value in metrics.items():
                this_step = steps.get((run_id, key), -1) + 1 if step is None else step
                steps[(run_id, key)] = this_step
                queue.append(self._metric(key, value, timestamp, this_step))
            self._count += len(metrics)
            if self._oldest is None:
                self._oldest = now
            waiting = self._count
            due = waiting >= self.batch_size or now - self._oldest >= self.flush_seconds
        if due:
            self.flush()
            return 0
        return waiting

    def pending(self, run_id: str | None = None) -> int:
        with self._lock:
            if run_id is not None:
                return len(self._pending.get(run_id, ()))
            return self._count

    def flush(self, run_id: str | None = None) -> int:
        """Send what is waiting (for one run or all); returns the number sent.

        Nothing is lost when a send fails: the unsent metrics of that run go back to
        the front of its queue, and the other runs are still sent (one run's problem,
        say a deleted run, must not hold up or drop the others'). When the tracking
        backend itself is unavailable (:class:`ServiceUnavailable`) or the user
        interrupts, the remaining runs are put back unsent instead of each waiting out
        the retry budget. The first error is raised after the others were tried; the
        next flush sends what is left.
        """
        with self._lock:
            run_ids = [run_id] if run_id is not None else list(self._pending)
            taken = {rid: self._pending.pop(rid) for rid in run_ids if rid in self._pending}
            self._count -= sum(map(len, taken.values()))
            if not self._count:
                self._oldest = None
        sent = 0
        error: BaseException | None = None
        queue = list(taken.items())
        for index, (rid, metrics) in enumerate(queue):
            start = 0
            try:
                while start < len(metrics):
                    chunk = metrics[start : start + self.batch_size]
                    self._send(rid, chunk)
                    start += len(chunk)
                    sent += len(chunk)
            except BaseException as exc:
                self._put_back(rid, metrics[start:])
                error = error or exc
                if isinstance(exc, ServiceUnavailable) or not isinstance(exc, Exception):
                    for later, rest in queue[index + 1 :]:
                        self._put_back(later, rest)
                    break
        if error is not None:
            raise error
        return sent

    def _put_back(self, run_id: str, metrics: list) -> None:
        """Return unsent metrics to the front of their run's queue (before newer ones)."""
        if not metrics:
            return
        with self._lock:
            self._pending[run_id][:0] = metrics
            self._count += len(metrics)
            self._oldest = self._oldest or time.monotonic()
