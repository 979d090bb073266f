"""The approval workflow of DESIGN §5 on SQLite and PostgreSQL (no MLflow, no HTTP)."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from jupyter_mlplat.errors import (
    ConflictError,
    NotFoundError,
    PermissionDenied,
    ServiceUnavailable,
    UsageError,
)
from jupyter_mlplat.governance import (
    POLICY_ACTOR,
    Policy,
    StateConflict,
    VersionInfo,
    approve,
    audit,
    check_deployable,
    claim_model,
    get_request,
    list_requests,
    mark_deployed,
    reject,
    request_approval,
    retire,
    set_high_risk,
    verify,
)
from jupyter_mlplat.identity import ROLE_ADMIN, ROLE_REVIEWER, Identity
from jupyter_mlplat.settings import MlplatSettings, reset_settings
from jupyter_mlplat.store import Store
from jupyter_mlplat.store.models import ApprovalRequest, AuditEvent, Decision
from tests.postgres import postgres_server, store_url  # noqa: F401 (fixtures)

ALICE = Identity("alice", ("churn",), "test")  # data scientist, requester
CAROL = Identity("carol", ("churn",), "test")  # teammate, no role
REV1 = Identity("rev1", ("risk",), "test", roles=(ROLE_REVIEWER,))
REV2 = Identity("rev2", ("risk",), "test", roles=(ROLE_REVIEWER,))
MALLORY = Identity("mallory", ("fraud",), "test")
ADMIN = Identity("root", ("platform",), "test", roles=(ROLE_ADMIN,))

LINEAGE = {
    "notebook_hash": "sha256:nb",
    "code_version": "git:abc123",
    "feature_refs": ["customer_stats:tenure"],
    "data_source": "parquet://churn.parquet",
}
MODEL = "churn-model"


def info(run="run1", digest="sha256:aaa", accuracy=0.9, pii=(), lineage=None, exists=True):
    return VersionInfo(
        run_id=run,
        artifact_digest=digest,
        metrics={"accuracy": accuracy} if accuracy is not None else {},
        lineage=dict(LINEAGE if lineage is None else lineage),
        features_pii=list(pii),
        exists=exists,
    )


@pytest.fixture
def settings(tmp_path):
    values = {"home": str(tmp_path / "home"), "user": "alice", "teams": ["churn"]}
    yield reset_settings(MlplatSettings(**values))
    reset_settings(None)


@pytest.fixture
def store(store_url, settings):  # noqa: F811 (fixture)
    store = Store(store_url)
    claim_model(store, ALICE, MODEL, "churn")
    yield store
    store.dispose()


def events(store, action=None):
    with store.session() as session:
        query = select(AuditEvent).order_by(AuditEvent.seq)
        if action:
            query = query.where(AuditEvent.action == action)
        return session.scalars(query).all()


def count(store, model):
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(model))


# ---- ownership ----


def test_first_registrant_team_owns_the_model(store):
    again = claim_model(store, CAROL, MODEL, "churn")
    assert (again.team, again.registered_by) == ("churn", "alice")
    with pytest.raises(PermissionDenied, match="owned by team 'churn'"):
        claim_model(store, MALLORY, MODEL, "fraud")
    with pytest.raises(PermissionDenied, match="not a member of team 'churn'"):
        claim_model(store, MALLORY, "other-model", "churn")
    assert [e.action for e in events(store)] == ["model.claim"]


def test_risk_flag_is_for_admins_and_audited(store):
    with pytest.raises(PermissionDenied, match="platform admins"):
        set_high_risk(store, REV1, MODEL, True, "credit decisions")
    assert set_high_risk(store, ADMIN, MODEL, True, "credit decisions").high_risk
    set_high_risk(store, ADMIN, MODEL, True, "again: no change")
    (event,) = events(store, "model.risk")
    assert (event.before, event.after, event.actor) == (
        {"high_risk": False},
        {"high_risk": True},
        "root",
    )


# ---- requests and automated checks ----


def test_unknown_model_or_version_is_not_found(store):
    with pytest.raises(NotFoundError, match=r"'churn-model' version 7 does not exist"):
        request_approval(store, ALICE, MODEL, 7, "staging", "", info(exists=False))
    with pytest.raises(NotFoundError, match="'ghost' is not registered"):
        request_approval(store, ALICE, "ghost", 1, "staging", "", info())
    assert count(store, ApprovalRequest) == 0


def test_other_team_and_bad_target(store):
    with pytest.raises(PermissionDenied, match="belongs to team 'churn'"):
        request_approval(store, MALLORY, MODEL, 1, "staging", "", info())
    with pytest.raises(UsageError, match="'prod' is not a deployment target"):
        request_approval(store, ALICE, MODEL, 1, "prod", "", info())
    assert count(store, ApprovalRequest) == 0


def test_staging_auto_approved_when_every_check_passes(store):
    request = request_approval(store, ALICE, MODEL, 1, "staging", "ship it", info())
    assert request.status == "approved" and request.checks_passed
    assert {c.name for c in request.checks} == {
        "metric_vs_baseline", "lineage_complete", "no_pii_features", "team_owns_model"
    }  # fmt: skip
    (decision,) = request.decisions
    assert (decision.reviewer, decision.verdict, decision.run_id) == (
        POLICY_ACTOR,
        "approve",
        "run1",
    )
    request_event, approve_event = events(store)[1:]
    assert (request_event.action, request_event.actor, request_event.reason) == (
        "approval.request", "alice", "ship it"
    )  # fmt: skip
    assert request_event.subject == "churn-model/1/staging"
    assert (approve_event.action, approve_event.actor) == ("approval.approve", POLICY_ACTOR)
    assert (approve_event.before, approve_event.after) == (
        {"status": "requested"},
        {"status": "approved"},
    )


def test_production_always_needs_people(store):
    request = request_approval(store, ALICE, MODEL, 1, "production", "", info())
    assert request.checks_passed and request.status == "requested" and not request.decisions


def test_failed_checks_block_auto_approval_and_record_inputs(store):
    request = request_approval(
        store, ALICE, MODEL, 1, "staging", "", info(pii=["email", "email"], lineage={})
    )
    assert request.status == "requested"
    checks = {c.name: c for c in request.checks}
    assert not checks["no_pii_features"].passed
    assert checks["no_pii_features"].inputs == {"pii_features": ["email"]}
    lineage = checks["lineage_complete"]
    assert not lineage.passed
    assert lineage.inputs["missing"] == [
        "notebook_hash",
        "code_version",
        "feature_refs",
        "data_source",
    ]
    assert lineage.inputs["lineage"]["run_id"] == "run1"
    assert checks["team_owns_model"].passed
    assert checks["team_owns_model"].inputs["owner_team"] == "churn"


def test_high_risk_models_are_never_auto_approved(store, settings):
    settings.high_risk_models = [MODEL]
    policy = Policy.from_settings(settings)
    request = request_approval(store, ALICE, MODEL, 1, "staging", "", info(), policy=policy)
    assert request.checks_passed and request.high_risk and request.approvals_required == 2
    assert request.status == "requested"


def test_metric_against_baseline(store, settings):
    settings.approval_min_improvement = 0.01
    policy = Policy.from_settings(settings)
    first = request_approval(
        store, ALICE, MODEL, 1, "staging", "", info(accuracy=0.9), policy=policy
    )
    assert first.status == "approved"
    assert first.checks[0].inputs["rule"] == "no baseline yet"

    worse = request_approval(
        store, ALICE, MODEL, 2, "staging", "", info("run2", "d2", 0.905), policy=policy
    )
    metric = worse.checks[0]
    assert worse.status == "requested" and not metric.passed
    assert metric.inputs["value"] == 0.905
    assert metric.inputs["baseline_value"] == 0.9
    assert metric.inputs["baseline_version"] == "1"
    assert metric.inputs["rule"] == "accuracy >= baseline + 0.01"

    better = request_approval(
        store, ALICE, MODEL, 3, "staging", "", info("run3", "d3", 0.95), policy=policy
    )
    assert better.checks[0].passed and better.status == "approved"

    missing = request_approval(
        store, ALICE, MODEL, 4, "staging", "", info("run4", "d4", None), policy=policy
    )
    assert not missing.checks[0].passed
    assert "no numeric metric 'accuracy'" in missing.checks[0].message


def test_policy_comes_from_settings(settings):
    settings.approval_metric = "rmse"
    settings.approval_metric_greater_is_better = False
    settings.approval_min_metric = 3.0
    settings.approval_baseline = "deployed"
    settings.staging_auto_approval = False
    policy = Policy.from_settings(settings)
    assert (policy.metric, policy.greater_is_better, policy.min_metric) == ("rmse", False, 3.0)
    assert policy.baseline == "deployed" and not policy.may_auto_approve("staging", True, False)


def test_duplicate_request_returns_the_open_one(store):
    first = request_approval(store, ALICE, MODEL, 1, "production", "", info())
    before = len(events(store))
    again = request_approval(store, CAROL, MODEL, "1", "production", "other reason", info())
    assert again.id == first.id and again.requester == "alice"
    assert count(store, ApprovalRequest) == 1
    assert len(events(store)) == before


def test_concurrent_duplicate_requests_make_one(store):
    barrier = threading.Barrier(3)
    ids: list[object] = []

    def ask(who):
        barrier.wait()
        try:
            ids.append(request_approval(store, who, MODEL, 1, "production", "", info()).id)
        except Exception as error:  # noqa: BLE001 - collected for the assertion
            ids.append(error)

    threads = [threading.Thread(target=ask, args=(who,)) for who in (ALICE, CAROL, ALICE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(set(ids)) == 1 and isinstance(ids[0], int), ids
    assert count(store, ApprovalRequest) == 1
    assert len(events(store, "approval.request")) == 1


def test_request_for_a_changed_version_supersedes_the_pending_one(store):
    first = request_approval(store, ALICE, MODEL, 1, "production", "", info())
    second = request_approval(store, ALICE, MODEL, 1, "production", "", info(digest="sha256:bbb"))
    assert second.id != first.id and second.artifact_digest == "sha256:bbb"
    assert get_request(store, ALICE, first.id).status == "rejected"
    (event,) = events(store, "approval.supersede")
    assert event.actor == POLICY_ACTOR and "sha256:aaa → sha256:bbb" in event.reason


# ---- decisions ----


def test_requester_cannot_approve_even_with_another_identity(store):
    alice_reviewer = Identity("alice", ("churn", "risk"), "other token", roles=(ROLE_REVIEWER,))
    request = request_approval(store, alice_reviewer, MODEL, 1, "production", "", info())
    for who in (alice_reviewer, ALICE, Identity("alice", (), "hub", roles=(ROLE_REVIEWER,))):
        with pytest.raises(PermissionDenied, match="four eyes"):
            approve(store, who, request.id, "", info())
        with pytest.raises(PermissionDenied, match="four eyes"):
            reject(store, who, request.id, "nope")
    assert get_request(store, REV1, request.id).status == "requested"


def test_approver_needs_reviewer_role_or_ownership(store):
    request = request_approval(store, CAROL, MODEL, 1, "production", "", info())
    with pytest.raises(PermissionDenied, match="Only a reviewer or the owner"):
        approve(store, MALLORY, request.id, "", info())
    # alice registered the model: the owner may approve a teammate's request.
    approved = approve(store, ALICE, request.id, "owner ok", info())
    assert approved.status == "approved" and approved.decisions[0].reviewer == "alice"


def test_high_risk_needs_two_distinct_reviewers(store):
    set_high_risk(store, ADMIN, MODEL, True, "credit")
    request = request_approval(store, CAROL, MODEL, 1, "production", "", info())
    with pytest.raises(PermissionDenied, match="high risk"):
        approve(store, ALICE, request.id, "", info())  # the owner is not enough here
    first = approve(store, REV1, request.id, "looks fine", info())
    assert (first.status, first.approvals) == ("requested", 1)
    with pytest.raises(StateConflict, match="already decided"):
        approve(store, REV1, request.id, "again", info())
    second = approve(store, REV2, request.id, "agreed", info())
    assert (second.status, second.approvals) == ("approved", 2)
    assert [e.action for e in events(store)][-3:] == [
        "approval.request", "approval.review", "approval.approve"
    ]  # fmt: skip


def test_reject_needs_a_comment(store):
    request = request_approval(store, ALICE, MODEL, 1, "production", "", info())
    for comment in ("", "   "):
        with pytest.raises(UsageError, match="needs a comment"):
            reject(store, REV1, request.id, comment)
    rejected = reject(store, REV1, request.id, "metric too low")
    assert rejected.status == "rejected" and rejected.decisions[0].verdict == "reject"
    (event,) = events(store, "approval.reject")
    assert (event.reason, event.after) == ("metric too low", {"status": "rejected"})


def test_changed_version_cannot_be_approved(store):
    request = request_approval(store, ALICE, MODEL, 1, "production", "", info())
    for current, what in (
        (info(digest="sha256:zzz"), "artifact sha256:aaa → sha256:zzz"),
        (info(run="run9"), "run run1 → run9"),
        (info(exists=False), "no longer exists"),
    ):
        with pytest.raises(StateConflict, match=f"changed since request #{request.id}.*{what}"):
            approve(store, REV1, request.id, "", current)
    assert issubclass(StateConflict, ConflictError) and StateConflict.http_status == 409
    assert get_request(store, REV1, request.id).status == "requested"
    assert count(store, Decision) == 0


def test_only_open_requests_can_be_decided(store):
    request = request_approval(store, ALICE, MODEL, 1, "production", "", info())
    approve(store, REV1, request.id, "", info())
    with pytest.raises(StateConflict, match="already approved"):
        approve(store, REV2, request.id, "", info())
    with pytest.raises(StateConflict, match="already approved"):
        reject(store, REV2, request.id, "late")
    with pytest.raises(NotFoundError, match="#999 does not exist"):
        approve(store, REV2, 999, "", info())


def test_concurrent_approvals_make_one_transition(store):
    request = request_approval(store, ALICE, MODEL, 1, "production", "", info())
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def review(who):
        barrier.wait()
        try:
            outcomes[who.user] = approve(store, who, request.id, "ok", info()).status
        except Exception as error:  # noqa: BLE001 - collected for the assertion
            outcomes[who.user] = error

    threads = [threading.Thread(target=review, args=(who,)) for who in (REV1, REV2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    results = list(outcomes.values())
    assert results.count("approved") == 1, outcomes
    assert sum(isinstance(r, StateConflict) for r in results) == 1, outcomes
    assert len(events(store, "approval.approve")) == 1
    assert count(store, Decision) == 1
    assert verify(store).ok


# ---- deployment ----


def test_deploy_requires_an_approval_for_that_version_and_target(store):
    request = request_approval(store, ALICE, MODEL, 1, "production", "", info())
    with pytest.raises(PermissionDenied, match=r"no approval for production \(request #"):
        mark_deployed(store, ALICE, MODEL, 1, "production")
    request_approval(store, ALICE, MODEL, 1, "staging", "", info())  # auto-approved
    with pytest.raises(PermissionDenied, match="no approval for production"):
        check_deployable(store, ALICE, MODEL, 2, "production")
    approve(store, REV1, request.id, "", info())
    assert check_deployable(store, ALICE, MODEL, 1, "production").id == request.id
    with pytest.raises(PermissionDenied, match="belongs to team 'churn'"):
        mark_deployed(store, MALLORY, MODEL, 1, "production")
    with pytest.raises(StateConflict, match="changed since it was approved"):
        mark_deployed(store, ALICE, MODEL, 1, "production", current=info(digest="x"))
    assert mark_deployed(store, CAROL, MODEL, 1, "production", "rollout").status == "deployed"
    mark_deployed(store, CAROL, MODEL, 1, "production", "again: no change")
    (event,) = events(store, "approval.deploy")
    assert (event.before, event.after, event.reason) == (
        {"status": "approved"}, {"status": "deployed"}, "rollout"
    )  # fmt: skip

    assert retire(store, ALICE, MODEL, 1, "production", "replaced").status == "retired"
    with pytest.raises(PermissionDenied, match="no approval for production"):
        mark_deployed(store, ALICE, MODEL, 1, "production")
    with pytest.raises(NotFoundError, match="no approved or deployed request"):
        retire(store, ALICE, MODEL, 1, "production")


# ---- reading ----


def test_listing_and_reading_follow_teams(store):
    claim_model(store, MALLORY, "fraud-model", "fraud")
    own = request_approval(store, ALICE, MODEL, 1, "production", "", info())
    other = request_approval(store, MALLORY, "fraud-model", 1, "production", "", info())
    request_approval(store, ALICE, MODEL, 1, "staging", "", info())  # approved at once

    assert [r.id for r in list_requests(store, ALICE).items] == [own.id, own.id + 2]
    assert [r.id for r in list_requests(store, ALICE, pending=True).items] == [own.id]
    assert [r.id for r in list_requests(store, REV1, pending=True).items] == [own.id, other.id]
    assert len(list_requests(store, ADMIN).items) == 3
    assert [r.model for r in list_requests(store, REV1, model=MODEL).items] == [MODEL, MODEL]

    with pytest.raises(PermissionDenied, match="belongs to team 'fraud'"):
        get_request(store, ALICE, other.id)
    described = get_request(store, REV1, other.id)
    assert described.subject == "fraud-model/1/production" and len(described.checks) == 4
    with pytest.raises(NotFoundError, match="#12345 does not exist"):
        get_request(store, REV1, 12345)


# ---- one audit event per change, nothing half-written ----


def test_every_state_change_writes_one_event(store):
    request = request_approval(store, ALICE, MODEL, 1, "production", "", info())
    approve(store, REV1, request.id, "ok", info())
    mark_deployed(store, ALICE, MODEL, 1, "production")
    retire(store, ALICE, MODEL, 1, "production")
    rejected = request_approval(store, ALICE, MODEL, 2, "production", "", info("r2", "d2"))
    reject(store, REV1, rejected.id, "no")
    actions = [e.action for e in events(store)]
    assert actions == [
        "model.claim", "approval.request", "approval.approve", "approval.deploy",
        "approval.retire", "approval.request", "approval.reject",
    ]  # fmt: skip
    subject = [e.subject for e in events(store)][1:5]
    assert set(subject) == {"churn-model/1/production"}
    statuses = [(e.before or {}).get("status") for e in events(store)[1:]]
    assert statuses == [None, "requested", "approved", "deployed", None, "requested"]
    assert verify(store).ok and verify(store).events == 7


@pytest.mark.parametrize("failure", [RuntimeError("injected"), "operational"])
def test_failure_before_the_audit_event_rolls_back_the_transition(store, monkeypatch, failure):
    from sqlalchemy.exc import OperationalError

    request = request_approval(store, ALICE, MODEL, 1, "production", "", info())
    before = len(events(store))
    error = OperationalError("INSERT", {}, Exception("server closed the connection"))
    raised = failure if isinstance(failure, Exception) else error

    def broken_append(session, *args, **kwargs):
        # The status update is already flushed to the database when this runs.
        assert session.get(ApprovalRequest, request.id).status == "approved"
        raise raised

    monkeypatch.setattr(audit, "append", broken_append)
    expected = RuntimeError if isinstance(failure, Exception) else ServiceUnavailable
    with pytest.raises(expected):
        approve(store, REV1, request.id, "ok", info())
    monkeypatch.undo()
    assert get_request(store, REV1, request.id).status == "requested"
    assert count(store, Decision) == 0 and len(events(store)) == before
    # The same approval goes through once the failure is gone.
    assert approve(store, REV1, request.id, "ok", info()).status == "approved"
    assert verify(store).ok


def test_versions_are_strings_and_info_is_a_dataclass():
    base = info()
    assert replace(base, exists=False).exists is False
    assert VersionInfo().metrics == {} and VersionInfo().features_pii == []
