"""Revocation within a bound (issue 8, item 5), through a real hub.

The platform service caches the Hub's answer about a token together with its user's
groups for ``MlplatSettings.hub_cache_seconds`` and nowhere else; so removing rita from
``mlplat-reviewers`` or deleting a user takes effect within that bound. A hub of its own
with a half-second bound keeps the test short (a fractional bound also catches HubAuth's
``cache_max_age=int(0.5)``, which is 0: "cache forever"); every wait polls up to a deadline.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from jupyter_mlplat.client import PlatformClient
from jupyter_mlplat.settings import MlplatSettings
from jupyter_mlplat.tracking import Tracker
from tests.hub import JupyterHubProcess
from tests.hub_fixtures import running_hub

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

    removed = hub.api("DELETE", "/groups/mlplat-reviewers/users", json={"users": ["rita"]})
    assert removed.status_code == 200, removed.text
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

    # Put back, she is a reviewer again within the same bound and may approve.
    added = hub.api("POST", "/groups/mlplat-reviewers/users", json={"users": ["rita"]})
    assert added.status_code == 200, added.text
    poll_until(lambda: status_of(hub, "GET", "audit/verify", rita_token) == 200, DEADLINE)
    assert platform(hub, rita_token).approve(request.id, "four eyes").status == "approved"


def test_a_deleted_users_tokens_stop_working_within_the_bound(short_bound_hub):
    hub = short_bound_hub
    name = "dora"
    created = hub.api("POST", f"/users/{name}", json={})
    assert created.status_code == 201, created.text
    assert hub.api("POST", "/groups/mlplat-reviewers/users", json={"users": [name]}).ok
    token = hub.create_user_token(name)
    assert status_of(hub, "GET", "audit/verify", token) == 200  # a reviewer, cached

    assert hub.api("DELETE", f"/users/{name}").status_code == 204
    poll_until(lambda: status_of(hub, "GET", "audit/verify", token) in (401, 403), DEADLINE)
    for method, path, body in (
        ("GET", "approvals", None),
        ("POST", "approvals/1/approve", {"comment": "gone"}),
    ):
        assert status_of(hub, method, path, token, json=body) == 401, (method, path)


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
    assert hub.api("POST", f"/users/{name}", json={}).status_code == 201
    assert hub.api("POST", "/groups/team-churn/users", json={"users": [name]}).ok
    token = hub.create_user_token(name)
    created = hub._session.post(
        f"{hub.url}/services/mlflow/api/2.0/mlflow/experiments/create",
        headers={"Authorization": f"Bearer {token}"},
        json={"name": "churn/erins"},
        timeout=30,
    )
    assert created.status_code == 200, created.text
    experiment = created.json()["experiment_id"]
    assert mlflow_status(hub, token, "experiments/get", experiment_id=experiment) == 200

    assert hub.api("DELETE", "/groups/team-churn/users", json={"users": [name]}).ok
    poll_until(
        lambda: mlflow_status(hub, token, "experiments/get", experiment_id=experiment) == 403,
        DEADLINE,
    )  # not even the experiment she created: creators get no MANAGE of their own
    assert hub.api("POST", "/groups/team-churn/users", json={"users": [name]}).ok
    poll_until(
        lambda: mlflow_status(hub, token, "experiments/get", experiment_id=experiment) == 200,
        DEADLINE,
    )
    assert hub.api("DELETE", f"/users/{name}").status_code == 204
    poll_until(
        lambda: mlflow_status(hub, token, "experiments/get", experiment_id=experiment) == 401,
        DEADLINE,
    )
