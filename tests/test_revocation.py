"""Revocation within a bound (issue 8, item 5), through a real hub.

In the embedded mode the users file is the source of truth: ``mlplat hub set-groups`` and
``mlplat hub remove-user`` (run here as an operator would) reach the hub at the user's next
request. The platform service and MLflow cache the Hub's answer about a token together
with its user's groups for ``MlplatSettings.hub_cache_seconds`` and nowhere else; so
removing rita from ``mlplat-reviewers`` or removing a user takes effect within that bound. A hub of its own
with a half-second bound keeps the test short (a fractional bound also catches HubAuth's
``cache_max_age=int(0.5)``, which is 0: "cache forever"); every wait polls up to a deadline.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jupyter_mlplat.client import PlatformClient
from jupyter_mlplat.settings import MlplatSettings
from jupyter_mlplat.tracking import Tracker
from tests.hub import JupyterHubProcess
from tests.hub_fixtures import login, running_hub

BOUND = 0.5
# Generous: the bound plus a request's round trip on a loaded test machine.
DEADLINE = BOUND + 20.0


@pytest.fixture(scope="module")
def short_bound_hub(tmp_path_factory, demo_feature_repo):
    home = tmp_path_factory.mktemp("revocation-home")
    workdir = tmp_path_factory.mktemp("revocation-run")
    bound = f"c.MlplatSettings.hub_cache_seconds = {BOUND!r}\n"
    with running_hub(home, workdir, demo_feature_repo, settings=bound) as hub:
        yield hub


def mlplat_hub(hub: JupyterHubProcess, *args: str) -> str:
    """``mlplat hub ARGS`` on the hub's data dir, as the operator runs it; its output."""
    mlplat = Path(sys.executable).with_name("mlplat")
    env = {**os.environ, "MLPLAT_HOME": hub.env["MLPLAT_HOME"]}
    done = subprocess.run(
        [str(mlplat), "hub", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def new_user(hub: JupyterHubProcess, name: str, *groups: str) -> str:
    """Add ``name`` to the users file, log in once through the form; a token of theirs."""
    password = f"{name}-password-1"
    flags = [part for group in groups for part in ("--group", group)]
    mlplat_hub(hub, "add-user", name, *flags, "--password", password)
    assert login(hub, name, password).status_code == 302, hub.log_tail()
    return hub.create_user_token(name)


def platform(hub: JupyterHubProcess, token: str) -> PlatformClient:
    settings = MlplatSettings(client_transport="http", service_url=f"{hub.url}/services/mlplat/")
    return PlatformClient(settings, token=token, retry_seconds=10)


def status_of(hub: JupyterHubProcess, method: str, path: str, token: str, **kw) -> int:
    url = f"{hub.url}/services/mlplat/api/{path}"
    return hub.request(method, url, token=token, timeout=30, **kw).status_code


def poll_until(predicate, deadline: float) -> float:
    """Seconds until ``predicate()`` held (polled every 0.2 s); fails past ``deadline``."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > deadline:
            pytest.fail(f"still not revoked {deadline:.0f} s later")
        time.sleep(0.2)
    return time.monotonic() - started


def train_churn_run(hub: JupyterHubProcess, token: str, configure, monkeypatch) -> str:
    """A real sklearn model in ``churn/revocation`` on the hub's MLflow, as alice."""
    import mlflow
    from sklearn.linear_model import LogisticRegression

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)  # as alice's kernel sends it
    settings = configure(tracking_uri=f"{hub.url}/services/mlflow", teams=["churn"], user="alice")
    tracker = Tracker(settings)
    tracker.set_experiment("revocation")
    X = np.array([[0.1], [0.2], [0.8], [0.9]] * 5)
    y = np.array([0, 0, 1, 1] * 5)
    with tracker.run("train", autolog=False) as info:
        mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model")
        mlflow.log_metric("accuracy", 0.9)
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    return info.run_id


def test_a_reviewer_removed_from_the_group_is_refused_within_the_bound(
    short_bound_hub, configure, monkeypatch
):
    hub = short_bound_hub
    alice_token, rita_token = hub.create_user_token("alice"), hub.create_user_token("rita")
    run_id = train_churn_run(hub, alice_token, configure, monkeypatch)
    alice = platform(hub, alice_token)
    version = alice.register_model("revoked-review", run_id)
    request = alice.request_approval("revoked-review", version.version, "production")
    assert request.status == "requested" and request.frozen_digest
    # rita is a reviewer now, and the service has cached that.
    assert status_of(hub, "GET", "audit/verify", rita_token) == 200

    said = mlplat_hub(hub, "set-groups", "rita", "--group", "team-churn")
    assert "rita is now in team-churn" in said and f"within {BOUND:g} s" in said
    poll_until(lambda: status_of(hub, "GET", "audit/verify", rita_token) == 403, DEADLINE)
    body = hub.request(
        "POST",
        f"{hub.url}/services/mlplat/api/approvals/{request.id}/approve",
        token=rita_token,
        json={"comment": "still a reviewer?"},
        timeout=30,
    )
    assert body.status_code == 403, body.text
    assert "reviewer" in body.json()["error"]
    assert platform(hub, alice_token).show_approval(request.id).decisions == []

    # A group change made through the hub's REST API does not outlive the users file.
    assert hub.api("POST", "/groups/mlplat-reviewers/users", json={"users": ["rita"]}).ok
    time.sleep(1.5)  # past the hub's 1 s refresh age: the file wins at rita's next request
    assert status_of(hub, "GET", "audit/verify", rita_token) == 403

    # Put back in the file, she is a reviewer again within the same bound and may approve.
    mlplat_hub(hub, "set-groups", "rita", "--group", "team-churn", "--group", "mlplat-reviewers")
    poll_until(lambda: status_of(hub, "GET", "audit/verify", rita_token) == 200, DEADLINE)
    assert platform(hub, rita_token).approve(request.id, "four eyes").status == "approved"


def test_a_removed_users_tokens_stop_working_within_the_bound(short_bound_hub):
    hub = short_bound_hub
    token = new_user(hub, "dora", "mlplat-reviewers")
    assert status_of(hub, "GET", "audit/verify", token) == 200  # a reviewer, cached
    said = mlplat_hub(hub, "remove-user", "dora")
    assert "refuses their logins and tokens" in said
    poll_until(lambda: status_of(hub, "GET", "audit/verify", token) == 401, DEADLINE)
    for method, path, body in (
        ("GET", "approvals", None),
        ("POST", "approvals/1/approve", {"comment": "gone"}),
    ):
        assert status_of(hub, method, path, token, json=body) == 401, (method, path)
    # the hub itself refuses the token too, and the password no longer logs in
    assert hub.api("GET", "/user", token=token).status_code in (401, 403)
    assert login(hub, "dora", "dora-password-1").status_code != 302


def test_a_user_deleted_in_the_hub_loses_their_tokens_within_the_bound(short_bound_hub):
    hub = short_bound_hub
    token = new_user(hub, "dave", "mlplat-reviewers")
    assert status_of(hub, "GET", "audit/verify", token) == 200
    assert hub.api("DELETE", "/users/dave").status_code == 204
    poll_until(lambda: status_of(hub, "GET", "audit/verify", token) == 401, DEADLINE)


def test_the_bound_is_one_setting_of_60_seconds_by_default():
    trait = MlplatSettings.class_traits()["hub_cache_seconds"]
    assert MlplatSettings().hub_cache_seconds == 60.0
    assert "Example: c.MlplatSettings.hub_cache_seconds" in trait.help
    assert "deleting a user" in trait.help and "0 asks the Hub on every request" in trait.help


def mlflow_status(hub: JupyterHubProcess, token: str, route: str, **params) -> int:
    url = f"{hub.url}/services/mlflow/api/2.0/mlflow/{route}"
    headers = {"Authorization": f"Bearer {token}"}
    return hub._session.get(url, headers=headers, params=params, timeout=30).status_code


def test_mlflow_follows_a_team_removal_and_a_deleted_user_within_the_bound(short_bound_hub):
    """MLflow's grants are roles synced from hub groups: the same bound holds there."""
    hub = short_bound_hub
    name = "erin"
    token = new_user(hub, name, "team-churn")
    created = hub._session.post(
        f"{hub.url}/services/mlflow/api/2.0/mlflow/experiments/create",
        headers={"Authorization": f"Bearer {token}"},
        json={"name": "churn/erins"},
        timeout=30,
    )
    assert created.status_code == 200, created.text
    experiment = created.json()["experiment_id"]
    assert mlflow_status(hub, token, "experiments/get", experiment_id=experiment) == 200

    mlplat_hub(hub, "set-groups", name)  # no groups left
    poll_until(
        lambda: mlflow_status(hub, token, "experiments/get", experiment_id=experiment) == 403,
        DEADLINE,
    )  # not even the experiment she created: creators get no MANAGE of their own
    mlplat_hub(hub, "set-groups", name, "--group", "team-churn")
    poll_until(
        lambda: mlflow_status(hub, token, "experiments/get", experiment_id=experiment) == 200,
        DEADLINE,
    )
    mlplat_hub(hub, "remove-user", name)
    poll_until(
        lambda: mlflow_status(hub, token, "experiments/get", experiment_id=experiment) == 401,
        DEADLINE,
    )


def test_the_grants_reconciler_gives_a_team_experiments_made_outside_mlflows_api(
    short_bound_hub,
):
    """MLflow's worker re-grants every team its experiments (every max(5 s, bound)), so an
    experiment written straight into the tracking store (a restore, a migration) is not left
    readable by nobody."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    hub = short_bound_hub
    home = Path(hub.env["MLPLAT_HOME"])
    store = SqlAlchemyStore(f"sqlite:///{home / 'mlflow-server.db'}", str(home / "mlartifacts"))
    experiment = store.create_experiment("churn/made-outside")
    alice, bob = hub.create_user_token("alice"), hub.create_user_token("bob")
    poll_until(
        lambda: mlflow_status(hub, alice, "experiments/get", experiment_id=experiment) == 200,
        DEADLINE,
    )
    assert mlflow_status(hub, bob, "experiments/get", experiment_id=experiment) == 403
