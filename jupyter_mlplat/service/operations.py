"""What the platform does, independent of transport.

The service's handlers and the client's in-process transport both call these
methods with the caller's :class:`~jupyter_mlplat.identity.Identity`; nothing
here knows about HTTP or JupyterHub.
"""

from __future__ import annotations

from .. import __version__
from ..identity import Identity
from ..settings import MlplatSettings
from .models import DescribeHealth, DescribeMe


class GovernanceOperations:
    """Registration, approvals and the audit log, for one settings object.

    MLflow is reached with the service's own tracking URI: the version facts a
    decision binds to (run id, artifact digest, metrics, lineage) are read here,
    never taken from the caller.
    """

    def __init__(self, settings: MlplatSettings):
        self.settings = settings
        self._store = None
        self._client = None

    @property
    def store(self):
        if self._store is None:
            from ..store.db import get_store

            self._store = get_store(self.settings)
        return self._store

    @property
    def mlflow(self):
        if self._client is None:
            from ..tracking.connection import check_reachable, get_client

            check_reachable(self.settings.tracking_uri, self.settings.tracking_retry_seconds)
            self._client = get_client(self.settings)
        return self._client

    def _mirror(self, request) -> None:
        from ..governance.registry import mirror

        try:
            mirror(self.mlflow, request.model, request.version, request.target, request.status)
        except Exception:  # noqa: BLE001 - the store is the source of truth; MLflow is a copy
            import logging

            logging.getLogger(__name__).warning(
                "Could not mirror %s to MLflow", request.subject, exc_info=True
            )

    def register_model(
        self, caller: Identity, model: str, run_id: str, artifact: str | None = None, team=None
    ):
        from .. import governance as workflow
        from ..governance.registry import check_model_name, register, run_team

        check_model_name(model)
        team = run_team(self.mlflow, run_id) if team is None else team
        caller.check_team(team)
        workflow.claim_model(self.store, caller, model, team)
        return register(self.mlflow, run_id, model, artifact, team)

    def request_approval(
        self, caller: Identity, model: str, version: str, target: str = "staging", reason=None
    ):
        from .. import governance as workflow
        from ..governance.registry import read_version

        info = read_version(self.mlflow, model, version)
        request = workflow.request_approval(
            self.store, caller, model, str(version), target, reason or "", info
        )
        self._mirror(request)
        return request

    def list_approvals(self, caller: Identity, pending: bool = False):
        from .. import governance as workflow

        return workflow.list_requests(self.store, caller, pending=pending)

    def show_approval(self, caller: Identity, request_id: int):
        from .. import governance as workflow

        return workflow.get_request(self.store, caller, int(request_id))

    def approve(self, caller: Identity, request_id: int, comment: str | None = None):
        from .. import governance as workflow
        from ..governance.registry import read_version

        current = workflow.get_request(self.store, caller, int(request_id))
        info = read_version(self.mlflow, current.model, current.version)
        request = workflow.approve(self.store, caller, int(request_id), comment or "", info)
        self._mirror(request)
        return request

    def reject(self, caller: Identity, request_id: int, comment: str | None = None):
        from .. import governance as workflow

        request = workflow.reject(self.store, caller, int(request_id), comment or "")
        self._mirror(request)
        return request

    def audit_verify(self, caller: Identity):
        from ..governance import audit
        from ..governance.policy import check_audit_reader

        check_audit_reader(caller)
        return audit.verify(self.store)

    def audit_events(self, caller: Identity, after_seq: int = 0, limit: int = 1000):
        """A page of the audit log after ``after_seq`` (reviewers and admins)."""
        from ..governance import audit

        limit = max(1, min(int(limit), 5000))
        return audit.list_events(self.store, caller, after_seq=int(after_seq), limit=limit)


class PlatformOperations(GovernanceOperations):
    """The platform's operations for one settings object (one per process)."""

    def health(self, caller: Identity | None = None) -> DescribeHealth:
        return DescribeHealth(status="ok", version=__version__)

    def me(self, caller: Identity, kind: str = "user") -> DescribeMe:
        return DescribeMe.from_identity(caller, kind=kind)
