"""PlatformClient and AsyncPlatformClient: the one way the workbench talks to the platform.

Their methods are derived from the endpoint declarations of
:mod:`jupyter_mlplat.application` (``client.request_approval(model, version, ...)``
takes the fields of ``CreateApprovalRequest``), validated here as the service would,
and sent over one of two transports, chosen from the settings
(``MlplatSettings.client_transport``):

- **http**, inside JupyterHub (JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN set):
  requests go to the platform service (``MlplatSettings.service_url``) with the
  server's token. A request is retried within ``client_retry_seconds`` only when a
  retry cannot double a write: a request that never reached the service, a GET, or a
  mutating request carrying its ``Idempotency-Key`` (every one this client sends; the
  service answers a repeated key with the first answer). So a restarting service —
  the proxy's HTML 503, the service's own JSON 503 while its database is away — does
  not break notebooks; after the budget a :class:`ServiceUnavailable` says what
  happened in one sentence.
- **inprocess**, outside a hub (plain Lab, scripts, tests): the same
  :class:`~jupyter_mlplat.application.Platform` the service runs, with the local
  identity from the settings.

Both return the same pydantic models and raise the same error classes (the service
sends each error's ``code``; :func:`jupyter_mlplat.errors.from_error_body` rebuilds it).
The sync client is for kernels and the CLI; the async one for the Jupyter server
extension, whose event loop must never block.
"""

from __future__ import annotations

import asyncio
import http.client
import inspect
import json
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator

from .api.base import ApiModel
from .application import ENDPOINTS, Endpoint, parse_request
from .errors import MlplatError, ServiceUnavailable, UsageError, from_error_body
from .identity import Identity, current_identity
from .settings import MlplatSettings, get_settings

IDEMPOTENCY_HEADER = "Idempotency-Key"
_RETRY_STATUS = {502, 503, 504}
_FIRST_DELAY, _MAX_DELAY = 0.1, 2.0


# ---- what both HTTP transports share: building a request, reading its answer, retrying ----


class HttpCall:
    """One logical request: its URL, body and headers, kept across retries."""

    def __init__(self, endpoint: Endpoint, request: ApiModel, service_url: str, token: str):
        from urllib.parse import urlencode

        self.endpoint = endpoint
        self.method = endpoint.method
        self.url = service_url + endpoint.url_path(request)
        payload = endpoint.payload(request)
        self.body: bytes | None = None
        if self.method == "GET":
            if payload:
                query = {
                    k: str(v).lower() if isinstance(v, bool) else v for k, v in payload.items()
                }
                self.url += "?" + urlencode(query)
        else:
            self.body = json.dumps(payload).encode()
        self.headers = {"Authorization": f"token {token}", "Accept": "application/json"}
        if self.body is not None:
            self.headers["Content-Type"] = "application/json"
        if endpoint.mutating:
            # The same key on every retry: the service acts once and replays its answer.
            self.headers[IDEMPOTENCY_HEADER] = uuid.uuid4().hex

    @property
    def safe_to_repeat(self) -> bool:
        return self.method == "GET" or IDEMPOTENCY_HEADER in self.headers


class RetryBudget:
    """Exponential backoff within ``seconds``; says when to stop and why."""

    def __init__(self, seconds: float, service_name: str):
        self.seconds = max(0.0, seconds)
        self.deadline = time.monotonic() + self.seconds
        self.delay = _FIRST_DELAY
        self.service_name = service_name

    def remaining(self) -> float:
        return max(1.0, self.deadline - time.monotonic())

    def next_delay(self) -> float | None:
        """Seconds to wait before the next try, or None when the budget is spent."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            return None
        delay, self.delay = min(self.delay, left), min(self.delay * 2, _MAX_DELAY)
        return delay

    def give_up(self, url: str, problem: str) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"The platform service at {url} did not answer within {self.seconds:g} s "
            f"(last: {problem}); check that JupyterHub runs its {self.service_name!r} "
            "service and try again."
        )


def _json(payload: bytes) -> dict | None:
    try:
        data = json.loads(payload or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def classify_answer(call: HttpCall, status: int, payload: bytes, retry_after: str | None):
    """``(data, None)`` for an answer to return, or ``(None, problem)`` for one to retry.

    Raises the error class the service named for an error not worth retrying.
    """
    data = _json(payload)
    if status in _RETRY_STATUS and call.safe_to_repeat:
        if data is None:
            return None, (
                f"the proxy answered HTTP {status} without JSON: the platform service is "
                "restarting or down"
            )
        return None, f"HTTP {status}: {str(data.get('error', '')).rstrip('.')}"
    if status == 409 and retry_after and call.safe_to_repeat:
        return None, f"HTTP 409: {str((data or {}).get('error', '')).rstrip('.')}"
    if data is None:
        raise MlplatError(
            f"The platform service at {call.url} answered HTTP {status} without JSON; is "
            "MLPLAT_SERVICE_URL pointing at the platform service?"
        )
    if status < 400:
        return data, None
    raise from_error_body(status, data)


def _not_sent(exc: BaseException) -> bool:
    reason = getattr(exc, "reason", exc)
    return isinstance(reason, (ConnectionRefusedError, socket.gaierror))


def _describe(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "timed out"
    return str(reason) or type(reason).__name__


def _check_url(service_url: str) -> None:
    if not service_url:
        raise ServiceUnavailable(
            "Running under JupyterHub but the platform service URL is unknown; ask the "
            "admin to set MLPLAT_SERVICE_URL for single-user servers (c.Spawner.environment)."
        )


# ---- transports ----


class InProcessTransport:
    """Runs the platform's operations in this process, as the local identity."""

    name = "inprocess"
    service_url = None

    def __init__(self, settings: MlplatSettings, identity: Identity | None = None):
        from .application import Context, Platform

        self.settings = settings
        self.platform = Platform(settings)
        self.identity = identity
        self._context = Context

    def call(self, endpoint: Endpoint, request: ApiModel) -> ApiModel:
        context = self._context(identity=self.identity or current_identity(self.settings))
        return self.platform.call(endpoint.name, context, request)

    async def acall(self, endpoint: Endpoint, request: ApiModel) -> ApiModel:
        return await asyncio.to_thread(self.call, endpoint, request)


class HttpTransport:
    """JSON over HTTP to the platform service, with the user's JupyterHub token."""

    name = "http"

    def __init__(self, service_url: str, token: str, retry_seconds: float, service_name: str):
        self.service_url = service_url.rstrip("/") + "/" if service_url else ""
        self.token = token
        self.retry_seconds = retry_seconds
        self.service_name = service_name
        # Loopback and in-cluster URLs: no HTTP proxies from the environment (as HubAuth).
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, endpoint: Endpoint, request: ApiModel) -> ApiModel:
        _check_url(self.service_url)
        call = HttpCall(endpoint, request, self.service_url, self.token)
        budget = RetryBudget(self.retry_seconds, self.service_name)
        while True:
            try:
                status, payload, retry_after = self._send(call, budget.remaining())
            except (OSError, http.client.HTTPException) as exc:
                problem = _describe(exc)
                if not (call.safe_to_repeat or _not_sent(exc)):
                    raise budget.give_up(call.url, problem) from None
            else:
                data, problem = classify_answer(call, status, payload, retry_after)
                if problem is None:
                    return endpoint.response.model_validate(data)
            delay = budget.next_delay()
            if delay is None:
                raise budget.give_up(call.url, problem)
            time.sleep(delay)

    def _send(self, call: HttpCall, timeout: float):
        request = urllib.request.Request(
            call.url, data=call.body, method=call.method, headers=call.headers
        )
        try:
            with self._opener.open(request, timeout=timeout) as response:
                return response.status, response.read(), response.headers.get("Retry-After")
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read(), exc.headers.get("Retry-After")

    async def acall(self, endpoint: Endpoint, request: ApiModel) -> ApiModel:
        """The same request from an event loop, never blocking it (tornado's client)."""
        from tornado.httpclient import AsyncHTTPClient

        _check_url(self.service_url)
        call = HttpCall(endpoint, request, self.service_url, self.token)
        budget = RetryBudget(self.retry_seconds, self.service_name)
        # Our own client, closed after the call: tornado's shared per-loop instance would
        # outlive a loop that a caller closes (test runners do) and be handed to others.
        client = AsyncHTTPClient(force_instance=True)
        try:
            return await self._afetch(client, call, budget)
        finally:
            client.close()

    async def _afetch(self, client, call: HttpCall, budget: RetryBudget) -> ApiModel:
        from tornado.httpclient import HTTPRequest

        endpoint = call.endpoint
        while True:
            timeout = budget.remaining()
            http_request = HTTPRequest(
                call.url, method=call.method, headers=call.headers, body=call.body,
                connect_timeout=timeout, request_timeout=timeout,
                allow_nonstandard_methods=True,
            )  # fmt: skip
            try:
                response = await client.fetch(http_request, raise_error=False)
            except OSError as exc:
                problem = _describe(exc)
                if not (call.safe_to_repeat or isinstance(exc, ConnectionRefusedError)):
                    raise budget.give_up(call.url, problem) from None
            else:
                if response.code == 599:  # tornado: no HTTP answer (timeout, reset)
                    problem = _describe(response.error) if response.error else "no answer"
                    if not call.safe_to_repeat:
                        raise budget.give_up(call.url, problem)
                else:
                    data, problem = classify_answer(
                        call, response.code, response.body or b"",
                        response.headers.get("Retry-After"),
                    )  # fmt: skip
                    if problem is None:
                        return endpoint.response.model_validate(data)
            delay = budget.next_delay()
            if delay is None:
                raise budget.give_up(call.url, problem)
            await asyncio.sleep(delay)


# ---- the clients ----


def _transport(settings, transport, service_url, token, retry_seconds, identity=None):
    mode = transport or settings.client_transport
    if mode == "auto":
        inside_hub = bool(settings.hub_api_url and settings.hub_api_token)
        mode = "http" if inside_hub else "inprocess"
    if mode == "http":
        return HttpTransport(
            service_url if service_url is not None else settings.service_url,
            token if token is not None else settings.hub_api_token,
            settings.client_retry_seconds if retry_seconds is None else retry_seconds,
            settings.service_name,
        )
    if mode == "inprocess":
        return InProcessTransport(settings, identity)
    raise UsageError(f"Unknown transport {mode!r}; use 'auto', 'http' or 'inprocess'.")


class _ClientBase:
    """Transport choice and request validation shared by the sync and async clients."""

    def __init__(
        self,
        settings: MlplatSettings | None = None,
        *,
        transport: str | None = None,
        service_url: str | None = None,
        token: str | None = None,
        retry_seconds: float | None = None,
        identity: Identity | None = None,
    ):
        """``identity`` acts as someone else in-process (local scripts and tests; the
        process already has the platform's rights there); over HTTP the token decides."""
        self.settings = settings or get_settings()
        self._transport = _transport(
            self.settings, transport, service_url, token, retry_seconds, identity
        )

    @property
    def transport(self) -> str:
        """``http`` or ``inprocess``."""
        return self._transport.name

    @property
    def service_url(self) -> str | None:
        return self._transport.service_url

    def _request(self, endpoint: Endpoint, arguments: dict) -> ApiModel:
        return parse_request(endpoint, arguments, max_text_bytes=self.settings.max_text_bytes)


def _signature(endpoint: Endpoint) -> inspect.Signature:
    """The method's signature: the request model's fields (list positions keyword-only)."""
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    keyword_only = []
    for name, field in endpoint.request.model_fields.items():
        default = inspect.Parameter.empty if field.is_required() else field.default
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        if name in ("cursor", "limit"):
            keyword_only.append(
                inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
            )
            continue
        params.append(inspect.Parameter(name, kind, default=default))
    return inspect.Signature(params + keyword_only)


def _sync_method(endpoint: Endpoint):
    signature = _signature(endpoint)

    def method(self, *args, **kwargs):
        arguments = signature.bind(self, *args, **kwargs).arguments
        arguments.pop("self")
        return self._transport.call(endpoint, self._request(endpoint, arguments))

    method.__signature__ = signature
    return method


def _async_method(endpoint: Endpoint):
    signature = _signature(endpoint)

    async def method(self, *args, **kwargs):
        arguments = signature.bind(self, *args, **kwargs).arguments
        arguments.pop("self")
        return await self._transport.acall(endpoint, self._request(endpoint, arguments))

    method.__signature__ = signature
    return method


def _derive(cls, make):
    for endpoint in ENDPOINTS.values():
        method = make(endpoint)
        method.__name__ = method.__qualname__ = endpoint.name
        method.__doc__ = (
            f"{endpoint.summary}\n\n``{endpoint.method} {endpoint.path}``: takes the fields of "
            f"``{endpoint.request.__name__}``, returns ``{endpoint.response.__name__}``."
        )
        setattr(cls, endpoint.name, method)
    return cls


class PlatformClient(_ClientBase):
    """The platform's API for kernels and the CLI: over HTTP inside JupyterHub, in-process
    otherwise. One method per declared endpoint (``health``, ``me``, ``register_model``,
    ``request_approval``, ``list_approvals``...); see :data:`ENDPOINTS`."""

    def identity(self) -> Identity:
        from .application.core import identity_of

        return identity_of(self.me())

    def iterate(self, name: str, **kwargs) -> Iterator:
        """Every item of list endpoint ``name``, page by page."""
        cursor = None
        while True:
            page = getattr(self, name)(**kwargs, cursor=cursor)
            yield from page.items
            if page.next_cursor is None or not page.items:
                return
            cursor = page.next_cursor

    def iter_audit_events(self, page: int = 1000) -> Iterator:
        """Every audit event, in chain order."""
        return self.iterate("audit_events", limit=page)


class AsyncPlatformClient(_ClientBase):
    """The same API for event loops (the Jupyter server extension): every method is a
    coroutine, and neither transport blocks the loop."""

    async def identity(self) -> Identity:
        from .application.core import identity_of

        return identity_of(await self.me())

    async def iterate(self, name: str, **kwargs) -> AsyncIterator:
        cursor = None
        while True:
            page = await getattr(self, name)(**kwargs, cursor=cursor)
            for item in page.items:
                yield item
            if page.next_cursor is None or not page.items:
                return
            cursor = page.next_cursor


_derive(PlatformClient, _sync_method)
_derive(AsyncPlatformClient, _async_method)

__all__ = ["AsyncPlatformClient", "HttpTransport", "InProcessTransport", "PlatformClient"]
