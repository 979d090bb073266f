"""The platform service's tornado application: routes, handlers, JSON errors, startup.

Routes, under the service prefix (``/services/mlplat/`` in a hub):

- ``GET api/health`` (and the prefix itself) — public (no token): liveness for the
  Hub, probes and the client's retries; it says only that the service is up and its
  version.
- ``GET api/me`` — the caller's user, teams and roles.
- ``GET metrics`` — Prometheus text; needs a token with the JupyterHub scope
  ``read:metrics`` (what Prometheus would scrape the Hub with) or, with access to the
  service, the ``admin`` role (group ``mlplat-admins``).

Every error is ``{"error": "<one sentence>"}`` with a 4xx/5xx status. The service
authenticates with tokens only (no cookies), so it sets no CORS headers and needs no
XSRF cookie: a browser cannot send another site's ``Authorization`` header.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError
from tornado import web

from ..errors import MlplatError, NotFoundError, PermissionDenied, ServiceUnavailable, UsageError
from ..settings import MlplatSettings, get_settings
from .auth import ApiError, Caller, HubAuthenticator
from .metrics import ServiceMetrics
from .models import DescribeError
from .operations import PlatformOperations

log = logging.getLogger("jupyter_mlplat.service")

_ERROR_STATUS = (
    (UsageError, 400),
    (PermissionDenied, 403),
    (NotFoundError, 404),
    (ServiceUnavailable, 503),
    (MlplatError, 400),
)


class ServiceContext:
    """What every handler shares: settings, operations, authentication, metrics."""

    def __init__(self, settings: MlplatSettings, authenticator: HubAuthenticator | None = None):
        self.settings = settings
        self.operations = PlatformOperations(settings)
        self.authenticator = authenticator or HubAuthenticator(settings)
        self.metrics = ServiceMetrics()


class BaseHandler(web.RequestHandler):
    """JSON in and out; errors as ``{"error": ...}``; callers authenticated with the Hub."""

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

    def write_model(self, model: BaseModel, status: int = 200) -> None:
        self.set_status(status)
        self.finish(model.model_dump_json())

    def parse_body(self, model_class: type[BaseModel]) -> BaseModel:
        """The JSON body validated as ``model_class``; a 400 with one sentence otherwise."""
        try:
            return model_class.model_validate_json(self.request.body or b"{}")
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "body"
            raise ApiError(400, f"Invalid request body at {where}: {first['msg']}.") from None

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            message = exc.message
        elif isinstance(exc, MlplatError):
            status_code = next(code for cls, code in _ERROR_STATUS if isinstance(exc, cls))
            self.set_status(status_code)
            message = str(exc)
        elif isinstance(exc, web.HTTPError) and exc.get_message():
            message = exc.get_message()
        elif status_code >= 500:
            message = "The platform service failed on this request; its log has the details."
        else:
            reason = self._reason or "error"
            message = f"{reason} ({status_code}) for {self.request.method} {self.request.path}."
        self.finish(DescribeError(error=message).model_dump_json())

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, (web.HTTPError, MlplatError)):
            status = getattr(value, "status_code", 400)
            level = logging.WARNING if status >= 500 else logging.DEBUG
            log.log(level, "%s %s: %s", self.request.method, self.request.path, value)
        else:
            super().log_exception(typ, value, tb)


class HealthHandler(BaseHandler):
    metric_name = "health"

    def get(self) -> None:
        self.write_model(self.context.operations.health())


class MeHandler(BaseHandler):
    metric_name = "me"

    async def get(self) -> None:
        caller = await self.caller()
        self.write_model(self.context.operations.me(caller.identity, kind=caller.kind))


class MetricsHandler(BaseHandler):
    metric_name = "metrics"

    async def get(self) -> None:
        caller = await self.caller(require_access=False)
        allowed = caller.has_scope("read:metrics") or (
            caller.has_scope(self.context.authenticator.access_scope) and caller.is_admin
        )
        if not allowed:
            raise ApiError(
                403,
                "Reading metrics needs a token with the scope read:metrics or membership "
                f"in the group {self.context.settings.admin_group!r}.",
            )
        body, content_type = self.context.metrics.render()
        self.set_header("Content-Type", content_type)
        self.finish(body)


class NotFoundHandler(BaseHandler):
    metric_name = "not_found"

    def prepare(self) -> None:
        raise ApiError(
            404,
            f"The platform service has no endpoint {self.request.path}; "
            f"see {self.context.settings.service_prefix}api/health.",
        )


def make_app(settings: MlplatSettings, context: ServiceContext | None = None) -> web.Application:
    """The tornado application serving under ``settings.service_prefix``."""
    context = context or ServiceContext(settings)
    prefix = "/" + settings.service_prefix.strip("/")
    prefix = "" if prefix == "/" else prefix
    routes = [
        (rf"{prefix}/?", HealthHandler),  # the Hub polls the prefix while the service starts
        (rf"{prefix}/api/health", HealthHandler),
        (rf"{prefix}/api/me", MeHandler),
        (rf"{prefix}/metrics", MetricsHandler),
    ]
    from .governance_handlers import governance_routes

    routes += governance_routes(prefix)
    return web.Application(
        [(path, handler, {"context": context}) for path, handler in routes],
        default_handler_class=NotFoundHandler,
        default_handler_args={"context": context},
        log_function=context.metrics.log_request,
        context=context,
    )


async def serve(settings: MlplatSettings) -> None:
    """Listen on ``settings.service_bind_url`` until SIGTERM or SIGINT."""
    app = make_app(settings)
    bind = urlsplit(settings.service_bind_url)
    server = app.listen(bind.port or 80, address=bind.hostname or "", xheaders=True)
    log.info(
        "platform service %s listening on %s%s (hub API %s)",
        settings.service_name,
        settings.service_bind_url.rstrip("/"),
        settings.service_prefix,
        settings.hub_api_url or "not set",
    )
    if not settings.hub_api_url or not settings.hub_api_token:
        log.warning("JUPYTERHUB_API_URL/JUPYTERHUB_API_TOKEN are not set: every token will fail.")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("platform service stopping")
    server.stop()
    await asyncio.wait_for(server.close_all_connections(), timeout=5)


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, format="[%(levelname).1s %(asctime)s %(name)s] %(message)s"
    )
    settings = get_settings()
    try:
        asyncio.run(serve(settings))
    except OSError as exc:
        log.error("cannot listen on %s: %s", settings.service_bind_url, exc)
        return 1
    return 0


__all__ = ["ServiceContext", "make_app", "serve", "main"]
