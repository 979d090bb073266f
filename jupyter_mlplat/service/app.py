"""The platform service's tornado application, its routes derived from the endpoint
declarations of :mod:`jupyter_mlplat.application`, and its startup.

Besides the declared endpoints (``api/health`` public, everything else with a
JupyterHub token; see :mod:`.auth`) it serves:

- the prefix itself, public, as health (the Hub polls it while the service starts);
- ``GET metrics``: Prometheus text for a token with the JupyterHub scope
  ``read:metrics`` or, with access to the service, the ``admin`` role.

A mutating request is authenticated before its body is read, limited to
``max_body_bytes``, and made safe to retry by its ``Idempotency-Key`` (see
:mod:`jupyter_mlplat.store.idempotency`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from tornado import web
from tornado.ioloop import PeriodicCallback

from ..application import ENDPOINTS, Context, Endpoint
from ..application.serving import WouldBlock
from ..errors import MlplatError, PermissionDenied, ServiceUnavailable, UsageError
from ..settings import MlplatSettings, get_settings
from .base import BaseHandler, NotFoundHandler, ServiceContext

log = logging.getLogger("jupyter_mlplat.service")

IDEMPOTENCY_HEADER = "Idempotency-Key"
SERVICE_THREADS = 32


class EndpointHandler(BaseHandler):
    """Serves the endpoints declared on one path, one per HTTP method."""

    def initialize(self, context: ServiceContext, endpoints: dict[str, Endpoint]) -> None:
        super().initialize(context)
        self.endpoints = endpoints
        self.endpoint: Endpoint | None = None
        self.caller_ = None

    async def prepare(self) -> None:
        self.endpoint = self.endpoints.get(self.request.method)
        if self.endpoint is None:
            raise web.HTTPError(405)
        self.metric_name = self.endpoint.name
        if not self.endpoint.public:
            self.caller_ = await self.caller()  # before the body is looked at
        self.check_body_size()

    def _data(self, path_args: dict) -> dict:
        if self.endpoint.method == "GET":
            # A token in the URL is never used (the header is); it is not a field either.
            names = [k for k in self.request.query_arguments if k != "token"]
            data = {k: self.get_query_argument(k) for k in names}
        else:
            data = self._json_body()
        overlap = set(data) & set(path_args)
        if overlap:
            raise UsageError(f"{', '.join(sorted(overlap))} belongs in the path, not the body.")
        return {**data, **path_args}

    def _json_body(self) -> dict:
        body = self.request.body or b""
        if not body.strip():
            return {}
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise UsageError("The request body is not JSON; send a JSON object.") from None
        if not isinstance(data, dict):
            raise UsageError("The request body must be a JSON object.")
        return data

    async def _serve(self, **path_args) -> None:
        endpoint, platform = self.endpoint, self.context.platform
        request = platform.parse(endpoint.name, self._data(path_args))
        caller = self.caller_
        context = Context(identity=caller.identity, kind=caller.kind) if caller else None
        key = self.request.headers.get(IDEMPOTENCY_HEADER)
        if endpoint.mutating and key and caller is not None:
            await self._idempotent(key, caller.identity.user, context, request)
            return
        result = await asyncio.to_thread(platform.call, endpoint.name, context, request)
        self.write_model(result, endpoint.status)

    async def _idempotent(self, key: str, user: str, context: Context, request) -> None:
        from ..store import idempotency

        endpoint, platform = self.endpoint, self.context.platform
        store = await asyncio.to_thread(lambda: platform.resources.store)
        ttl = self.context.settings.idempotency_ttl_seconds
        idempotency.check_key(key)
        print_ = idempotency.fingerprint(endpoint.name, request.model_dump_json().encode())
        replay = await asyncio.to_thread(
            idempotency.begin, store, key, user, endpoint.name, print_, ttl
        )
        if replay is not None:
            status, body = replay
            self.set_header("Idempotent-Replay", "true")
            self.set_status(status)
            self.finish(body)
            return
        try:
            result = await asyncio.to_thread(platform.call, endpoint.name, context, request)
        except MlplatError as exc:
            if isinstance(exc, ServiceUnavailable) or exc.http_status >= 500:
                # Nothing was done (or we cannot tell): let a retry act.
                await asyncio.to_thread(_quietly, idempotency.abandon, store, key, user)
            else:
                body = json.dumps({"error": str(exc), "code": exc.code})
                await asyncio.to_thread(
                    _quietly, idempotency.finish, store, key, user, exc.http_status, body
                )
            raise
        except BaseException:
            await asyncio.to_thread(_quietly, idempotency.abandon, store, key, user)
            raise
        body = result.model_dump_json()
        await asyncio.to_thread(idempotency.finish, store, key, user, endpoint.status, body)
        self.set_status(endpoint.status)
        self.finish(body)

    get = post = put = patch = delete = _serve


def _quietly(function, *args) -> None:
    try:
        function(*args)
    except MlplatError:
        log.warning("could not record an idempotency key", exc_info=True)


class V2Handler(BaseHandler):
    """``api/deployments/<name>/v2/...``: the Open Inference Protocol of a deployment, for
    standard V2 clients, with the caller's hub identity (see ServingArea.v2)."""

    metric_name = "v2"

    async def prepare(self) -> None:
        self.caller_ = await self.caller()  # before the body is looked at
        self.check_body_size()

    async def _serve(self, name: str, rest: str) -> None:
        serving = self.context.platform.areas["serving"]
        context = Context(identity=self.caller_.identity, kind=self.caller_.kind)
        args = (context, name, self.request.method, rest)
        try:  # on the event loop when nothing would block (the usual case), else a thread
            call = serving.v2_route(*args, may_block=False)
        except WouldBlock:
            call = await asyncio.to_thread(serving.v2_route, *args)
        answer = await serving.v2_forward(call, self.request.body)
        self.set_header("Content-Type", "application/json")
        self.finish(answer)

    get = post = _serve


class PrefixHealthHandler(BaseHandler):
    metric_name = "health"

    def get(self) -> None:
        self.write_model(self.context.platform.call("health", None, ENDPOINTS["health"].request()))


class MetricsHandler(BaseHandler):
    metric_name = "metrics"

    async def get(self) -> None:
        caller = await self.caller(require_access=False)
        allowed = caller.has_scope("read:metrics") or (
            caller.has_scope(self.context.authenticator.access_scope) and caller.is_admin
        )
        if not allowed:
            raise PermissionDenied(
                "Reading metrics needs a token with the scope read:metrics or membership "
                f"in the group {self.context.settings.admin_group!r}."
            )
        # The state gauges read the store: off the event loop.
        body, content_type = await asyncio.to_thread(self.context.metrics.render)
        self.set_header("Content-Type", content_type)
        self.finish(body)


def routes(prefix: str, context: ServiceContext) -> list[tuple]:
    """Every route of the service, the declared endpoints grouped by path."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for endpoint in ENDPOINTS.values():
        methods = by_path.setdefault(endpoint.pattern, {})
        if endpoint.method in methods:
            raise TypeError(f"two endpoints declare {endpoint.method} {endpoint.path}")
        methods[endpoint.method] = endpoint
    table: list[tuple] = [
        (rf"{prefix}/?", PrefixHealthHandler, {"context": context}),
        (rf"{prefix}/metrics", MetricsHandler, {"context": context}),
        (
            rf"{prefix}/api/deployments/(?P<name>[a-z0-9-]+)/v2/(?P<rest>.*)",
            V2Handler,
            {"context": context},
        ),
    ]
    for pattern, endpoints in by_path.items():
        table.append(
            (rf"{prefix}/{pattern}", EndpointHandler, {"context": context, "endpoints": endpoints})
        )
    return table


PRUNE_EVERY_SECONDS = 600


def _prune_keys(app: web.Application) -> None:
    """Forget idempotency keys past their TTL, off the event loop."""
    from ..store import idempotency

    context: ServiceContext = app.settings["context"]

    def prune() -> None:
        try:
            removed = idempotency.prune(
                context.platform.resources.store, context.settings.idempotency_ttl_seconds
            )
        except MlplatError as exc:  # the database may be away; the next round retries
            log.warning("could not prune idempotency keys: %s", exc)
        else:
            if removed:
                log.info("pruned %d idempotency keys past their TTL", removed)

    asyncio.get_running_loop().run_in_executor(None, prune)


def _serve_recorded_deployments(context: ServiceContext) -> None:
    """At start: the recorded active deployments are served again (in the background)."""
    try:
        states = context.platform.areas["serving"].reconcile()
    except Exception:  # noqa: BLE001 - logged; the service serves everything else meanwhile
        log.exception("could not bring recorded deployments back")
        return
    for state in states:
        log.info("deployment %s v%s: %s", state.deployment, state.version, state.status)


class _Rounds:
    """Rounds of a blocking ``work`` in a thread, one at a time (a slow round is not stacked
    on by the next tick); a failed round is logged, and the next one tries again."""

    def __init__(self, what: str, work):
        self.what, self.work = what, work
        self.running = False

    def tick(self) -> None:
        if self.running:
            return
        self.running = True
        asyncio.get_running_loop().run_in_executor(None, self._round)

    def _round(self) -> None:
        try:
            self.work()
        except Exception:  # noqa: BLE001 - logged; the next round tries again
            log.exception("%s round failed", self.what)
        finally:
            self.running = False


def _supervise(context: ServiceContext) -> None:
    for name, version, outcome in context.platform.areas["serving"].supervise():
        log.warning("supervision: deployment %s v%s %s", name, version, outcome)


def _schedule(context: ServiceContext) -> None:
    context.platform.areas["jobs"].tick()
    context.platform.areas["pipelines"].sync_kfp()


def _start_jobs(context: ServiceContext) -> None:
    """The job workers start with the service: queued runs wait for no submission."""
    try:
        context.platform.areas["jobs"].workers.start()
    except Exception:  # noqa: BLE001 - logged; a submission starts them again
        log.exception("could not start the job workers")


def make_app(settings: MlplatSettings, context: ServiceContext | None = None) -> web.Application:
    """The tornado application serving under ``settings.service_prefix``."""
    context = context or ServiceContext(settings)
    prefix = "/" + settings.service_prefix.strip("/")
    prefix = "" if prefix == "/" else prefix
    return web.Application(
        routes(prefix, context),
        default_handler_class=NotFoundHandler,
        default_handler_args={"context": context},
        log_function=context.metrics.log_request,
        context=context,
    )


async def serve(settings: MlplatSettings) -> None:
    """Listen on ``settings.service_bind_url`` until SIGTERM or SIGINT."""
    # Endpoints run in threads (to_thread); Python's default of min(32, cpus + 4) would cap
    # predictions forwarded at once to 6 on two cores.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(SERVICE_THREADS))
    app = make_app(settings)
    bind = urlsplit(settings.service_bind_url)
    # Bodies far past the limit are cut off at the connection; the handler answers a
    # JSON 413 (after authenticating) for those between the two.
    server = app.listen(
        bind.port or 80,
        address=bind.hostname or "",
        xheaders=True,
        max_body_size=settings.max_body_bytes + 64 * 1024,
    )
    log.info(
        "platform service %s listening on %s%s (hub API %s)",
        settings.service_name,
        settings.service_bind_url.rstrip("/"),
        settings.service_prefix,
        settings.hub_api_url or "not set",
    )
    if not settings.hub_api_url or not settings.hub_api_token:
        log.warning("JUPYTERHUB_API_URL/JUPYTERHUB_API_TOKEN are not set: every token will fail.")
    pruner = PeriodicCallback(lambda: _prune_keys(app), PRUNE_EVERY_SECONDS * 1000)
    pruner.start()
    context: ServiceContext = app.settings["context"]
    loop_ = asyncio.get_running_loop()
    loop_.run_in_executor(None, _serve_recorded_deployments, context)
    loop_.run_in_executor(None, _start_jobs, context)
    rounds = [
        PeriodicCallback(
            _Rounds("scheduler", lambda: _schedule(context)).tick,
            settings.jobs_tick_seconds * 1000,
        ),
        PeriodicCallback(
            _Rounds("job retention", context.platform.areas["jobs"].prune).tick, 3600 * 1000
        ),
    ]
    if settings.serving_supervise_seconds > 0:
        rounds.append(
            PeriodicCallback(
                _Rounds("supervision", lambda: _supervise(context)).tick,
                settings.serving_supervise_seconds * 1000,
            )
        )
    for callback in rounds:
        callback.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("platform service stopping")
    pruner.stop()
    for callback in rounds:
        callback.stop()
    server.stop()
    await asyncio.wait_for(server.close_all_connections(), timeout=5)
    await context.platform.areas["serving"].aclose()
    await asyncio.to_thread(context.platform.resources.close)  # the model servers too


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


__all__ = ["ServiceContext", "make_app", "routes", "serve", "main"]
