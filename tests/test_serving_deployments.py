"""Deployments as records (issue 9, item 3): deploy, canary, promote, rollback, undeploy;
who sees and changes what; 409 when two changes of one deployment race; one audit event
per step. On SQLite and PostgreSQL (the ``store_url`` fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_mlplat.errors import ConflictError, NotFoundError, PermissionDenied, UsageError
from jupyter_mlplat.governance import audit
from jupyter_mlplat.identity import ROLE_REVIEWER, Identity
from jupyter_mlplat.serving import deployments as d
from jupyter_mlplat.serving.gate import Servable
from jupyter_mlplat.store.db import Store
from jupyter_mlplat.store.models import AuditEvent

ALICE = Identity("alice", ("churn",), "test")
BOB = Identity("bob", ("fraud",), "test")
RITA = Identity("rita", ("churn",), "test", roles=(ROLE_REVIEWER,))
VERA = Identity("vera", (), "test", roles=(ROLE_REVIEWER,))


def version(n: int, model: str = "churn-model", target: str = "staging") -> Servable:
    """What the gate hands over for an approved version (built as data here; the gate
    itself is tested on real approvals in test_serving_gate.py)."""
    return Servable(model, str(n), target, "churn", 100 + n, f"run{n}", f"{n:064x}",
                    Path(f"/frozen/{n}/model"))  # fmt: skip


@pytest.fixture
def store(store_url):
    store = Store(store_url, audit_key=b"k" * 32)
    yield store
    store.dispose()


def versions(row) -> list[tuple[str, int]]:
    return [(v["version"], percent) for v, percent in d.traffic(row)]


def test_deploy_canary_promote_rollback_undeploy(store):
    row = d.deploy(store, ALICE, version(1))
    assert row.name == "churn-model-staging" and versions(row) == [("1", 100)]
    assert row.primary["digest"] == f"{1:064x}" and row.primary["approval_id"] == 101
    row = d.deploy(store, ALICE, version(2), canary_percent=10)
    assert versions(row) == [("1", 90), ("2", 10)]
    assert d.pick(row, lambda: 0.05)["version"] == "2"
    assert d.pick(row, lambda: 0.5)["version"] == "1"
    draws = [i / 100 for i in range(100)]  # evenly over [0, 1): exactly the canary's share
    assert sum(d.pick(row, lambda x=x: x)["version"] == "2" for x in draws) == 10
    row = d.promote(store, ALICE, "churn-model-staging")
    assert versions(row) == [("2", 100)] and row.previous["version"] == "1"
    row = d.rollback(store, ALICE, "churn-model-staging")
    assert versions(row) == [("1", 100)]
    with pytest.raises(ConflictError, match="no earlier version"):
        d.rollback(store, ALICE, "churn-model-staging")
    row = d.deploy(store, ALICE, version(3), canary_percent=50)
    row = d.rollback(store, ALICE, "churn-model-staging")  # drops the canary
    assert versions(row) == [("1", 100)]
    with pytest.raises(ConflictError, match="no canary to promote"):
        d.promote(store, ALICE, "churn-model-staging")
    row = d.undeploy(store, ALICE, "churn-model-staging")
    assert d.traffic(row) == []
    with pytest.raises(NotFoundError, match="undeployed"):
        d.pick(row)
    with pytest.raises(ConflictError, match="undeployed"):
        d.promote(store, ALICE, "churn-model-staging")
    row = d.deploy(store, ALICE, version(4))
    assert versions(row) == [("4", 100)]
    # one audit event per step, chained and verifiable
    with store.session() as session:
        actions = [e.action for e in session.query(AuditEvent).order_by(AuditEvent.seq)]
    assert actions == [
        "deployment.deploy", "deployment.canary", "deployment.promote", "deployment.rollback",
        "deployment.canary", "deployment.rollback", "deployment.undeploy", "deployment.deploy",
    ]  # fmt: skip
    assert audit.verify(store).ok


def test_bad_input_is_one_sentence(store):
    with pytest.raises(UsageError, match="nothing to canary against"):
        d.deploy(store, ALICE, version(1), canary_percent=10)
    d.deploy(store, ALICE, version(1))
    for percent in (0, 100, -1, True, 12.5):
        with pytest.raises(UsageError, match="whole percentage from 1 to 99"):
            d.deploy(store, ALICE, version(2), canary_percent=percent)
    with pytest.raises(UsageError, match="already takes all"):
        d.deploy(store, ALICE, version(1), canary_percent=10)
    with pytest.raises(UsageError):  # not a DNS-1035 label: cannot be a KServe name either
        d.deploy(store, ALICE, version(1, model="Churn_Model"))
    with pytest.raises(NotFoundError, match="no deployment named 'nope-staging'"):
        d.get(store, ALICE, "nope-staging")


def test_other_teams_neither_see_nor_change_and_reviewers_only_see(store):
    d.deploy(store, ALICE, version(1))
    with pytest.raises(PermissionDenied, match="belongs to team 'churn'"):
        d.get(store, BOB, "churn-model-staging")
    with pytest.raises(PermissionDenied):
        d.undeploy(store, BOB, "churn-model-staging")
    assert d.list_for(store, BOB) == []
    assert [r.name for r in d.list_for(store, VERA)] == ["churn-model-staging"]
    with pytest.raises(PermissionDenied, match="only its team changes it"):
        d.rollback(store, VERA, "churn-model-staging")
    assert d.get(store, RITA, "churn-model-staging").team == "churn"


def test_two_changes_of_one_deployment_race_and_one_gets_409(store):
    d.deploy(store, ALICE, version(1))
    with pytest.raises(ConflictError, match="won the race"):
        d._create(store, ALICE, version(1), "churn-model-staging", d._version(version(1)))
    d.deploy(store, ALICE, version(2), canary_percent=20)

    def promote_meanwhile(row):  # another client promotes while this change is prepared
        d.promote(store, ALICE, "churn-model-staging")
        row.canary, row.canary_percent = None, 0
        return "deployment.rollback"

    with pytest.raises(ConflictError, match="changed by someone else"):
        d._change(store, ALICE, "churn-model-staging", promote_meanwhile)
    row = d.get(store, ALICE, "churn-model-staging")
    assert versions(row) == [("2", 100)]  # the winner's state, not a mix
