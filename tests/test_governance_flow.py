"""Registration and approvals end to end: real MLflow, the real store, real users.

In-process through PlatformClient (SQLite store, MLflow server process), and over
HTTP through the real hub with each user's own token.
"""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient

import jupyter_mlplat as mlplat
from jupyter_mlplat.client import PlatformClient
from jupyter_mlplat.errors import NotFoundError, PermissionDenied, UsageError
from jupyter_mlplat.identity import ROLE_REVIEWER, Identity
from jupyter_mlplat.settings import MlplatSettings

ALICE = Identity("alice", ("churn",), "test")
BOB = Identity("bob", ("fraud",), "test")
RITA = Identity("rita", ("churn",), "test", roles=(ROLE_REVIEWER,))


@pytest.fixture
def train_run(configure, demo_feature_repo, tmp_path):
    """A real sklearn fit with complete lineage for ``team``: a notebook file, the git
    commit of this checkout, and features from the demo Feast repo; autologged, so the
    run has a logged model."""

    def _train(tracking_uri: str, team: str) -> str:
        import subprocess

        notebook = tmp_path / f"{team}.ipynb"
        kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
        notebook.write_text(
            json.dumps({"cells": [], "metadata": {"kernelspec": kernel}, "nbformat": 4,
                        "nbformat_minor": 5})
        )  # fmt: skip
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
        subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
        subprocess.run([*git, "add", notebook.name], cwd=tmp_path, check=True)
        subprocess.run(
            [*git, "commit", "-q", "--allow-empty", "-m", team], cwd=tmp_path, check=True
        )
        configure(
            tracking_uri=tracking_uri,
            teams=[team],
            user=f"{team}-user",
            notebook_path=str(notebook),
            feature_repo=str(demo_feature_repo),
        )
        import pandas as pd
        from sklearn.linear_model import LogisticRegression

        mlplat.set_experiment("governed")
        with mlplat.run("train") as info:
            entities = pd.DataFrame({"customer_id": list(range(1000, 1020))})
            features = mlplat.get_features("customer_stats:tenure_months", entities)
            X = features[["tenure_months"]].fillna(0)
            y = (X["tenure_months"] > X["tenure_months"].median()).astype(int)
            LogisticRegression().fit(X, y)
            mlplat.log(accuracy=0.9)
        return info.run_id

    return _train


@pytest.fixture
def ops(configure, mlflow_server, tmp_path):
    settings = configure(tracking_uri=mlflow_server.uri)
    settings.store_url = f"sqlite:///{tmp_path / 'platform.db'}"

    def as_user(identity: Identity) -> PlatformClient:
        return PlatformClient(settings, transport="inprocess", identity=identity)

    as_user.settings = settings
    return as_user


def test_register_request_review_in_process(ops, train_run, mlflow_server):
    run_id = train_run(mlflow_server.uri, "churn")
    version = ops(ALICE).register_model("churn-model", run_id)
    assert version.version == "1" and len(version.artifact_digest) == 64
    client = MlflowClient(mlflow_server.uri)
    assert client.get_model_version("churn-model", "1").run_id == run_id

    other_run = train_run(mlflow_server.uri, "fraud")
    with pytest.raises(PermissionDenied, match="churn"):
        ops(BOB).register_model("churn-model", other_run)

    staging = ops(ALICE).request_approval("churn-model", "1", "staging")
    assert staging.status == "approved", [c for c in staging.checks if not c.passed]
    assert {c.name for c in staging.checks} >= {"metric_vs_baseline", "team_owns_model"}
    assert client.get_model_version_by_alias("churn-model", "staging").version == "1"
    again = ops(ALICE).request_approval("churn-model", "1", "staging")
    assert again.id == staging.id

    production = ops(ALICE).request_approval("churn-model", "1", "production", reason="ship")
    assert production.status == "requested"
    with pytest.raises(PermissionDenied):
        ops(ALICE).approve(production.id, "looks good to me")
    with pytest.raises(UsageError, match="comment"):
        ops(RITA).reject(production.id, "")
    approved = ops(RITA).approve(production.id, "reviewed the checks")
    assert approved.status == "approved"
    assert client.get_model_version_by_alias("churn-model", "production").version == "1"
    assert client.get_model_version("churn-model", "1").tags["mlplat.approval.production"] == (
        "approved"
    )
    assert ops(RITA).audit_verify().ok
    with pytest.raises(PermissionDenied):
        ops(ALICE).audit_verify()
    with pytest.raises(NotFoundError, match="no-such-model"):
        ops(ALICE).request_approval("no-such-model", "1", "staging")


def test_register_and_approve_over_http_through_the_hub(
    platform_hub, hub_tokens, train_run, monkeypatch
):
    hub_mlflow = f"{platform_hub.url}/services/mlflow"
    # MLflow behind the hub takes alice's hub token, as her kernel sends it.
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", hub_tokens["alice"])
    run_id = train_run(hub_mlflow, "churn")
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")

    def client(user):
        settings = MlplatSettings(
            client_transport="http", service_url=f"{platform_hub.url}/services/mlplat/"
        )
        return PlatformClient(settings, token=hub_tokens[user], retry_seconds=10)

    alice, bob, rita = client("alice"), client("bob"), client("rita")
    version = alice.register_model("hub-churn-model", run_id)
    staging = alice.request_approval("hub-churn-model", version.version, "staging")
    assert staging.status == "approved"
    production = alice.request_approval("hub-churn-model", version.version, "production")
    assert production.status == "requested"
    with pytest.raises(PermissionDenied):
        alice.approve(production.id, "self-approval")
    second_alice = PlatformClient(
        MlplatSettings(client_transport="http", service_url=f"{platform_hub.url}/services/mlplat/"),
        token=platform_hub.create_user_token("alice"),
        retry_seconds=10,
    )
    with pytest.raises(PermissionDenied):  # four eyes: another token is the same person
        second_alice.approve(production.id, "still me")
    with pytest.raises(PermissionDenied):
        bob.show_approval(production.id)
    with pytest.raises(PermissionDenied):
        bob.request_approval("hub-churn-model", version.version, "staging")
    with pytest.raises(PermissionDenied, match="belongs to team 'churn'"):
        bob.register_model("bobs-model", run_id)  # alice's run is churn's, whatever its tags
    assert alice.request_approval("hub-churn-model", version.version, "production").id == (
        production.id
    )
    with pytest.raises(UsageError, match="comment"):
        rita.reject(production.id)
    with pytest.raises(NotFoundError):
        alice.request_approval("hub-churn-model", "99", "staging")
    approved = rita.approve(production.id, "four eyes")
    assert approved.status == "approved" and approved.decisions[0].reviewer == "rita"
    assert rita.audit_verify().ok
    with pytest.raises(PermissionDenied):
        alice.audit_verify()
    events = list(rita.iter_audit_events(page=3))  # several pages
    assert len(events) == rita.audit_verify().events
    assert events[-1].action == "approval.approve" and events[-1].actor == "rita"
    with pytest.raises(PermissionDenied):
        list(alice.iter_audit_events())

    # The database unavailable (a writer holds SQLite's lock past the store's timeout):
    # a 503 with one sentence, and nothing written.
    import sqlite3
    from pathlib import Path

    events_before = rita.audit_verify().events
    blocker = sqlite3.connect(Path(platform_hub.env["MLPLAT_HOME"]) / "platform.db", timeout=1)
    blocker.isolation_level = None
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        response = platform_hub.request(
            "POST",
            f"{platform_hub.url}/services/mlplat/api/approvals/{production.id}/reject",
            token=hub_tokens["rita"],
            json={"comment": "too late"},
            timeout=60,
        )
        assert response.status_code == 503, response.text
        assert "database" in response.json()["error"]
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert rita.audit_verify().events == events_before
    assert rita.show_approval(production.id).status == "approved"


def test_approval_magics_in_a_notebook(
    ipython_shell, train_run, mlflow_server, configure, tmp_path
):
    """%mlplat register / approval in a real IPython shell, in-process (no hub)."""
    from tests.test_magics import assert_one_line_error, run_cell

    run_id = train_run(mlflow_server.uri, "churn")
    store = f"sqlite:///{tmp_path / 'platform.db'}"
    configure(tracking_uri=mlflow_server.uri, teams=["churn"], user="alice", store_url=store)
    shell = ipython_shell
    result, _ = run_cell(shell, f"v = %mlplat register {run_id} --model magic-model")
    assert result.success, result.error_in_exec
    result, captured = run_cell(
        shell, "r = %mlplat approval request magic-model 1 --target production"
    )
    assert result.success, result.error_in_exec
    request = shell.user_ns["r"]
    assert request.status == "requested"
    assert "metric_vs_baseline" in request._repr_html_() and "Request" in repr(request)
    result, captured = run_cell(shell, f"%mlplat approval approve {request.id}")
    assert_one_line_error(result, captured, PermissionDenied, "")
    result, captured = run_cell(shell, f"%mlplat approval reject {request.id}")
    assert_one_line_error(result, captured, UsageError, "comment")

    configure(
        tracking_uri=mlflow_server.uri, teams=["churn"], user="rita", roles=["reviewer"],
        store_url=store,
    )  # fmt: skip
    result, _ = run_cell(shell, f"d = %mlplat approval approve {request.id} --comment ok")
    assert result.success, result.error_in_exec
    assert shell.user_ns["d"].status == "approved"
    result, _ = run_cell(shell, "pending = %mlplat approval list --pending")
    assert result.success and len(shell.user_ns["pending"]) == 0
    result, _ = run_cell(shell, "everything = %mlplat approval list")
    assert [r.status for r in shell.user_ns["everything"]] == ["approved"]


def test_cli_lists_verifies_and_exports(ops, train_run, mlflow_server, configure, tmp_path, capsys):
    """`mlplat approvals list` (the alias of `approval list`) / `mlplat audit verify|export`."""
    import csv
    import json

    from jupyter_mlplat.cli import main

    run_id = train_run(mlflow_server.uri, "churn")
    store = ops.settings.store_url
    ops(ALICE).register_model("cli-model", run_id)
    request = ops(ALICE).request_approval("cli-model", "1", "production")

    configure(tracking_uri=mlflow_server.uri, teams=["churn"], user="rita", roles=["reviewer"],
              store_url=store)  # fmt: skip
    assert main(["approvals", "list", "--pending"]) == 0
    assert (
        f"Request {request.id}: cli-model v1 → production is REQUESTED" in capsys.readouterr().out
    )
    assert main(["approvals", "approve", str(request.id), "--comment", "fine"]) == 0
    assert main(["audit", "verify"]) == 0
    assert "Audit log intact" in capsys.readouterr().out
    out = tmp_path / "audit.csv"
    assert main(["audit", "export", "--format", "csv", "-o", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["action"] for r in rows][-1] == "approval.approve"
    jsonl = tmp_path / "audit.jsonl"
    assert main(["audit", "export", "--format", "jsonl", "-o", str(jsonl)]) == 0
    events = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(events) == len(rows) and events[0]["prev_hash"] != events[1]["prev_hash"]

    configure(tracking_uri=mlflow_server.uri, teams=["churn"], user="alice", store_url=store)
    assert main(["audit", "verify"]) == 3  # not a reviewer: one clear line, exit 3 (forbidden)
    assert "reviewer" in capsys.readouterr().err


def test_a_failed_registration_claims_nothing(ops, train_run, mlflow_server, configure):
    """No logged model, a bad artifact path, another team's name: no ownership, no audit
    event and no MLflow version is left behind (the real owner can still register)."""
    from jupyter_mlplat.governance import get_ownership
    from jupyter_mlplat.store.db import get_store

    store = get_store(ops.settings)
    configure(tracking_uri=mlflow_server.uri, teams=["fraud"], user="bob",
              store_url=ops.settings.store_url)  # fmt: skip
    mlplat.set_experiment("no-model")
    with mlplat.run("nothing", autolog=False) as empty:
        mlplat.log(accuracy=0.5)
    with pytest.raises(NotFoundError, match="no logged model"):
        ops(BOB).register_model("contested-model", empty.run_id)
    with pytest.raises(UsageError):
        ops(BOB).register_model("contested-model", empty.run_id, artifact="../../etc/passwd")
    assert get_ownership(store, "contested-model") is None
    events_before = ops(RITA).audit_verify().events

    alice_run = train_run(mlflow_server.uri, "churn")
    owned = ops(ALICE).register_model("contested-model", alice_run)
    assert get_ownership(store, "contested-model").team == "churn"
    assert ops(RITA).audit_verify().events == events_before + 1  # alice's claim only

    fraud_run = train_run(mlflow_server.uri, "fraud")
    with pytest.raises(PermissionDenied, match="owned by team 'churn'"):
        ops(BOB).register_model("contested-model", fraud_run)
    versions = MlflowClient(mlflow_server.uri).search_model_versions("name='contested-model'")
    assert [v.version for v in versions] == [owned.version]  # no stray version of bob's
