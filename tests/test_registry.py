"""governance.registry against a real MLflow: unreachable servers, artifact paths, duplicate
registrations and choosing the model of an autologged run (no mocks of MLflow)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import numpy as np
import pytest
from mlflow import MlflowClient

from jupyter_mlplat.errors import NotFoundError, PermissionDenied, ServiceUnavailable, UsageError
from jupyter_mlplat.governance import registry
from jupyter_mlplat.tracking import Tracker
from jupyter_mlplat.tracking.plugins import AUTOLOGGED_TAG
from tests.servers import free_port

X = np.array([[0.1, 1.0], [0.2, 0.0], [0.8, 1.0], [0.9, 0.0]] * 5)
Y = np.array([0, 0, 1, 1] * 5)


@pytest.fixture
def train(configure):
    """``train(tracking_uri, explicit=..., autolog=...)``: a real sklearn fit in a run of
    team churn; returns ``(settings, run_id)``."""
    import mlflow

    def _train(
        tracking_uri: str, *, explicit: bool = False, autolog: bool = True, refit: bool = False
    ):
        from sklearn.linear_model import LogisticRegression

        settings = configure(tracking_uri=tracking_uri, teams=["churn"])
        tracker = Tracker(settings)
        tracker.set_experiment("registry")
        with tracker.run("train", autolog=autolog) as info:
            model = LogisticRegression().fit(X, Y)
            if explicit:
                mlflow.sklearn.log_model(model, name="model")
            if refit:  # a later fit: autolog logs another, newer model
                LogisticRegression(C=0.5).fit(X, Y)
        return settings, info.run_id

    yield _train
    mlflow.autolog(disable=True)


def _logged_models(uri: str, run_id: str):
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    return client.search_logged_models(
        experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
    )


# ---- (a) MLflow down or hanging: 503 naming the URI, in bounded time ----


@contextlib.contextmanager
def silent_server(*, answer_health: bool = False):
    """A loopback socket that accepts connections and never answers them (``answer_health``:
    except ``GET /health``, like a server that was fine a moment ago and then hung)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)
            if answer_health:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    if conn.recv(65536).startswith(b"GET /health"):
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


CALLS = {
    "run_team": lambda s: registry.run_team(s, "0a1b2c3d4e5f"),
    "register": lambda s: registry.register(s, "0a1b2c3d4e5f", "churn-model", None, "churn"),
    "read_version": lambda s: registry.read_version(s, "churn-model", "1"),
    "mirror": lambda s: registry.mirror(s, "churn-model", "1", "staging", "approved"),
}


def _assert_unavailable(settings, uri: str, bound: float) -> None:
    for name, call in CALLS.items():
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable) as caught:
            call(settings)
        elapsed = time.monotonic() - started
        message = str(caught.value)
        assert message.startswith(f"MLflow at {uri} is unreachable"), (name, message)
        assert "\n" not in message and "does not exist" not in message, (name, message)
        assert not isinstance(caught.value, NotFoundError)
        # A correctness bound (MLflow alone retries for minutes), not a speed test.
        assert elapsed < bound, (name, elapsed)


def test_closed_port_is_unavailable_not_missing(configure):
    uri = f"http://127.0.0.1:{free_port()}"
    settings = configure(tracking_uri=uri, tracking_retry_seconds=1.5)
    _assert_unavailable(settings, uri, bound=10)


def test_server_that_accepts_but_never_answers(configure):
    with silent_server() as uri:
        settings = configure(tracking_uri=uri, tracking_retry_seconds=1.5)
        _assert_unavailable(settings, uri, bound=15)


def test_server_that_hangs_after_a_healthy_probe(configure):
    """The health probe passes (and is cached), then MLflow's own requests hang: the
    MLflow client's timeout and retries are bounded by the settings' budget."""
    with silent_server(answer_health=True) as uri:
        settings = configure(tracking_uri=uri, tracking_retry_seconds=1.5)
        _assert_unavailable(settings, uri, bound=25)


def test_only_resource_does_not_exist_is_not_found(configure, tracking_uri):
    settings = configure(tracking_uri=tracking_uri)
    with pytest.raises(NotFoundError, match="There is no MLflow run '0a1b2c3d4e5f'"):
        registry.run_team(settings, "0a1b2c3d4e5f")
    assert registry.read_version(settings, "never-registered", "1").exists is False
    with pytest.raises(UsageError, match="not an MLflow run id"):
        registry.run_team(settings, "../../etc")


# ---- (b) artifact paths given by users ----

BAD_ARTIFACTS = [
    "../../etc/passwd", "..", "model/../../x", "./model", "%2e%2e/x", "model%2F..", "/etc/passwd",
    "file:///etc/passwd", "s3://bucket/model", "runs:/abc/model", "model\x00", "sub\\model",
    "..\\..\\x", "model//x", "model/./x", "~/model", "m-XYZ/../..", "a" * 600,
]  # fmt: skip


@pytest.mark.parametrize("artifact", BAD_ARTIFACTS)
def test_unsafe_artifact_paths_are_usage_errors(artifact):
    with pytest.raises(UsageError) as caught:
        registry.check_artifact(artifact)
    message = str(caught.value)
    assert message.count(". ") == 0 and message.endswith(".") and "\n" not in message
    assert "relative name like 'model'" in message


def test_artifact_paths_on_a_real_run(train, sqlite_tracking_uri, tmp_path):
    import mlflow

    settings, run_id = train(sqlite_tracking_uri, autolog=False)
    for bad in ("../../etc/passwd", "%2e%2e/x", "/etc/passwd", "file:///etc/passwd", "s3://x",
                "model\x00", "sub\\model"):  # fmt: skip
        with pytest.raises(UsageError, match="is not a model inside the run"):
            registry.register(settings, run_id, "paths-model", bad, "churn")
    # A plain relative path holding an MLmodel is fine (trailing slash or not).
    from sklearn.linear_model import LogisticRegression

    saved = tmp_path / "saved"
    mlflow.sklearn.save_model(LogisticRegression().fit(X, Y), saved)
    MlflowClient(sqlite_tracking_uri).log_artifacts(run_id, str(saved), "sub/model")
    version = registry.register(settings, run_id, "paths-model", "sub/model/", "churn")
    assert version.source.endswith("/sub/model") and not version.existing
    again = registry.register(settings, run_id, "paths-model", "sub/model", "churn")
    assert (again.version, again.existing) == (version.version, True)
    with pytest.raises(NotFoundError, match="has no model 'model'"):
        registry.register(settings, run_id, "paths-model", "model", "churn")
    assert registry.check_artifact("model") == "model"
    assert registry.check_artifact("m-0123abcd") == "m-0123abcd"
    assert registry.check_artifact(None) is None


# ---- (c) the same run registered twice ----


def test_registering_the_same_run_twice_returns_the_existing_version(train, tracking_uri):
    settings, run_id = train(tracking_uri)
    first = registry.register(settings, run_id, "twice-model", None, "churn")
    second = registry.register(settings, run_id, "twice-model", None, "churn")
    assert (first.existing, second.existing) == (False, True)
    assert second.version == first.version
    assert second.artifact_digest == first.artifact_digest and second.source == first.source
    assert "already registered" in repr(second)
    versions = MlflowClient(tracking_uri).search_model_versions("name = 'twice-model'")
    assert [str(v.version) for v in versions] == [first.version]
    # Another team still cannot register it.
    with pytest.raises(PermissionDenied, match="belongs to team 'churn'"):
        registry.register(settings, run_id, "twice-model", None, "fraud")


# ---- (d) autolog plus an explicit log_model in the same run ----


def test_explicit_model_is_preferred_over_the_autologged_one(train, tracking_uri):
    settings, run_id = train(tracking_uri, explicit=True)
    models = _logged_models(tracking_uri, run_id)
    assert sorted(m.name for m in models) == ["model", "model"]
    (auto,) = [m for m in models if m.tags.get(AUTOLOGGED_TAG) == "sklearn"]
    (explicit,) = [m for m in models if AUTOLOGGED_TAG not in m.tags]

    version = registry.register(settings, run_id, "both-model", None, "churn")
    assert version.source == f"models:/{explicit.model_id}" and not version.existing
    by_name = registry.register(settings, run_id, "both-model", "model", "churn")
    assert (by_name.version, by_name.existing) == (version.version, True)

    # A logged model's id picks exactly that one: the autologged model is another version.
    picked = registry.register(settings, run_id, "both-model", auto.model_id, "churn")
    assert picked.source == f"models:/{auto.model_id}" and not picked.existing
    assert picked.version != version.version
    assert registry.register(settings, run_id, "both-model", auto.model_id, "churn").existing

    info = registry.read_version(settings, "both-model", version.version)
    assert info.exists and info.run_id == run_id and info.artifact_digest == version.artifact_digest


def test_explicit_model_wins_even_when_an_autologged_one_is_newer(train, sqlite_tracking_uri):
    settings, run_id = train(sqlite_tracking_uri, explicit=True, refit=True)
    models = _logged_models(sqlite_tracking_uri, run_id)
    (explicit,) = [m for m in models if AUTOLOGGED_TAG not in m.tags]
    assert len(models) == 3
    assert max(models, key=lambda m: m.creation_timestamp).model_id != explicit.model_id
    version = registry.register(settings, run_id, "refit-model", None, "churn")
    assert version.source == f"models:/{explicit.model_id}"
    # Without an explicit model, the newest autologged one is taken.
    settings, auto_run = train(sqlite_tracking_uri, refit=True)
    newest = max(_logged_models(sqlite_tracking_uri, auto_run), key=lambda m: m.creation_timestamp)
    auto = registry.register(settings, auto_run, "refit-auto-model", None, "churn")
    assert auto.source == f"models:/{newest.model_id}"


def test_model_ids_of_other_runs_or_nowhere_are_refused(train, sqlite_tracking_uri):
    settings, first_run = train(sqlite_tracking_uri)
    _, second_run = train(sqlite_tracking_uri)
    (other,) = _logged_models(sqlite_tracking_uri, first_run)
    with pytest.raises(UsageError, match=f"comes from run {first_run}, not {second_run}"):
        registry.register(settings, second_run, "ids-model", other.model_id, "churn")
    with pytest.raises(NotFoundError, match="no logged model 'm-0000'"):
        registry.register(settings, second_run, "ids-model", "m-0000", "churn")
