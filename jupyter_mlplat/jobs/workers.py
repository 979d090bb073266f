"""The bounded pool that runs queued jobs, with heartbeats, cancels and restarts.

``size`` threads each claim the oldest queued run (a conditional UPDATE: a run is claimed by
one worker of one replica only) and run it with the :class:`~.runner.JobRunner`. A heartbeat
thread refreshes the running runs' ``heartbeat_at`` and picks up cancels asked through the
store (by this replica or another). At start, runs left running by a previous incarnation of
this service (found by the job processes it recorded, which are killed) or by a replica whose
heartbeats stopped become ``interrupted``; at a clean stop, the runs under way are stopped and
marked ``interrupted`` too. Queued runs and schedules stay as they are.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from ..errors import MlplatError
from ..store.db import Store
from ..store.models import JobRun
from . import runs
from .runner import JobRunner, RunSpec

log = logging.getLogger(__name__)


class JobWorkers:
    def __init__(
        self, store: Store, runner: JobRunner, spec_for: Callable[[JobRun], RunSpec], *,
        size: int = 2, tick: float = 5.0, heartbeat: float = 10.0,
    ) -> None:  # fmt: skip
        self.store = store
        self.runner = runner
        self.spec_for = spec_for
        self.size = max(1, int(size))
        self.tick = tick
        self.heartbeat = heartbeat
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._running: set[int] = set()
        self._cancel: set[int] = set()
        self._threads: list[threading.Thread] = []
        self.started = False

    def start(self) -> None:
        """Interrupt what a stopped service left, then start the workers (idempotent)."""
        with self._lock:
            if self.started:
                return
            self.started = True
        left = self.runner.reap_stale()
        interrupted = runs.interrupt_ids(self.store, left) if left else 0
        interrupted += runs.interrupt_stale(self.store, 3 * self.heartbeat)
        if interrupted:
            log.warning("%d job run(s) left running by a stopped service: interrupted", interrupted)
        for index in range(self.size):
            thread = threading.Thread(target=self._work, name=f"mlplat-job-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        beat = threading.Thread(target=self._beat, name="mlplat-job-heartbeat", daemon=True)
        beat.start()
        self._threads.append(beat)

    def wake(self) -> None:
        """A run was queued: a free worker takes it now rather than at its next tick."""
        self._wake.set()

    def running(self) -> set[int]:
        with self._lock:
            return set(self._running)

    def cancel(self, run_id: int) -> None:
        with self._lock:
            if run_id in self._running:
                self._cancel.add(run_id)

    def close(self, timeout: float = 30.0) -> None:
        """Stop: the runs under way are stopped and marked interrupted."""
        self._stopping.set()
        self._wake.set()
        with self._lock:
            self._cancel |= self._running
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.runner.close()

    # --- threads ---------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                run = runs.claim_next(self.store, self.worker_id)
            except MlplatError as exc:  # the database is away: try again at the next tick
                log.warning("could not look for queued jobs: %s", exc)
                run = None
            if run is None:
                self._wake.wait(self.tick)
                self._wake.clear()
                continue
            self._execute(run)

    def _execute(self, run: JobRun) -> None:
        with self._lock:
            self._running.add(run.id)
        try:
            try:
                spec = self.spec_for(run)
                outcome = self.runner.execute(
                    spec,
                    cancelled=lambda: run.id in self._cancel,
                    on_progress=lambda done, total, mlflow_run, tasks: runs.record_progress(
                        self.store, run.id, done, total, mlflow_run, tasks
                    ),
                )
            except MlplatError as exc:
                runs.finish(self.store, run.id, self.worker_id, runs.FAILED, str(exc))
                return
            except Exception as exc:  # a bug: the run still ends, as failed, and is logged
                log.exception("job run %s could not be run", run.id)
                runs.finish(self.store, run.id, self.worker_id, runs.FAILED, f"internal: {exc}")
                return
            status, reason = outcome.status, outcome.reason
            if status == runs.CANCELLED and self._stopping.is_set():
                status = runs.INTERRUPTED
                reason = "the platform service stopped while it ran; run it again if needed"
            elif status == runs.CANCELLED:
                reason = "cancelled while it ran"
            runs.finish(
                self.store, run.id, self.worker_id, status, reason,
                failed_cell=outcome.failed_cell, mlflow_run_id=outcome.mlflow_run_id,
                cells=outcome.cells, tasks=outcome.tasks,
            )  # fmt: skip
        finally:
            with self._lock:
                self._running.discard(run.id)
                self._cancel.discard(run.id)

    def _beat(self) -> None:
        while not self._stopping.wait(self.heartbeat):
            try:
                self.runner.prune_idle()
            except Exception:  # noqa: BLE001 - a starter that will not stop is logged, not fatal
                log.exception("could not stop an idle job starter")
            try:
                asked = runs.heartbeat(self.store, self.worker_id, sorted(self.running()))
            except MlplatError as exc:
                log.warning("job heartbeat failed: %s", exc)
                continue
            with self._lock:
                self._cancel |= asked & self._running
