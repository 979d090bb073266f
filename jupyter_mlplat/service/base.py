"""What every handler of the platform service shares: the context, JSON answers and the
one error mapping (each :class:`~jupyter_mlplat.errors.MlplatError` carries its status
and code), authentication before the body is read, and the body limit.

The service authenticates with tokens only (no cookies), so it sets no CORS headers and
needs no XSRF cookie: a browser cannot send another site's ``Authorization`` header.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel
from tornado import web

from ..api.base import DescribeError
from ..application import Platform
from ..errors import MlplatError, NotFoundError, TooLarge, UsageError
from ..settings import MlplatSettings
from .auth import Caller, HubAuthenticator
from .metrics import ServiceMetrics

log = logging.getLogger("jupyter_mlplat.service")


class ServiceContext:
    """What every handler shares: settings, the platform, authentication, metrics."""

    def __init__(
        self,
        settings: MlplatSettings,
        authenticator: HubAuthenticator | None = None,
        platform: Platform | None = None,
    ):
        self.settings = settings
        self.platform = platform or Platform(settings)
        self.authenticator = authenticator or HubAuthenticator(settings)
        self.metrics = ServiceMetrics(self.platform.state_counts)


def error_body(exc: BaseException, status: int, reason: str, method: str, path: str) -> tuple:
    """``(status, DescribeError)`` for anything a handler raised."""
    if isinstance(exc, MlplatError):
        return exc.http_status, DescribeError(error=str(exc), code=exc.code)
    if isinstance(exc, web.HTTPError) and exc.log_message and status < 500:
        cls = NotFoundError if status == 404 else UsageError
        return status, DescribeError(error=exc.log_message % exc.args, code=cls.code)
    if status >= 500:
        message = "The platform service failed on this request; its log has the details."
        return status, DescribeError(error=message, code=MlplatError.code)
    if status == 405:
        return status, DescribeError(
            error=f"{method} is not allowed on {path}; see the API of this endpoint.",
            code=UsageError.code,
        )
    return status, DescribeError(error=f"{reason} ({status}) for {method} {path}.", code="usage")


class BaseHandler(web.RequestHandler):
    """JSON in and out; errors as ``{"error", "code"}``; callers authenticated with the Hub."""

    metric_name = "other"

    def initialize(self, context: ServiceContext) -> None:
        self.context = context

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    async def caller(self, *, require_access: bool = True) -> Caller:
        return await self.context.authenticator.authenticate(
            self.request.headers, require_access=require_access
        )

    def check_body_size(self) -> None:
        limit = self.context.settings.max_body_bytes
        size = len(self.request.body or b"")
        if size > limit:
            raise TooLarge(
                f"The request body is {size} bytes, more than the limit of {limit} bytes; "
                "send less (free-text fields are limited to "
                f"{self.context.settings.max_text_bytes} bytes)."
            )

    def write_model(self, model: BaseModel, status: int = 200) -> None:
        self.set_status(status)
        self.finish(model.model_dump_json())

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        status, body = error_body(
            exc, status_code, self._reason, self.request.method, self.request.path
        )
        self.set_status(status)
        if status == 409 and getattr(exc, "retry_after", None):
            self.set_header("Retry-After", str(exc.retry_after))
        self.finish(body.model_dump_json())

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, (web.HTTPError, MlplatError)):
            status = getattr(value, "http_status", None) or getattr(value, "status_code", 400)
            level = logging.WARNING if status >= 500 else logging.DEBUG
            log.log(level, "%s %s: %s", self.request.method, self.request.path, value)
        else:
            super().log_exception(typ, value, tb)


class NotFoundHandler(BaseHandler):
    metric_name = "not_found"

    def prepare(self) -> None:
        raise NotFoundError(
            f"The platform service has no endpoint {self.request.path}; "
            f"see {self.context.settings.service_prefix}api/health."
        )
