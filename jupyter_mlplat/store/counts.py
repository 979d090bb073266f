"""How many job runs, approval requests and deployments are in each state: the figures the
platform's /metrics exports as gauges (read at each scrape, three GROUP BY queries)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from .models import ApprovalRequest, Deployment, JobRun


@dataclass(frozen=True)
class StateCounts:
    job_runs: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, status)
    approval_requests: dict[tuple[str, str], int] = field(default_factory=dict)  # (target, status)
    deployments: dict[tuple[str, str], int] = field(default_factory=dict)  # (target, status)


def state_counts(store) -> StateCounts:
    with store.session() as session:
        runs = session.execute(
            select(JobRun.kind, JobRun.status, func.count()).group_by(JobRun.kind, JobRun.status)
        ).all()
        approvals = session.execute(
            select(ApprovalRequest.target, ApprovalRequest.status, func.count()).group_by(
                ApprovalRequest.target, ApprovalRequest.status
            )
        ).all()
        deployments = session.execute(
            select(Deployment.target, Deployment.status, func.count()).group_by(
                Deployment.target, Deployment.status
            )
        ).all()
    return StateCounts(
        job_runs={(k, s): n for k, s, n in runs},
        approval_requests={(t, s): n for t, s, n in approvals},
        deployments={(t, s): n for t, s, n in deployments},
    )
