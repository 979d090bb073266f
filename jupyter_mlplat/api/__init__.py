"""REST schemas of the platform (pydantic v2, verb-named, no SQLAlchemy).

One module per area; the service serialises these, the HTTP client parses them
back, and the in-process transport returns them directly, so both transports hand
the caller the same objects.
"""

from .base import ApiModel, DescribeError, ListRequest, Page
from .core import DescribeHealth, DescribeMe
from .governance import (
    CreateApprovalRequest,
    DecideApprovalRequest,
    DescribeApprovalRequest,
    DescribeApprovalRequestById,
    DescribeAuditEvent,
    DescribeCheck,
    DescribeDecision,
    DescribeModelOwnership,
    DescribeModelVersion,
    ListApprovalRequests,
    ListApprovalRequestsResponse,
    ListAuditEvents,
    ListAuditEventsResponse,
    RegisterModel,
    VerifyAudit,
    VerifyAuditResponse,
)

__all__ = [
    "ApiModel",
    "CreateApprovalRequest",
    "DecideApprovalRequest",
    "DescribeApprovalRequest",
    "DescribeApprovalRequestById",
    "DescribeAuditEvent",
    "DescribeCheck",
    "DescribeDecision",
    "DescribeError",
    "DescribeHealth",
    "DescribeMe",
    "DescribeModelOwnership",
    "DescribeModelVersion",
    "ListApprovalRequests",
    "ListApprovalRequestsResponse",
    "ListAuditEvents",
    "ListAuditEventsResponse",
    "ListRequest",
    "Page",
    "RegisterModel",
    "VerifyAudit",
    "VerifyAuditResponse",
]
