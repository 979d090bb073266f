"""MetricBatcher against a real MLflow (in-process SQLite and a server): nothing is lost."""

from __future__ import annotations

import time

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from jupyter_mlplat.errors import ServiceUnavailable
from jupyter_mlplat.tracking import Tracker
from jupyter_mlplat.tracking.batcher import MetricBatcher
from tests.servers import free_port


def _runs(client: MlflowClient, name: str, count: int) -> list[str]:
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
    return [client.create_run(experiment_id).info.run_id for _ in range(count)]


def _steps(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def test_one_failing_run_loses_nobody_s_metrics(tracking_uri, configure):
    configure(tracking_uri=tracking_uri)
    client = MlflowClient(tracking_uri)
    failing, second, third = _runs(client, "batcher-isolation", 3)

    def send(run_id, metrics):
        client.log_batch(run_id, metrics=metrics, synchronous=True)

    batcher = MetricBatcher(send, batch_size=1000, flush_seconds=3600)
    # The failing run is queued first, so the others come after it in the flush.
    batcher.add(failing, {"loss": 1.0})
    for step in range(3):
        batcher.add(second, {"loss": 0.5, "acc": 0.1}, step=step)
    batcher.add(third, {"loss": 0.25})
    batcher.batch_size = 4  # the second run's 6 metrics now go out in two batches
    client.delete_run(failing)  # MLflow refuses to log to a deleted run

    with pytest.raises(MlflowException):
        batcher.flush()
    # The other runs were sent in full; the failing run's metric is still waiting.
    assert _steps(client, second, "loss") == [0, 1, 2]
    assert _steps(client, second, "acc") == [0, 1, 2]
    assert _steps(client, third, "loss") == [0]
    assert batcher.pending() == batcher.pending(failing) == 1

    client.restore_run(failing)
    assert batcher.flush() == 1
    assert _steps(client, failing, "loss") == [0]
    assert batcher.pending() == 0
    # Nothing was sent twice.
    assert _steps(client, second, "loss") == [0, 1, 2]


def test_tracking_server_down_keeps_every_run_s_metrics(configure):
    """With the server down, the first run's failure stops the flush (no second wait of
    the retry budget) and every run's metrics stay queued for the next flush."""
    uri = f"http://127.0.0.1:{free_port()}"
    settings = configure(tracking_uri=uri, tracking_retry_seconds=1.0)
    tracker = Tracker(settings)
    tracker.batcher.add("run-a", {"loss": 1.0, "acc": 0.5})
    tracker.batcher.add("run-b", {"loss": 2.0})
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match=uri):
        tracker.flush()
    elapsed = time.monotonic() - started
    assert (tracker.batcher.pending("run-a"), tracker.batcher.pending("run-b")) == (2, 1)
    assert elapsed < 10  # one budget (1 s), not one per queued run
    with pytest.raises(ServiceUnavailable):
        tracker.flush()
    assert tracker.batcher.pending() == 3
