"""Request and response bodies of the platform service (pydantic v2, verb-named).

The service serialises these, :class:`jupyter_mlplat.client.PlatformClient`
parses them back, and the in-process transport returns them directly, so both
transports hand the caller the same objects.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from ..identity import Identity


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DescribeHealth(_Model):
    """``GET /api/health``: the service is up."""

    status: str = "ok"
    version: str


class DescribeMe(_Model):
    """``GET /api/me``: who the token belongs to, their teams and roles."""

    user: str
    kind: str = "user"
    teams: list[str]
    roles: list[str]
    source: str

    @classmethod
    def from_identity(cls, identity: Identity, kind: str = "user") -> DescribeMe:
        return cls(
            user=identity.user,
            kind=kind,
            teams=list(identity.teams),
            roles=list(identity.roles),
            source=identity.source,
        )

    def to_identity(self) -> Identity:
        return Identity(
            user=self.user, teams=tuple(self.teams), source=self.source, roles=tuple(self.roles)
        )


class DescribeError(_Model):
    """Every 4xx/5xx answer: one sentence saying what was wrong and what to do."""

    error: str


class RegisterModel(_Model):
    """``POST /api/models``: register a run's model in MLflow's registry."""

    model: str
    run_id: str
    artifact: str | None = None


class CreateApprovalRequest(_Model):
    """``POST /api/approvals``: ask for a version to be approved for a target."""

    model: str
    version: str
    target: str = "staging"
    reason: str | None = None


class DecideApprovalRequest(_Model):
    """``POST /api/approvals/<id>/approve|reject``: a reviewer's decision."""

    comment: str | None = None
