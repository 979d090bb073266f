"""The endpoints the side panel reads: runs, experiments, model versions with their
approval states, a version's audit trail, and re-running a job. Real MLflow server,
real store, in process as each user (the teams come from the identity, never the data).
"""

from __future__ import annotations

import json
import uuid

import pytest
from mlflow import MlflowClient

import jupyter_mlplat as mlplat
from jupyter_mlplat.client import PlatformClient
from jupyter_mlplat.errors import NotFoundError, PermissionDenied, UsageError
from jupyter_mlplat.identity import ROLE_REVIEWER, Identity

MODEL = f"panel-churn-model-{uuid.uuid4().hex[:8]}"  # the session's registry is shared
ALICE = Identity("alice", ("churn",), "test")
BOB = Identity("bob", ("fraud",), "test")
RITA = Identity("rita", ("risk",), "test", roles=(ROLE_REVIEWER,))


@pytest.fixture
def ops(configure, mlflow_server, tmp_path):
    settings = configure(tracking_uri=mlflow_server.uri)
    settings.store_url = f"sqlite:///{tmp_path / 'platform.db'}"
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


def all_pages(client) -> set[str]:
    """Every run id the client may list, page by page."""
    seen, cursor = set(), None
    while True:
        page = client.list_runs(limit=500, cursor=cursor)
        seen |= {r.run_id for r in page.items}
        if not (cursor := page.next_cursor):
            return seen


def log_runs(configure, uri, tmp_path, team, experiment, count, *, notebook=None):
    """``count`` runs of ``team``'s experiment with a metric history, logged as a member."""
    configure(
        tracking_uri=uri, teams=[team], user=f"{team}-user",
        notebook_path=str(notebook) if notebook else "",
    )  # fmt: skip
    mlplat.set_experiment(experiment)
    ids = []
    for i in range(count):
        with mlplat.run(f"r{i}", params={"depth": i, "kind": "tree"}) as info:
            for step in range(3):
                mlplat.log(step=step, auc=0.5 + i / 10 + step / 100)
        ids.append(info.run_id)
    return ids


def test_runs_of_my_teams_sorted_filtered_paged_never_another_teams(
    ops, configure, mlflow_server, tmp_path
):
    notebook = tmp_path / "train.ipynb"
    notebook.write_text(
        json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    # The session's MLflow holds other tests' experiments too: this one's name is its own.
    name = f"panel-{uuid.uuid4().hex[:8]}"
    churn = log_runs(configure, mlflow_server.uri, tmp_path, "churn", name, 5, notebook=notebook)
    fraud = log_runs(configure, mlflow_server.uri, tmp_path, "fraud", name, 2)
    # A run tagged as churn's in fraud's experiment stays fraud's: the experiment decides.
    MlflowClient(mlflow_server.uri).set_tag(fraud[0], "mlplat.team", "churn")
    configure(tracking_uri=mlflow_server.uri)
    alice = ops(ALICE)

    experiments = alice.list_experiments().items
    names = [e.name for e in experiments]
    assert f"churn/{name}" in names and all(n.startswith("churn/") for n in names)
    assert names == sorted(names)
    (mine,) = [e for e in experiments if e.name == f"churn/{name}"]
    assert mine.mlflow_url.endswith(f"/#/experiments/{mine.experiment_id}")
    here = mine.experiment_id

    first = alice.list_runs(experiment_id=here, order="metrics.auc DESC", limit=2)
    assert [r.run_id for r in first.items] == [churn[4], churn[3]] and first.next_cursor
    rest = alice.list_runs(
        experiment_id=here, order="metrics.auc DESC", limit=2, cursor=first.next_cursor
    )
    assert [r.run_id for r in rest.items] == [churn[2], churn[1]]
    row = first.items[0]
    assert row.params == {"depth": "4", "kind": "tree"} and row.metrics["auc"] == pytest.approx(
        0.92
    )
    assert row.experiment == f"churn/{name}" and row.team == "churn" and row.user == "churn-user"
    assert row.notebook_path == str(notebook)

    low = alice.list_runs(experiment_id=here, filter="metrics.auc < 0.65", order="params.depth ASC")
    assert [r.run_id for r in low.items] == [churn[0], churn[1]]
    assert {r.run_id for r in alice.list_runs(experiment_id=here, limit=500).items} == set(churn)
    every = all_pages(alice)
    assert every >= set(churn) and not every & set(fraud)
    assert all(r.team == "churn" for r in alice.list_runs(limit=500).items)
    with pytest.raises(UsageError, match="MLflow's syntax"):
        alice.list_runs(filter="metrics.auc >>> nonsense")
    with pytest.raises(UsageError):
        alice.list_runs(order="metrics.auc; DROP TABLE runs")

    fraud_experiment = MlflowClient(mlflow_server.uri).get_run(fraud[0]).info.experiment_id
    with pytest.raises(PermissionDenied, match="not one of your teams"):
        alice.list_runs(experiment_id=fraud_experiment)
    with pytest.raises(PermissionDenied, match="not one of your teams"):
        alice.show_run(fraud[0])
    with pytest.raises(PermissionDenied):
        alice.run_notebook(fraud[0])
    with pytest.raises(NotFoundError):
        alice.show_run("f" * 32)

    detail = alice.show_run(churn[4])
    assert [p.step for p in detail.histories["auc"]] == [0, 1, 2]
    assert detail.histories["auc"][-1].value == pytest.approx(0.92)
    assert detail.has_notebook and detail.tags["mlplat.notebook.path"] == str(notebook)
    snapshot = alice.run_notebook(churn[4])
    assert snapshot.content["nbformat"] == 4 and snapshot.path == str(notebook)
    assert snapshot.sha256 == detail.tags["mlplat.notebook.sha256"]
    theirs = all_pages(ops(BOB))
    assert theirs >= set(fraud) and not theirs & set(churn)
    with pytest.raises(NotFoundError, match="no notebook snapshot"):
        ops(BOB).run_notebook(fraud[1])


def test_model_versions_with_states_for_the_team_and_reviewers_and_their_audit(
    ops, configure, mlflow_server, tmp_path
):
    (run_id,) = train_model_run(configure, mlflow_server.uri, "churn")
    configure(tracking_uri=mlflow_server.uri)
    alice, bob, rita = ops(ALICE), ops(BOB), ops(RITA)
    alice.register_model(MODEL, run_id)
    assert [(v.model, v.version, v.state) for v in alice.list_model_versions().items] == [
        (MODEL, "1", "unrequested")
    ]
    request = alice.request_approval(MODEL, "1", "production", reason="ship it")
    assert request.status == "requested"
    (version,) = alice.list_model_versions().items
    assert version.state == "requested" and version.requests[0].id == request.id
    assert {c.name for c in version.requests[0].checks} >= {"team_owns_model"}
    assert all(isinstance(c.inputs, dict) for c in version.requests[0].checks)
    assert version.mlflow_url.endswith(f"/#/models/{MODEL}/versions/1")
    assert bob.list_model_versions().items == []  # another team's model is not listed
    assert [v.model for v in rita.list_model_versions().items] == [MODEL]  # a reviewer
    rita.approve(request.id, "checked")
    assert alice.list_model_versions(model=MODEL).items[0].state == "approved"

    trail = alice.version_audit(MODEL, "1").items
    assert [(e.action, e.actor) for e in trail] == [
        ("approval.request", "alice"), ("approval.approve", "rita"),
    ]  # fmt: skip
    assert all(e.subject.startswith(f"{MODEL}/1/") for e in trail)
    assert rita.version_audit(MODEL, "1").items == trail
    with pytest.raises(PermissionDenied, match="churn"):
        bob.version_audit(MODEL, "1")
    with pytest.raises(NotFoundError, match="not registered"):
        alice.version_audit("no-such-model", "1")


def train_model_run(configure, uri, team):
    """One run of ``team`` with a logged sklearn model."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    configure(tracking_uri=uri, teams=[team], user=f"{team}-user")
    mlplat.set_experiment("models")
    with mlplat.run("fit") as info:
        import mlflow.sklearn

        X = np.arange(20, dtype=float).reshape(-1, 1)
        model = LogisticRegression().fit(X, (X[:, 0] > 9).astype(int))
        mlflow.sklearn.log_model(model, name="model", input_example=X[:2])
        mlplat.log(accuracy=0.9)
    return [info.run_id]
