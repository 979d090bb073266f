"""Facts users cannot forge, and frozen approved artifacts (issue 8, item 3).

A run's team is its experiment's team (never the ``mlplat.team`` tag); a version's facts
come from a run in an experiment of the owning team; a request freezes the version's
files into platform-owned, content-addressed storage and decisions bind to that copy.
Real MLflow server, real store, real sklearn models; no mocks.
"""

from __future__ import annotations

import json
import stat
import uuid
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from jupyter_mlplat.client import PlatformClient
from jupyter_mlplat.display import ApprovalView
from jupyter_mlplat.errors import ConflictError, NotFoundError, PermissionDenied
from jupyter_mlplat.governance import frozen, registry
from jupyter_mlplat.identity import ROLE_REVIEWER, Identity
from jupyter_mlplat.store.db import get_store
from jupyter_mlplat.store.models import ApprovalRequest, AuditEvent
from jupyter_mlplat.tracking import Tracker

ALICE = Identity("alice", ("churn",), "test")
BOB = Identity("bob", ("fraud",), "test")
RITA = Identity("rita", ("churn",), "test", roles=(ROLE_REVIEWER,))
X = np.array([[0.1, 1.0], [0.2, 0.0], [0.8, 1.0], [0.9, 0.0]] * 5)
Y = np.array([0, 0, 1, 1] * 5)


@pytest.fixture
def ops(configure, mlflow_server, tmp_path):
    """``ops(identity)``: an in-process PlatformClient on the real MLflow server and a
    SQLite store of this test; ``ops.settings``, ``ops.store``."""
    settings = configure(tracking_uri=mlflow_server.uri)
    settings.store_url = f"sqlite:///{tmp_path / 'platform.db'}"

    def as_user(identity: Identity) -> PlatformClient:
        return PlatformClient(settings, transport="inprocess", identity=identity)

    as_user.settings = settings
    as_user.store = get_store(settings)
    return as_user


@pytest.fixture
def train(configure, mlflow_server):
    """``train(team, experiment="x", tag_team=None)``: a real sklearn model logged
    explicitly in a run of ``<team>/<experiment>``; returns the run id."""
    import mlflow

    def _train(team: str, experiment: str = "x", tag_team: str | None = None) -> str:
        from sklearn.linear_model import LogisticRegression

        settings = configure(tracking_uri=mlflow_server.uri, teams=[team], user=f"{team}-user")
        tracker = Tracker(settings)
        tracker.set_experiment(experiment)
        with tracker.run("train", autolog=False) as info:
            mlflow.sklearn.log_model(LogisticRegression().fit(X, Y), name="model")
            mlflow.log_metric("accuracy", 0.9)
            if tag_team is not None:
                mlflow.set_tag(registry.TEAM_TAG, tag_team)
        return info.run_id

    return _train


def model_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def server_model_files(mlflow_server, client: MlflowClient, name: str, version: str) -> Path:
    """The folder on the MLflow server's disk holding the version's model files."""
    mv = client.get_model_version(name, version)
    model_id = mv.model_id or mv.source.rsplit("/", 1)[-1]
    (found,) = {
        p.parent
        for p in (Path(mlflow_server.root) / "artifacts").rglob("model.skops")
        if model_id in p.as_posix()
    }
    return found


def events(store) -> int:
    with store.session() as session:
        return session.query(AuditEvent).count()


# ---- facts from where they cannot be forged ----


def test_a_runs_team_is_its_experiments_not_its_tag(ops, train, mlflow_server):
    run_id = train("churn", tag_team="fraud")
    assert MlflowClient(mlflow_server.uri).get_run(run_id).data.tags["mlplat.team"] == "fraud"
    assert registry.run_team(ops.settings, run_id) == "churn"
    name = model_name("tagged")
    version = ops(ALICE).register_model(name, run_id)  # churn's run, whatever the tag says
    assert version.version == "1"
    assert ops(ALICE).request_approval(name, "1", "staging").requester_team == "churn"


def test_a_retagged_run_registered_by_another_team_is_refused(ops, train, mlflow_server):
    run_id = train("churn")
    MlflowClient(mlflow_server.uri).set_tag(run_id, "mlplat.team", "fraud")  # bob re-tags it
    name = model_name("stolen")
    with pytest.raises(PermissionDenied) as refused:
        ops(BOB).register_model(name, run_id)
    message = str(refused.value)
    assert "belongs to team 'churn'" in message and "you (bob) are not a member" in message
    assert "mlplat.team tag does not decide" in message and "\n" not in message
    assert MlflowClient(mlflow_server.uri).search_model_versions(f"name='{name}'") == []
    with pytest.raises(PermissionDenied, match="not to team 'fraud'"):
        registry.register(ops.settings, run_id, name, None, "fraud")  # the domain says so too


def test_a_version_made_outside_the_platform_from_another_teams_run_is_refused(
    ops, train, mlflow_server
):
    """A version of churn's model made in MLflow directly from a fraud run: its metrics and
    lineage are not churn's facts, so no request can be made for it."""
    name = model_name("mixed")
    ops(ALICE).register_model(name, train("churn"))
    fraud_run = train("fraud", tag_team="churn")
    client = MlflowClient(mlflow_server.uri)
    source = registry.model_uri_for_run(ops.settings, fraud_run, None)
    client.create_model_version(name, source, run_id=fraud_run, model_id=source.split("/")[-1])
    with pytest.raises(PermissionDenied, match=r"not an experiment of the owning team 'churn'"):
        ops(ALICE).request_approval(name, "2", "staging")
    with ops.store.session() as session:
        assert session.query(ApprovalRequest).filter_by(model=name, version="2").count() == 0


# ---- frozen approved artifacts ----


def test_approval_binds_to_the_frozen_copy_and_later_changes_change_nothing(
    ops, train, mlflow_server
):
    name = model_name("frozen")
    version = ops(ALICE).register_model(name, train("churn"))
    request = ops(ALICE).request_approval(name, version.version, "production", reason="ship")
    digest = request.frozen_digest
    assert len(digest) == 64 and digest == request.artifact_digest == version.artifact_digest
    copy = Path(ops.settings.frozen_artifacts_dir) / "sha256" / digest
    for folder in (copy, copy.parent, copy / "model"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["digest"] == digest
    assert frozen.manifest_digest(manifest["files"]) == digest
    assert "model.skops" in {path for path, _ in manifest["files"]}
    assert not list((Path(ops.settings.frozen_artifacts_dir) / "tmp").iterdir())
    shown = ApprovalView(ops(ALICE).show_approval(request.id))
    assert f"frozen copy sha256 {digest}" in repr(shown) and digest in shown._repr_html_()

    approved = ops(RITA).approve(request.id, "reviewed the frozen copy")
    assert approved.status == "approved" and approved.frozen_digest == digest
    assert [d.frozen_digest for d in approved.decisions] == [digest]
    with ops.store.session() as session:
        last = session.query(AuditEvent).order_by(AuditEvent.seq.desc()).first()
        assert last.action == "approval.approve" and last.after["frozen_digest"] == digest

    # The run's model file is replaced on the MLflow server after the approval.
    client = MlflowClient(mlflow_server.uri)
    original = (copy / "model" / "model.skops").read_bytes()
    served = server_model_files(mlflow_server, client, name, version.version) / "model.skops"
    served.write_bytes(b"replaced by someone else")
    check = frozen.verify(ops.settings, digest)
    assert check.ok and check.path == copy, check.reason
    assert (copy / "model" / "model.skops").read_bytes() == original
    assert ops(RITA).show_approval(request.id).frozen_digest == digest

    # Tampering with the frozen copy itself is detected, and nothing is decided on it.
    (copy / "model" / "model.skops").write_bytes(b"tampered")
    check = frozen.verify(ops.settings, digest)
    assert not check.ok and "was changed" in check.reason
    with pytest.raises(ConflictError, match="request approval again"):
        frozen.require_intact(ops.settings, digest, request.id)
    (copy / "model" / "extra.py").write_text("import os")
    (copy / "model" / "model.skops").write_bytes(original)
    assert not frozen.verify(ops.settings, digest).ok  # an added file changes the digest too
    (copy / "model" / "extra.py").unlink()
    assert frozen.verify(ops.settings, digest).ok


def test_a_tampered_frozen_copy_cannot_be_approved(ops, train):
    name = model_name("tamper")
    version = ops(ALICE).register_model(name, train("churn"))
    request = ops(ALICE).request_approval(name, version.version, "production")
    copy = Path(ops.settings.frozen_artifacts_dir) / "sha256" / request.frozen_digest
    (copy / "model" / "model.skops").write_bytes(b"tampered")
    before = events(ops.store)
    with pytest.raises(ConflictError, match="was changed"):
        ops(RITA).approve(request.id, "looks fine")
    assert ops(RITA).show_approval(request.id).decisions == [] and events(ops.store) == before
    again = ops(ALICE).request_approval(name, version.version, "production")
    assert again.id == request.id  # the same open request; its copy was put back
    assert ops(RITA).approve(request.id, "copy restored").status == "approved"


def test_a_version_whose_files_cannot_be_downloaded_leaves_nothing(ops, train, mlflow_server):
    import shutil

    name = model_name("gone")
    version = ops(ALICE).register_model(name, train("churn"))
    client = MlflowClient(mlflow_server.uri)
    shutil.rmtree(server_model_files(mlflow_server, client, name, version.version))
    before = events(ops.store)
    with pytest.raises(NotFoundError) as failed:
        ops(ALICE).request_approval(name, version.version, "staging")
    message = str(failed.value)
    assert message.startswith(f"The model artifacts of model {name!r} version 1 could not be")
    assert "\n" not in message
    with ops.store.session() as session:
        assert session.query(ApprovalRequest).filter_by(model=name).count() == 0
    assert events(ops.store) == before
    root = Path(ops.settings.frozen_artifacts_dir)
    assert list((root / "tmp").iterdir()) == [] and list((root / "sha256").iterdir()) == []


def test_freezing_the_same_files_twice_keeps_one_copy(configure, tmp_path):
    settings = configure()
    for _ in range(2):
        with frozen.staging(settings) as model_dir:
            (model_dir / "sub").mkdir()
            (model_dir / "MLmodel").write_text("flavors: {}\n")
            (model_dir / "sub" / "w.bin").write_bytes(b"\x00\x01")
            copy = frozen.freeze(settings, model_dir)
    root = Path(settings.frozen_artifacts_dir)
    assert [p.name for p in (root / "sha256").iterdir()] == [copy.digest]
    assert (copy.files, copy.bytes) == (2, len("flavors: {}\n") + 2)
    assert copy.digest == frozen.folder_digest(copy.model_path)
    assert stat.S_IMODE((copy.model_path / "MLmodel").stat().st_mode) == 0o600
    assert list((root / "tmp").iterdir()) == []
    assert not frozen.verify(settings, "0" * 64).ok  # no such copy
