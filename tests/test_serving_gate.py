"""The deploy gate (issue 9, item 1): only a version approved for the target, served from
its intact frozen copy; one sentence naming what is missing otherwise. Real MLflow server,
real store, real sklearn models (the fixtures of test_frozen_facts.py)."""

from __future__ import annotations

import pytest

from jupyter_mlplat.errors import ConflictError, NotFoundError, PermissionDenied, UsageError
from jupyter_mlplat.governance import frozen
from jupyter_mlplat.identity import ROLE_ADMIN, Identity
from jupyter_mlplat.serving.gate import servable
from tests.test_frozen_facts import ALICE, BOB, RITA, model_name, ops, train  # noqa: F401

OPS = Identity("ops", (), "test", roles=(ROLE_ADMIN,))


@pytest.fixture
def approved(ops, train):  # noqa: F811
    """A model of churn, version 1 approved for staging (by rita: this run's lineage is not
    complete, so it is not automatic) and requested for production."""
    name = model_name("gate")
    version = ops(ALICE).register_model(name, train("churn")).version
    staging = ops(ALICE).request_approval(name, version, "staging")
    staging = ops(RITA).approve(staging.id, "lineage checked by hand for this test")
    assert staging.status == "approved", staging
    production = ops(ALICE).request_approval(name, version, "production")
    return name, version, staging, production


def test_an_approved_version_is_served_from_its_frozen_copy(ops, approved):  # noqa: F811
    name, version, staging, _ = approved
    found = servable(ops.store, ops.settings, ALICE, name, version, "staging")
    assert found.frozen_digest == staging.frozen_digest and found.approval_id == staging.id
    assert found.model_path == frozen.path_of(ops.settings, staging.frozen_digest) / "model"
    assert (found.model_path / "MLmodel").is_file() and found.team == "churn"
    # an admin may deploy any team's model
    assert (
        servable(ops.store, ops.settings, OPS, name, version, "staging").approval_id == staging.id
    )


def test_what_is_missing_is_named(ops, approved):  # noqa: F811
    name, version, _, production = approved
    with pytest.raises(
        PermissionDenied, match=f"waiting for a reviewer on request #{production.id}"
    ):
        servable(ops.store, ops.settings, ALICE, name, version, "production")
    ops(RITA).reject(production.id, "not yet")
    with pytest.raises(PermissionDenied, match="approved for staging, not production"):
        servable(ops.store, ops.settings, ALICE, name, version, "production")
    with pytest.raises(PermissionDenied, match="has no approval for staging"):
        servable(ops.store, ops.settings, ALICE, name, "2", "staging")
    with pytest.raises(PermissionDenied, match="belongs to team 'churn'"):
        servable(ops.store, ops.settings, BOB, name, version, "staging")
    with pytest.raises(NotFoundError, match="not registered"):
        servable(ops.store, ops.settings, ALICE, "no-such-model", "1", "staging")
    with pytest.raises(UsageError, match="--target staging or --target production"):
        servable(ops.store, ops.settings, ALICE, name, version, "prod")


def test_a_changed_frozen_copy_is_never_served(ops, approved):  # noqa: F811
    name, version, staging, _ = approved
    folder = frozen.path_of(ops.settings, staging.frozen_digest) / "model"
    weights = next(p for p in folder.rglob("*") if p.is_file() and p.name != "MLmodel")
    weights.chmod(0o600)
    weights.write_bytes(weights.read_bytes() + b"tampered")
    with pytest.raises(ConflictError, match="was changed"):
        servable(ops.store, ops.settings, ALICE, name, version, "staging")
