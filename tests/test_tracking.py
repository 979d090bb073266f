"""Tracking against a real MLflow: an in-process SQLite store and a real server process."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest

import jupyter_mlplat as mlplat
from jupyter_mlplat.errors import PermissionDenied, ServiceUnavailable, UsageError
from jupyter_mlplat.tracking.capture import packages_digest
from tests.servers import free_port


def _client(uri):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def test_experiments_are_team_scoped(configure, tracking_uri):
    configure(tracking_uri=tracking_uri)
    info = mlplat.set_experiment("scoping")
    assert info.name == "churn/scoping"
    again = mlplat.set_experiment("fraud/scoping")
    assert again.name == "fraud/scoping" and again.experiment_id != info.experiment_id
    experiment = _client(tracking_uri).get_experiment(again.experiment_id)
    assert experiment.tags["mlplat.team"] == "fraud"
    with pytest.raises(PermissionDenied, match="not a member of team 'payments'"):
        mlplat.set_experiment("payments/scoping")
    with pytest.raises(PermissionDenied):
        mlplat.set_experiment("scoping", team="payments")
    with pytest.raises(UsageError, match="not a valid name"):
        mlplat.set_experiment("bad*name")


def test_run_records_params_provenance_and_identity(configure, tracking_uri, tmp_path):
    notebook = tmp_path / "train.ipynb"
    notebook.write_text(json.dumps({"cells": [], "nbformat": 4, "nbformat_minor": 5}))
    configure(tracking_uri=tracking_uri, notebook_path=str(notebook))
    mlplat.set_experiment("provenance")
    with mlplat.run("first", params={"lr": 0.1, "optimizer": "adam"}, autolog=False) as info:
        mlplat.log(loss=0.5)
    run = _client(tracking_uri).get_run(info.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "first"
    assert run.data.params == {"lr": "0.1", "optimizer": "adam"}
    tags = run.data.tags
    assert tags["mlplat.user"] == "alice" and tags["mlplat.team"] == "churn"
    assert tags["mlplat.notebook.path"] == str(notebook)
    assert tags["mlplat.notebook.sha256"] == hashlib.sha256(notebook.read_bytes()).hexdigest()
    assert tags["mlplat.python_version"] == sys.version.split()[0]
    assert tags["mlplat.packages.sha256"] == packages_digest()[0]
    assert run.data.metrics == {"loss": 0.5}


def test_git_commit_recorded_inside_a_repository(configure, sqlite_tracking_uri, tmp_path):
    repo = tmp_path / "project"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    notebook = repo / "nb.ipynb"
    notebook.write_text("{}")
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=repo, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True)
    configure(tracking_uri=sqlite_tracking_uri, notebook_path=str(notebook))
    with mlplat.run(autolog=False) as info:
        pass
    tags = _client(sqlite_tracking_uri).get_run(info.run_id).data.tags
    assert tags["mlflow.source.git.commit"] == head.stdout.strip()
    assert tags["mlplat.git.dirty"] == "false"
    assert tags["mlplat.code_version"] == head.stdout.strip()  # the code version is the commit


def test_code_version_outside_git_is_the_saved_notebook_s_hash(configure, tracking_uri, tmp_path):
    notebook = tmp_path / "outside" / "train.ipynb"
    notebook.parent.mkdir()
    notebook.write_text(json.dumps({"cells": [], "nbformat": 4, "nbformat_minor": 5}))
    configure(tracking_uri=tracking_uri, notebook_path=str(notebook))
    with mlplat.run(autolog=False) as info:
        pass
    tags = _client(tracking_uri).get_run(info.run_id).data.tags
    assert "mlflow.source.git.commit" not in tags
    digest = hashlib.sha256(notebook.read_bytes()).hexdigest()
    assert tags["mlplat.code_version"] == f"notebook-sha256:{digest}"


SCRIPT = """
import sys
from jupyter_mlplat.settings import MlplatSettings
from jupyter_mlplat.tracking import Tracker

settings = MlplatSettings(home=sys.argv[2], user="alice", teams=["churn"], teams_source="t",
                          tracking_uri=sys.argv[1], notebook_path="")
tracker = Tracker(settings)
with tracker.run("script", autolog=False) as info:
    pass
print(info.run_id)
"""


def test_code_version_of_a_script_outside_git_is_its_hash(sqlite_tracking_uri, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("JPY_SESSION_NAME",)}
    result = subprocess.run(
        [sys.executable, str(script), sqlite_tracking_uri, str(tmp_path / "home")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.strip().splitlines()[-1]
    tags = _client(sqlite_tracking_uri).get_run(run_id).data.tags
    assert "mlflow.source.git.commit" not in tags and "mlplat.notebook.sha256" not in tags
    digest = hashlib.sha256(script.read_bytes()).hexdigest()
    assert tags["mlplat.code_version"] == f"source-sha256:{digest}"


def test_a_failing_block_ends_the_run_failed_and_reraises(configure, tracking_uri):
    configure(tracking_uri=tracking_uri)
    with pytest.raises(ZeroDivisionError), mlplat.run("boom", autolog=False):
        mlplat.log(before=1)
        1 / 0  # noqa: B018
    run_info = mlplat.last_run()
    run = _client(tracking_uri).get_run(run_info.run_id)
    assert run.info.status == "FAILED"
    assert run.data.metrics == {"before": 1.0}  # buffered metrics were not lost
    assert mlplat.active_run() is None


def test_metrics_in_a_loop_are_batched(configure, tracking_uri):
    configure(tracking_uri=tracking_uri, metric_flush_seconds=3600)
    with mlplat.run("loop", autolog=False) as info:
        tracker = mlplat.fluent._tracker
        calls = []
        send = tracker.batcher._send
        tracker.batcher._send = lambda run_id, metrics: (
            calls.append(len(metrics)),
            send(run_id, metrics),
        )
        for i in range(1250):
            mlplat.log(loss=1.0 / (i + 1), acc=i / 1250)
    # 2,500 metrics in 1,000-metric batches: three requests, not 2,500.
    assert calls == [1000, 1000, 500]
    history = _client(tracking_uri).get_metric_history(info.run_id, "loss")
    assert [m.step for m in history] == list(range(1250))
    assert history[9].value == pytest.approx(0.1)


def test_explicit_step_and_log_to_last_run(configure, sqlite_tracking_uri):
    configure(tracking_uri=sqlite_tracking_uri)
    with mlplat.run(autolog=False) as info:
        pass
    result = mlplat.log({"val/auc": 0.91}, step=7)
    assert result.run_id == info.run_id
    mlplat.flush()
    history = _client(sqlite_tracking_uri).get_metric_history(info.run_id, "val/auc")
    assert [(m.step, m.value) for m in history] == [(7, 0.91)]


def test_logging_without_any_run_is_a_clear_error(configure, sqlite_tracking_uri):
    configure(tracking_uri=sqlite_tracking_uri)
    with pytest.raises(UsageError, match="no run to log to"):
        mlplat.log(loss=1)


def test_non_numeric_metric_is_refused_before_sending(configure, sqlite_tracking_uri):
    configure(tracking_uri=sqlite_tracking_uri)
    with mlplat.run(autolog=False), pytest.raises(UsageError, match="'acc' must be a number"):
        mlplat.log(acc="high")


def test_unreachable_server_fails_within_the_budget(configure):
    uri = f"http://127.0.0.1:{free_port()}"
    configure(tracking_uri=uri, tracking_retry_seconds=1.5)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as caught:
        mlplat.set_experiment("nowhere")
    elapsed = time.monotonic() - started
    assert uri in str(caught.value) and "within 1.5 s" in str(caught.value)
    # A correctness bound (MLflow alone would retry for many minutes), not a speed test.
    assert elapsed < 30


def test_status_reports_identity_and_backends(configure, mlflow_server):
    configure(tracking_uri=mlflow_server.uri)
    status = mlplat.status()
    assert status.user == "alice" and status.teams == ["churn", "fraud"]
    assert status.tracking_reachable is True
    assert not status.feature_repo_ready
    assert any("No Feast repo" in p for p in status.problems)
    text = repr(status)
    assert "churn, fraud" in text and mlflow_server.uri in text


def test_status_names_an_unreachable_server(configure):
    uri = f"http://127.0.0.1:{free_port()}"
    configure(tracking_uri=uri, tracking_retry_seconds=0.5)
    status = mlplat.status()
    assert status.tracking_reachable is False
    assert any(uri in p for p in status.problems)
