"""REST handlers for registration, approvals and the audit log.

They parse, call :class:`~jupyter_mlplat.service.operations.PlatformOperations` in a
worker thread (database and MLflow calls block) and answer JSON; errors map to 4xx/503
in :class:`~jupyter_mlplat.service.app.BaseHandler`.
"""

from __future__ import annotations

import asyncio

from .app import BaseHandler
from .models import CreateApprovalRequest, DecideApprovalRequest, RegisterModel


class _GovernanceHandler(BaseHandler):
    async def run(self, operation: str, status: int = 200, **kwargs) -> None:
        caller = await self.caller()
        method = getattr(self.context.operations, operation)
        result = await asyncio.to_thread(method, caller.identity, **kwargs)
        self.write_model(result, status)


class ModelsHandler(_GovernanceHandler):
    metric_name = "register_model"

    async def post(self) -> None:
        body = self.parse_body(RegisterModel)
        await self.run("register_model", 201, **body.model_dump())


class ApprovalsHandler(_GovernanceHandler):
    metric_name = "approvals"

    async def get(self) -> None:
        pending = self.get_query_argument("pending", "false").lower() in ("1", "true", "yes")
        await self.run("list_approvals", pending=pending)

    async def post(self) -> None:
        body = self.parse_body(CreateApprovalRequest)
        await self.run("request_approval", 201, **body.model_dump())


class ApprovalHandler(_GovernanceHandler):
    metric_name = "approval"

    async def get(self, request_id: str) -> None:
        await self.run("show_approval", request_id=int(request_id))


class DecisionHandler(_GovernanceHandler):
    metric_name = "decision"

    async def post(self, request_id: str, verdict: str) -> None:
        body = self.parse_body(DecideApprovalRequest)
        await self.run(verdict, request_id=int(request_id), comment=body.comment)


class AuditVerifyHandler(_GovernanceHandler):
    metric_name = "audit_verify"

    async def get(self) -> None:
        await self.run("audit_verify")


class AuditEventsHandler(_GovernanceHandler):
    metric_name = "audit_events"

    async def get(self) -> None:
        try:
            after_seq = int(self.get_query_argument("after_seq", "0"))
            limit = int(self.get_query_argument("limit", "1000"))
        except ValueError:
            from .auth import ApiError

            raise ApiError(400, "after_seq and limit must be whole numbers.") from None
        await self.run("audit_events", after_seq=after_seq, limit=limit)


def governance_routes(prefix: str) -> list[tuple[str, type]]:
    return [
        (rf"{prefix}/api/models", ModelsHandler),
        (rf"{prefix}/api/approvals", ApprovalsHandler),
        (rf"{prefix}/api/approvals/(\d+)", ApprovalHandler),
        (rf"{prefix}/api/approvals/(\d+)/(approve|reject)", DecisionHandler),
        (rf"{prefix}/api/audit/verify", AuditVerifyHandler),
        (rf"{prefix}/api/audit/events", AuditEventsHandler),
    ]
