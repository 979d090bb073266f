"""The automated checks run on every approval request (DESIGN §5).

Each check returns its verdict together with the inputs it judged, so a reviewer
(and the audit) can see why: the metric against the model's baseline, complete
lineage, no PII-flagged features, and the requester's team owning the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..identity import Identity
from ..store.models import ApprovalRequest, json_safe
from .policy import Policy

METRIC = "metric_vs_baseline"
LINEAGE = "lineage_complete"
NO_PII = "no_pii_features"
TEAM_OWNS = "team_owns_model"


@dataclass(frozen=True)
class VersionInfo:
    """What the registry (MLflow) says about a model version, supplied by the caller.

    ``lineage`` holds ``notebook_hash``, ``code_version``, ``feature_refs`` and
    ``data_source`` (``run_id`` defaults to :attr:`run_id`); ``features_pii`` names
    the PII-flagged features the version uses; ``exists`` is False for an unknown
    model or version.
    """

    run_id: str = ""
    artifact_digest: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    features_pii: list[str] = field(default_factory=list)
    exists: bool = True


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    inputs: dict[str, Any]
    message: str


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | tuple | dict) and not value)


def baseline_request(
    session: Session, policy: Policy, model: str, version: str, target: str
) -> ApprovalRequest | None:
    """The request whose version is the bar for ``model`` at ``target`` (None: no bar yet)."""
    if policy.baseline == "none":
        return None
    statuses = ("deployed",) if policy.baseline == "deployed" else ("approved", "deployed")
    query = (
        select(ApprovalRequest)
        .where(
            ApprovalRequest.model == model,
            ApprovalRequest.target == target,
            ApprovalRequest.version != version,
            ApprovalRequest.status.in_(statuses),
        )
        .order_by(ApprovalRequest.updated_at.desc(), ApprovalRequest.id.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def check_metric(
    policy: Policy, info: VersionInfo, baseline: ApprovalRequest | None
) -> CheckResult:
    name, better = policy.metric, policy.greater_is_better
    value = _number(info.metrics.get(name))
    base = _number((baseline.metrics or {}).get(name)) if baseline is not None else None
    sign = 1 if better else -1
    inputs: dict[str, Any] = {
        "metric": name,
        "value": info.metrics.get(name),
        "greater_is_better": better,
        "min_improvement": policy.min_improvement,
        "min_metric": policy.min_metric,
        "baseline_rule": policy.baseline,
        "baseline_version": baseline.version if baseline is not None else None,
        "baseline_request_id": baseline.id if baseline is not None else None,
        "baseline_value": base,
    }
    op = ">=" if better else "<="
    if value is None:
        return CheckResult(
            METRIC,
            False,
            inputs,
            f"Run {info.run_id} has no numeric metric {name!r}; log it in the run with "
            f"`%mlplat log {name}=...` (or set c.MlplatSettings.approval_metric).",
        )
    if policy.min_metric is not None and sign * (value - policy.min_metric) < 0:
        inputs["rule"] = f"{name} {op} {policy.min_metric}"
        return CheckResult(
            METRIC,
            False,
            inputs,
            f"{name} {value} misses the required {op} {policy.min_metric}; train a better "
            "model and register it as a new version (the bar is "
            "c.MlplatSettings.approval_min_metric).",
        )
    if base is None:
        inputs["rule"] = "no baseline yet"
        return CheckResult(METRIC, True, inputs, f"{name} {value}; no baseline to compare with.")
    required = base + sign * policy.min_improvement
    inputs["rule"] = f"{name} {op} baseline {'+' if better else '-'} {policy.min_improvement}"
    passed = sign * (value - required) >= 0
    if passed:
        message = f"{name} {value} meets {op} {required} (version {baseline.version}: {base})."
    else:
        message = (
            f"{name} {value} misses {op} {required} (version {baseline.version}: {base}); "
            f"register a version that beats the baseline by {policy.min_improvement}, or a "
            "reviewer may approve it with a comment saying why."
        )
    return CheckResult(METRIC, passed, inputs, message)


def check_lineage(policy: Policy, info: VersionInfo) -> CheckResult:
    lineage = {"run_id": info.run_id, **(info.lineage or {})}
    missing = [key for key in policy.required_lineage if _missing(lineage.get(key))]
    inputs = {
        "lineage": {key: lineage.get(key) for key in sorted(set(lineage) | set(missing))},
        "required": list(policy.required_lineage),
        "missing": missing,
    }
    if missing:
        return CheckResult(LINEAGE, False, inputs, _lineage_message(missing))
    return CheckResult(LINEAGE, True, inputs, "Lineage is complete.")


# Which step records each lineage field (see tracking.capture and fluent.get_features).
LINEAGE_STEPS = {
    "run_id": "register a model logged inside an MLflow run",
    "notebook_hash": "train in a saved notebook, or set MLPLAT_NOTEBOOK_PATH to it",
    "code_version": "train in a git repository or a saved notebook",
    "feature_refs": "fetch features with `%mlplat features VIEW:FEATURE --entities VAR` "
    "inside the `%%mlplat run` cell",
    "data_source": "fetch features with `%mlplat features VIEW:FEATURE --entities VAR` "
    "inside the `%%mlplat run` cell",
}


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _lineage_message(missing: list[str]) -> str:
    """One sentence: the missing fields, grouped by the step that would record them."""
    steps: dict[str, list[str]] = {}
    for key in missing:
        steps.setdefault(LINEAGE_STEPS.get(key, "record it on the run"), []).append(key)
    parts = [f"{_and(keys)} ({step})" for step, keys in steps.items()]
    return f"Lineage lacks {'; '.join(parts)}; then train again and register the new run."


def check_pii(info: VersionInfo) -> CheckResult:
    pii = sorted(set(info.features_pii or ()))
    inputs = {"pii_features": pii}
    if pii:
        return CheckResult(
            NO_PII,
            False,
            inputs,
            f"Uses PII-flagged features: {', '.join(pii)}; train without them, or a reviewer "
            "may approve it with a comment saying why.",
        )
    return CheckResult(NO_PII, True, inputs, "No PII-flagged features.")


def check_team(identity: Identity, owner_team: str) -> CheckResult:
    inputs = {
        "owner_team": owner_team,
        "requester": identity.user,
        "requester_teams": list(identity.teams),
    }
    if owner_team in identity.teams:
        return CheckResult(TEAM_OWNS, True, inputs, f"Requester is in owning team {owner_team}.")
    return CheckResult(
        TEAM_OWNS,
        False,
        inputs,
        f"Requester is not in team {owner_team}; ask a member of {owner_team} to request approval.",
    )


def run_checks(
    session: Session,
    policy: Policy,
    identity: Identity,
    owner_team: str,
    model: str,
    version: str,
    target: str,
    info: VersionInfo,
) -> list[CheckResult]:
    """Every automated check of a request, inputs made JSON-safe for storage."""
    baseline = baseline_request(session, policy, model, version, target)
    results = [
        check_metric(policy, info, baseline),
        check_lineage(policy, info),
        check_pii(info),
        check_team(identity, owner_team),
    ]
    return [CheckResult(r.name, r.passed, json_safe(r.inputs), r.message) for r in results]
