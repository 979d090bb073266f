"""The local deployer's foundation: the serving venv and one real MLServer per model folder.

Everything is real: an sklearn model saved with ``mlflow.sklearn.save_model``, MLServer 1.7
with mlserver-mlflow from the serving venv that ``make install`` builds, V2 over HTTP.
"""

from __future__ import annotations

import os
import pickle
import signal
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from jupyter_mlplat.errors import NotFoundError, ServiceUnavailable, UsageError
from jupyter_mlplat.serving.environment import find_serving_environment
from jupyter_mlplat.serving.local import LocalModelServer, ModelServerFailed

NAME = "churn-model"


def frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "tenure": rng.uniform(0, 60, n),
            "spend": rng.uniform(10, 200, n),
            "calls": rng.uniform(0, 9, n),
        }
    )


def save_sklearn_model(path, **kwargs):
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    X = frame()
    y = ((X.tenure < 20) & (X.calls > 4)).astype(int) + (X.spend > 150).astype(int)
    model = LogisticRegression(max_iter=500).fit(X, y)
    mlflow.sklearn.save_model(model, path, signature=infer_signature(X, model.predict(X)), **kwargs)
    return model


def pandas_request(df: pd.DataFrame) -> dict:
    """A V2 request mlserver-mlflow decodes as a DataFrame: content_type "pd", one input per column."""
    return {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {"name": c, "shape": [len(df)], "datatype": "FP64", "data": df[c].tolist()}
            for c in df.columns
        ],
    }


@pytest.fixture(scope="module")
def serving_env():
    return find_serving_environment()


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("frozen") / "sha256" / "0123abcd" / "model"
    return path, save_sklearn_model(path)


@pytest.fixture(scope="module")
def served(serving_env, saved_model, tmp_path_factory):
    """One MLServer for the module (start-up takes seconds)."""
    path, _ = saved_model
    server = LocalModelServer.start(serving_env, path, NAME, tmp_path_factory.mktemp("deployment"))
    started = time.monotonic()
    try:
        server.wait_ready(timeout=90)
        print(f"MLServer ready in {time.monotonic() - started:.1f} s")
        yield server
    finally:
        server.stop()


@pytest.fixture
def http(served):
    with httpx.Client(base_url=served.handle.base_url, trust_env=False, timeout=30) as client:
        yield client


def test_the_serving_environment_has_mlserver_and_our_mlflow(serving_env):
    import mlflow

    assert serving_env.versions["mlflow"] == mlflow.__version__
    assert serving_env.versions["mlserver"].startswith("1.7")
    assert serving_env.versions["mlserver-mlflow"].startswith("1.7")


def test_a_missing_serving_environment_says_how_to_build_it(tmp_path):
    with pytest.raises(ServiceUnavailable, match="missing") as caught:
        find_serving_environment(tmp_path / "nowhere" / "bin" / "python")
    assert "make install" in str(caught.value) and "uv pip install" in str(caught.value)
    assert "mlserver-mlflow==1.7.1" in str(caught.value)


def test_a_python_without_mlserver_is_refused(tmp_path):
    import sys

    with pytest.raises(ServiceUnavailable, match="cannot import mlserver") as caught:
        find_serving_environment(sys.executable)  # the project venv: no MLServer here
    assert "make install" in str(caught.value)


def test_v2_infer_gives_the_in_process_predictions(served, saved_model, http):
    _, model = saved_model
    X = frame(25)
    answer = http.post(f"/v2/models/{NAME}/infer", json=pandas_request(X))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_name"] == NAME
    served_predictions = np.asarray(body["outputs"][0]["data"]).reshape(-1)
    assert served_predictions.tolist() == model.predict(X).tolist()


def test_metadata_and_readiness_routes(served, http):
    metadata = http.get(f"/v2/models/{NAME}")
    assert metadata.status_code == 200
    assert metadata.json()["name"] == NAME
    assert [i["name"] for i in metadata.json()["inputs"]] == ["tenure", "spend", "calls"]
    assert http.get(f"/v2/models/{NAME}/ready").status_code == 200
    assert http.get("/v2/health/ready").status_code == 200
    assert http.get("/v2/models/no-such-model").status_code == 404


def test_the_handle_says_where_it_runs(served, saved_model):
    handle = served.handle
    assert handle.base_url == f"http://127.0.0.1:{handle.http_port}"
    assert handle.grpc_port != handle.http_port and handle.metrics_port is None
    assert handle.model_uri == saved_model[0].resolve()
    assert os.getpgid(handle.pid) == handle.pid  # its own process group
    assert served.alive()
    assert f"Loaded model '{NAME}' successfully" in handle.log_path.read_text()


def test_wrong_columns_answer_500_with_mlflows_message(served, http):
    """Recorded: MLServer answers model errors with 500 and ``{"error": "<exception>: ..."}``;
    only a malformed V2 body is a 4xx (422, FastAPI's validation)."""
    bad = frame(3).rename(columns={"calls": "visits"})
    answer = http.post(f"/v2/models/{NAME}/infer", json=pandas_request(bad))
    assert answer.status_code == 500
    assert "Model is missing inputs ['calls']" in answer.json()["error"]
    assert "MlflowException" in answer.json()["error"]

    shape = pandas_request(frame(3))
    shape["inputs"][0]["shape"] = [4]
    answer = http.post(f"/v2/models/{NAME}/infer", json=shape)
    assert answer.status_code == 500
    assert "cannot reshape array of size 3" in answer.json()["error"]

    answer = http.post(f"/v2/models/{NAME}/infer", json={"inputs": "not a list"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "inputs"]


def assert_group_gone(pgid: int) -> None:
    """No running process is left in the group (a zombie waiting for init does not count)."""
    left = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            left.append(stat.parent.name)
    assert left == []


def test_a_folder_without_a_model_fails_with_its_log_within_the_timeout(serving_env, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    server = LocalModelServer.start(serving_env, empty, "empty", tmp_path / "work")
    started = time.monotonic()
    with pytest.raises(ModelServerFailed) as caught:
        server.wait_ready(timeout=60)
    assert time.monotonic() - started < 60
    assert 'Could not find an "MLmodel" configuration file' in str(caught.value)
    assert "MLmodel" in caught.value.log_tail and caught.value.http_status == 503
    assert not server.alive()
    assert_group_gone(server.handle.pid)


class _RaisesOnLoad:
    def __reduce__(self):
        return (int, ("this pickle raises on load",))


def test_a_pickle_that_raises_fails_with_its_error(serving_env, tmp_path):
    path = tmp_path / "model"
    save_sklearn_model(path, serialization_format="cloudpickle")
    (path / "model.pkl").write_bytes(pickle.dumps(_RaisesOnLoad()))
    server = LocalModelServer.start(serving_env, path, "broken", tmp_path / "work")
    with pytest.raises(ModelServerFailed, match="could not load the model") as caught:
        server.wait_ready(timeout=60)
    assert "invalid literal for int()" in caught.value.log_tail
    assert not server.alive()


def test_a_killed_server_is_not_alive(serving_env, saved_model, tmp_path):
    server = LocalModelServer.start(serving_env, saved_model[0], "killed", tmp_path / "work")
    try:
        server.wait_ready(timeout=90)
        os.kill(server.handle.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while server.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not server.alive()
        assert not server.ready()
    finally:
        server.stop()
    assert_group_gone(server.handle.pid)  # the orphaned inference worker went with the group


def test_bad_names_and_missing_folders_are_refused_before_starting(serving_env, tmp_path):
    with pytest.raises(UsageError, match="cannot name a served model"):
        LocalModelServer.start(serving_env, tmp_path, "../etc", tmp_path / "work")
    with pytest.raises(NotFoundError, match="no model folder"):
        LocalModelServer.start(serving_env, tmp_path / "absent", "absent", tmp_path / "work")
