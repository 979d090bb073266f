"""Serving end to end in-process (issue 9): a governed version is deployed on a real
MLServer (the serving venv), predicted, canaried with a second version, promoted, rolled
back and undeployed, every step in the audit log; and each bad input and fault the issue
lists. Real MLflow server, real store, real MLServer processes; no mocks."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from jupyter_mlplat.client import PlatformClient
from jupyter_mlplat.errors import (
    ConflictError,
    NotFoundError,
    PermissionDenied,
    ServiceUnavailable,
    UsageError,
)
from jupyter_mlplat.identity import ROLE_REVIEWER, Identity
from jupyter_mlplat.store.db import get_store
from jupyter_mlplat.store.models import AuditEvent
from jupyter_mlplat.tracking import Tracker

ALICE = Identity("alice", ("churn",), "test")
BOB = Identity("bob", ("fraud",), "test")
RITA = Identity("rita", ("churn",), "test", roles=(ROLE_REVIEWER,))
X = pd.DataFrame({"tenure": [0.1, 0.2, 0.8, 0.9] * 5, "calls": [1.0, 0.0, 1.0, 0.0] * 5})
Y = np.array([0, 0, 1, 1] * 5)
TEST_ACCOUNTS = "mlplat-test-serve-"


@pytest.fixture(scope="module")
def serving(tmp_path_factory, mlflow_server):
    """Settings of one in-process platform for the module; its model servers stopped after."""
    from jupyter_mlplat import fluent
    from jupyter_mlplat.settings import MlplatSettings, reset_settings

    home = tmp_path_factory.mktemp("serving-home")
    # The model servers' accounts must traverse to their folders (pytest's tmp is 0700).
    served = Path(tempfile.mkdtemp(prefix="mlplat-test-serving-"))
    served.chmod(0o711)
    settings = MlplatSettings(
        serving_dir=str(served),
        home=str(home), user="alice", teams=["churn"], teams_source="test",
        tracking_uri=mlflow_server.uri, store_url=f"sqlite:///{home / 'platform.db'}",
        serving_account_prefix=TEST_ACCOUNTS, serving_ready_timeout=120.0,
    )  # fmt: skip
    fluent.reset()
    reset_settings(settings)
    clients = {}

    def as_user(identity: Identity) -> PlatformClient:
        if identity.user not in clients:
            clients[identity.user] = PlatformClient(
                settings, transport="inprocess", identity=identity
            )
        return clients[identity.user]

    as_user.settings = settings
    yield as_user
    for client in clients.values():
        client._transport.platform.resources.close()
    reset_settings(None)
    fluent.reset()
    shutil.rmtree(served, ignore_errors=True)


def train(serving, flip: bool = False) -> str:
    import mlflow
    from sklearn.linear_model import LogisticRegression

    tracker = Tracker(serving.settings)
    tracker.set_experiment("served")
    with tracker.run("train", autolog=False) as info:
        model = LogisticRegression().fit(X, 1 - Y if flip else Y)
        mlflow.sklearn.log_model(model, name="model", input_example=X.head(2))
    return info.run_id


@pytest.fixture(scope="module")
def versions(serving):
    """A model of churn with version 1 and 2 approved for staging, 1 also for production."""
    alice, rita = serving(ALICE), serving(RITA)
    name = f"served-{uuid.uuid4().hex[:6]}"
    found = {}
    for number, flip in ((1, False), (2, True)):
        version = alice.register_model(name, train(serving, flip)).version
        staging = alice.request_approval(name, version, "staging")
        rita.approve(staging.id, "lineage checked by hand for this test")
        found[number] = version
    production = alice.request_approval(name, found[1], "production")
    rita.approve(production.id, "four eyes")
    return name, found


def predicted(client, name, frame, target="staging"):
    answer = client.predict(f"{name}-{target}", frame.to_dict(orient="records"), None)
    return answer.version, answer.outputs


def test_deploy_predict_canary_promote_rollback_undeploy(serving, versions):
    alice = serving(ALICE)
    name, v = versions
    deployed = alice.deploy(name, v[1], "staging", None)
    assert deployed.status == "active" and [t.server for t in deployed.traffic] == ["ready"]
    assert deployed.traffic[0].digest and deployed.provenance["run_id"]
    version, outputs = predicted(alice, name, X)
    (column,) = outputs.values()
    expected = __import__("mlflow").pyfunc.load_model(f"models:/{name}/{v[1]}").predict(X)
    assert version == v[1] and list(column) == list(expected)

    canaried = alice.deploy(name, v[2], "staging", 50)
    assert [(t.version, t.percent) for t in canaried.traffic] == [(v[1], 50), (v[2], 50)]
    seen = {predicted(alice, name, X.head(1))[0] for _ in range(40)}
    assert seen == {v[1], v[2]}  # both versions answer (1 - 2^-39 chance each is hit)

    promoted = alice.promote(f"{name}-staging")
    assert [(t.version, t.percent) for t in promoted.traffic] == [(v[2], 100)]
    registry = MlflowClient(serving.settings.tracking_uri)  # the mirror of what is deployed
    assert registry.get_model_version_by_alias(name, "deployed-staging").version == v[2]
    assert registry.get_model_version(name, v[1]).tags["mlplat.deployed.staging"] == "0"
    assert predicted(alice, name, X.head(1))[0] == v[2]
    back = alice.rollback(f"{name}-staging")
    assert [(t.version, t.percent) for t in back.traffic] == [(v[1], 100)]
    assert predicted(alice, name, X.head(1))[0] == v[1]

    gone = alice.undeploy(f"{name}-staging")
    assert gone.status == "undeployed" and gone.traffic == []
    assert "deployed-staging" not in registry.get_registered_model(name).aliases
    with pytest.raises(NotFoundError, match="undeployed"):
        predicted(alice, name, X.head(1))
    store = get_store(serving.settings)
    with store.session() as session:
        actions = [e.action for e in session.query(AuditEvent).order_by(AuditEvent.seq)
                   if e.subject == f"deployment:{name}-staging"]  # fmt: skip
    assert actions == ["deployment.deploy", "deployment.canary", "deployment.promote",
                       "deployment.rollback", "deployment.undeploy"]  # fmt: skip


def test_bad_input_and_other_teams(serving, versions):
    alice, bob = serving(ALICE), serving(BOB)
    name, v = versions
    with pytest.raises(PermissionDenied, match="approved for staging, not production"):
        alice.deploy(name, v[2], "production", None)
    with pytest.raises(PermissionDenied, match="belongs to team 'churn'"):
        bob.deploy(name, v[1], "staging", None)
    alice.deploy(name, v[1], "production", None)
    try:
        with pytest.raises(UsageError, match="whole percentage from 1 to 99"):
            alice.deploy(name, v[1], "production", 100)
        with pytest.raises(UsageError, match="refused the data"):
            alice.predict(f"{name}-production", [{"nonsense": 1.0}], None)
        with pytest.raises(PermissionDenied):
            bob.predict(f"{name}-production", X.head(1).to_dict(orient="records"), None)
        with pytest.raises(NotFoundError, match="no deployment named 'nothing-here-staging'"):
            alice.predict("nothing-here-staging", [{"tenure": 1.0, "calls": 0.0}], None)
        with pytest.raises(UsageError):  # not a DNS-1035 name, so never a deployment
            alice.deploy("Not_A_Name", "1", "staging", None)
    finally:
        alice.undeploy(f"{name}-production")


def test_a_killed_model_server_is_shown_and_predict_says_503(serving, versions):
    alice = serving(ALICE)
    name, v = versions
    shown = alice.deploy(name, v[1], "staging", None)
    servers = alice._transport.platform.resources.servers
    state = servers.state(shown.name, v[1])
    os.kill(state.pid, signal.SIGKILL)
    deadline = time.monotonic() + 15  # the kill is seen at the next look, not at once
    while alice.show_deployment(shown.name).traffic[0].server != "crashed":
        assert time.monotonic() < deadline, "the killed model server was never shown crashed"
        time.sleep(0.2)
    with pytest.raises(ServiceUnavailable, match=f"deployment {shown.name}"):
        predicted(alice, name, X.head(1))
    # deploying again brings it back
    again = alice.deploy(name, v[1], "staging", None)
    assert again.traffic[0].server == "ready"
    assert predicted(alice, name, X.head(1))[0] == v[1]
    alice.undeploy(shown.name)


def test_two_deploys_of_one_name_at_once_one_wins_the_other_gets_409(serving, versions):
    """Both start together: each passes the gate and waits for the same model server (the
    first starts it, which takes seconds), then both write; exactly one record wins."""
    alice = serving(ALICE)
    name, v = versions
    outcomes = []
    start = threading.Barrier(2)

    def deploy():
        start.wait()
        try:
            outcomes.append(alice.deploy(name, v[1], "production", None))
        except ConflictError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=deploy) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    conflicts = [o for o in outcomes if isinstance(o, ConflictError)]
    assert len(outcomes) == 2 and len(conflicts) == 1, outcomes
    assert conflicts[0].http_status == 409
    assert alice.show_deployment(f"{name}-production").traffic[0].server == "ready"
    alice.undeploy(f"{name}-production")
