"""Governance: model ownership, approval requests with automated checks, reviewers'
decisions and a hash-chained audit log, all in the platform store (DESIGN §5).

Callers (registration, the REST service, the client, magics) pass the caller's
:class:`~jupyter_mlplat.identity.Identity` and, for a model version, a
:class:`VersionInfo` read from MLflow; results are the REST schemas of
:mod:`jupyter_mlplat.api.governance` (pure data).
"""

from __future__ import annotations

from .audit import append, export, list_events, verify
from .checks import VersionInfo
from .ownership import claim_model, get_ownership, set_high_risk
from .policy import POLICY_ACTOR, Policy, check_audit_reader
from .queries import get_request, list_requests
from .workflow import (
    StateConflict,
    approve,
    check_deployable,
    mark_deployed,
    reject,
    request_approval,
    retire,
)

__all__ = [
    "POLICY_ACTOR",
    "Policy",
    "StateConflict",
    "VersionInfo",
    "append",
    "approve",
    "check_audit_reader",
    "check_deployable",
    "claim_model",
    "export",
    "get_ownership",
    "get_request",
    "list_events",
    "list_requests",
    "mark_deployed",
    "reject",
    "request_approval",
    "retire",
    "set_high_risk",
    "verify",
]
