"""Defects of the domain layer: settings passed in, a code version for runs outside git,
check messages that say what to do, and overriding failed checks only with a comment.

The workflow tests run on a real Store (SQLite and PostgreSQL); the documented path runs
a real sklearn fit, real Feast features and a real MLflow store.
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from jupyter_mlplat.errors import UsageError
from jupyter_mlplat.governance import (
    StateConflict,
    VersionInfo,
    approve,
    claim_model,
    request_approval,
    set_high_risk,
    verify,
)
from jupyter_mlplat.governance.checks import LINEAGE_STEPS, check_team
from jupyter_mlplat.identity import ROLE_ADMIN, ROLE_REVIEWER, Identity
from jupyter_mlplat.settings import MlplatSettings, reset_settings
from jupyter_mlplat.store import Store
from jupyter_mlplat.store.models import AuditEvent, Decision
from jupyter_mlplat.tracking import Tracker
from tests.conftest import REPO_ROOT

ALICE = Identity("alice", ("churn",), "test")
REV1 = Identity("rev1", ("risk",), "test", roles=(ROLE_REVIEWER,))
REV2 = Identity("rev2", ("risk",), "test", roles=(ROLE_REVIEWER,))
ADMIN = Identity("root", ("platform",), "test", roles=(ROLE_ADMIN,))
MODEL = "churn-model"
LINEAGE = {
    "notebook_hash": "sha256:nb",
    "code_version": "git:abc123",
    "feature_refs": ["customer_stats:tenure"],
    "data_source": "customer_stats",
}


def info(accuracy=0.9, pii=(), lineage=None) -> VersionInfo:
    return VersionInfo(
        run_id="run1",
        artifact_digest="sha256:aaa",
        metrics={"accuracy": accuracy} if accuracy is not None else {},
        lineage=dict(LINEAGE if lineage is None else lineage),
        features_pii=list(pii),
    )


@pytest.fixture
def store(store_url, tmp_path):
    reset_settings(MlplatSettings(home=str(tmp_path / "home"), user="alice", teams=["churn"]))
    store = Store(store_url)
    claim_model(store, ALICE, MODEL, "churn")
    yield store
    store.dispose()
    reset_settings(None)


def _events(store, action):
    with store.session() as session:
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        return session.scalars(query).all()


def _decisions(store):
    with store.session() as session:
        return session.scalars(select(Decision).order_by(Decision.id)).all()


# ---- 2. domain modules take their settings as arguments ----


def _get_settings_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", None)
        if name == "get_settings":
            found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
        if isinstance(node, ast.ImportFrom) and any(a.name == "get_settings" for a in node.names):
            found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    return found


def test_tracking_and_features_read_no_process_settings():
    package = REPO_ROOT / "jupyter_mlplat"
    files = sorted((package / "tracking").glob("*.py")) + sorted(
        (package / "features").glob("*.py")
    )
    assert len(files) >= 8
    assert [use for path in files for use in _get_settings_uses(path)] == []


def test_tracker_uses_the_settings_it_is_given(sqlite_tracking_uri, tmp_path, configure):
    with pytest.raises(TypeError):
        Tracker()  # the settings are required
    with pytest.raises(TypeError, match="needs the MlplatSettings"):
        Tracker(None)
    given = MlplatSettings(
        home=str(tmp_path / "given"), user="carol", teams=["vision"], teams_source="test",
        tracking_uri=sqlite_tracking_uri,
    )  # fmt: skip
    # The process-wide settings name another user, team and store: they are not read.
    configure(tracking_uri=f"sqlite:///{tmp_path / 'other.db'}", user="alice", teams=["churn"])
    tracker = Tracker(given)
    experiment = tracker.set_experiment("explicit")
    assert experiment.name == "vision/explicit"
    assert experiment.tracking_uri == sqlite_tracking_uri
    assert tracker.identity.user == "carol"
    assert not (tmp_path / "other.db").exists()


# ---- 4. a code version for runs outside git; messages that say what to do ----


def test_documented_path_outside_git_reaches_staging_auto_approval(
    configure, sqlite_tracking_uri, demo_feature_repo, tmp_path
):
    """README / example notebook, run from a saved notebook outside any git repository:
    features in the run, accuracy logged, register, request staging → approved."""
    import mlflow
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from jupyter_mlplat.features import get_features
    from jupyter_mlplat.governance import registry

    notebook = tmp_path / "outside-git" / "01_track_and_features.ipynb"
    notebook.parent.mkdir()
    notebook.write_text(json.dumps({"cells": [], "nbformat": 4, "nbformat_minor": 5}))
    settings = configure(
        tracking_uri=sqlite_tracking_uri, teams=["churn"], notebook_path=str(notebook)
    )
    tracker = Tracker(settings)
    tracker.set_experiment("documented")
    try:
        with tracker.run("baseline") as run:
            entities = pd.DataFrame({"customer_id": list(range(1000, 1020))})
            result = get_features("customer_stats:tenure_months", entities, repo=demo_feature_repo)
            tracker.log_feature_lineage(result.lineage)
            X = result.df[["tenure_months"]].fillna(0)
            y = (X["tenure_months"] > X["tenure_months"].median()).astype(int)
            LogisticRegression().fit(X, y)
            tracker.log_metrics({"accuracy": 0.9})
    finally:
        mlflow.autolog(disable=True)
    tags = mlflow.MlflowClient(sqlite_tracking_uri).get_run(run.run_id).data.tags
    expected = f"notebook-sha256:{hashlib.sha256(notebook.read_bytes()).hexdigest()}"
    assert "mlflow.source.git.commit" not in tags
    assert tags["mlplat.code_version"] == expected

    store = Store(f"sqlite:///{tmp_path / 'platform.db'}")
    try:
        claim_model(store, ALICE, "documented-model", "churn")
        version = registry.register(settings, run.run_id, "documented-model", None, "churn")
        current = registry.read_version(settings, "documented-model", version.version)
        assert current.lineage["code_version"] == expected
        request = request_approval(
            store, ALICE, "documented-model", version.version, "staging", "", current
        )
        assert request.status == "approved", [c.message for c in request.checks if not c.passed]
    finally:
        store.dispose()


def test_failed_check_messages_say_what_to_do(store):
    request = request_approval(
        store, ALICE, MODEL, 1, "staging", "", info(accuracy=None, pii=["email"], lineage={})
    )
    messages = {c.name: c.message for c in request.checks}
    assert messages["metric_vs_baseline"] == (
        "Run run1 has no numeric metric 'accuracy'; log it in the run with "
        "`%mlplat log accuracy=...` (or set c.MlplatSettings.approval_metric)."
    )
    lineage = messages["lineage_complete"]
    assert lineage.startswith("Lineage lacks notebook_hash (train in a saved notebook")
    for field in ("notebook_hash", "code_version", "feature_refs", "data_source"):
        assert field in lineage and LINEAGE_STEPS[field] in lineage
    assert "`%mlplat features" in lineage and "inside the `%%mlplat run` cell" in lineage
    assert "git repository or a saved notebook" in lineage
    assert "train without them" in messages["no_pii_features"]
    for message in messages.values():  # one sentence each
        assert message.endswith(".") and ". " not in message and "\n" not in message
    assert check_team(Identity("olga", ("fraud",), "test"), "churn").message == (
        "Requester is not in team churn; ask a member of churn to request approval."
    )


# ---- 5. overriding failed checks needs a comment, and is recorded ----


def test_overriding_failed_checks_needs_a_comment(store):
    request = request_approval(store, ALICE, MODEL, 1, "production", "", info(pii=["email"]))
    assert not request.checks_passed
    before = len(_events(store, "approval.approve"))
    for comment in ("", "   "):
        with pytest.raises(UsageError) as caught:
            approve(store, REV1, request.id, comment, info(pii=["email"]))
        message = str(caught.value)
        assert f"#{request.id} failed the checks no_pii_features" in message
        assert "--comment" in message and "\n" not in message
    assert _decisions(store) == [] and len(_events(store, "approval.approve")) == before

    approved = approve(store, REV1, request.id, "email is hashed upstream", info(pii=["email"]))
    assert approved.status == "approved"
    (decision,) = approved.decisions
    assert decision.overrides == ["no_pii_features"]
    assert [d.overrides for d in _decisions(store)] == [["no_pii_features"]]
    (event,) = _events(store, "approval.approve")
    assert event.after["overrides"] == ["no_pii_features"]
    assert event.reason == "email is hashed upstream"
    assert verify(store).ok


def test_passing_checks_need_no_comment(store):
    request = request_approval(store, ALICE, MODEL, 1, "production", "", info())
    approved = approve(store, REV1, request.id, "", info())
    assert approved.status == "approved" and approved.decisions[0].overrides == []
    (event,) = _events(store, "approval.approve")
    assert event.after == {
        "status": "approved", "approvals": 1, "overrides": [], "frozen_digest": ""
    }  # fmt: skip


def test_each_high_risk_reviewer_overrides_with_a_comment(store):
    set_high_risk(store, ADMIN, MODEL, True, "credit decisions")
    failing = info(lineage={})
    request = request_approval(store, ALICE, MODEL, 1, "production", "", failing)
    with pytest.raises(UsageError, match="failed the checks lineage_complete"):
        approve(store, REV1, request.id, "", failing)
    first = approve(store, REV1, request.id, "lineage is in the wiki", failing)
    assert (first.status, first.approvals) == ("requested", 1)
    (review,) = _events(store, "approval.review")
    assert review.after["overrides"] == ["lineage_complete"]
    with pytest.raises(UsageError, match="failed the checks lineage_complete"):
        approve(store, REV2, request.id, "", failing)
    with pytest.raises(StateConflict):  # the version changed: no override helps
        approve(store, REV2, request.id, "ok", VersionInfo(exists=False))
    second = approve(store, REV2, request.id, "agreed", failing)
    assert second.status == "approved"
    assert [d.overrides for d in second.decisions] == [["lineage_complete"]] * 2
