"""MetricBatcher against a real MLflow (in-process SQLite and a server): nothing is lost."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from jupyter_mlplat.tracking.batcher import MetricBatcher


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

    batcher = MetricBatcher(send, batch_size=4, flush_seconds=3600)
    # The failing run is queued first, so the others come after it in the flush.
    batcher.add(failing, {"loss": 1.0})
    for step in range(3):
        batcher.add(second, {"loss": 0.5, "acc": 0.1}, step=step)  # 6 metrics: two batches
    batcher.add(third, {"loss": 0.25})
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


def test_flush_of_one_run_keeps_the_others_queued(sqlite_tracking_uri, configure):
    configure(tracking_uri=sqlite_tracking_uri)
    client = MlflowClient(sqlite_tracking_uri)
    first, other = _runs(client, "batcher-one-run", 2)
    batcher = MetricBatcher(
        lambda run_id, metrics: client.log_batch(run_id, metrics=metrics, synchronous=True),
        flush_seconds=3600,
    )
    batcher.add(first, {"loss": 1.0})
    batcher.add(other, {"loss": 2.0})
    client.delete_run(first)
    with pytest.raises(MlflowException):
        batcher.flush(first)
    assert (batcher.pending(first), batcher.pending(other)) == (1, 1)
    client.restore_run(first)
    assert batcher.flush() == 2
    assert _steps(client, first, "loss") == _steps(client, other, "loss") == [0]
