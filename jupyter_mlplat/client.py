"""PlatformClient: the one way the workbench talks to the platform.

Two transports, chosen from the environment (``MlplatSettings.client_transport``):

- **http**, inside JupyterHub (JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN set):
  requests go to the platform service (``MlplatSettings.service_url``) with the
  server's token. Calls retry with exponential backoff within
  ``client_retry_seconds`` while the service is unreachable or the proxy answers
  502/503/504, so a restarting service does not break notebooks; after that a
  :class:`~jupyter_mlplat.errors.ServiceUnavailable` names the URL.
- **inprocess**, outside a hub (plain Lab, scripts, tests): the same
  :class:`~jupyter_mlplat.service.operations.PlatformOperations` the service runs,
  with the local identity from settings.

Both return the same pydantic models (:mod:`jupyter_mlplat.service.models`).
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

from pydantic import BaseModel

from .errors import MlplatError, NotFoundError, PermissionDenied, ServiceUnavailable, UsageError
from .identity import Identity, current_identity
from .service.models import DescribeHealth, DescribeMe
from .settings import MlplatSettings, get_settings

# operation -> (HTTP method, path under the service prefix, response model). Path fields
# in braces come from the call's arguments; the rest go in the query (GET) or JSON body.
ROUTES: dict[str, tuple[str, str, type[BaseModel] | str]] = {
    "health": ("GET", "api/health", DescribeHealth),
    "me": ("GET", "api/me", DescribeMe),
    "register_model": ("POST", "api/models", "governance.registry:DescribeModelVersion"),
    "request_approval": ("POST", "api/approvals", "governance.views:DescribeApprovalRequest"),
    "list_approvals": ("GET", "api/approvals", "governance.views:ListApprovalRequestsResponse"),
    "show_approval": (
        "GET", "api/approvals/{request_id}", "governance.views:DescribeApprovalRequest"
    ),
    "approve": (
        "POST", "api/approvals/{request_id}/approve", "governance.views:DescribeApprovalRequest"
    ),
    "reject": (
        "POST", "api/approvals/{request_id}/reject", "governance.views:DescribeApprovalRequest"
    ),
    "audit_verify": ("GET", "api/audit/verify", "governance.views:VerifyResult"),
    "audit_events": ("GET", "api/audit/events", "governance.views:ListAuditEventsResponse"),
}  # fmt: skip


def _model_class(spec: type[BaseModel] | str) -> type[BaseModel]:
    """Response models of heavier modules are imported on first use."""
    if not isinstance(spec, str):
        return spec
    import importlib

    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(f"jupyter_mlplat.{module}"), name)


_RETRY_STATUS = {502, 503, 504}
_IDEMPOTENT = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}
_FIRST_DELAY, _MAX_DELAY = 0.1, 2.0


class InProcessTransport:
    """Runs the service's operations in this process, as the local identity."""

    name = "inprocess"

    def __init__(self, settings: MlplatSettings):
        from .service.operations import PlatformOperations

        self.settings = settings
        self.operations = PlatformOperations(settings)

    def call(self, operation: str, **kwargs) -> BaseModel:
        return getattr(self.operations, operation)(current_identity(self.settings), **kwargs)


class HttpTransport:
    """JSON over HTTP to the platform service, with the user's JupyterHub token."""

    name = "http"

    def __init__(
        self, service_url: str, token: str, retry_seconds: float, service_name: str = "mlplat"
    ):
        self.service_url = service_url.rstrip("/") + "/" if service_url else ""
        self.token = token
        self.retry_seconds = max(0.0, retry_seconds)
        self.service_name = service_name
        # Loopback and in-cluster URLs: no HTTP proxies from the environment (as HubAuth).
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, operation: str, **kwargs) -> BaseModel:
        method, path, model = ROUTES[operation]
        fields = {k: kwargs.pop(k) for k in list(kwargs) if "{" + k + "}" in path}
        path = path.format(**{k: urllib.parse.quote(str(v), safe="") for k, v in fields.items()})
        body = None
        if method == "GET" and kwargs:
            path += "?" + urllib.parse.urlencode(
                {
                    k: str(v).lower() if isinstance(v, bool) else v
                    for k, v in kwargs.items()
                    if v is not None
                }
            )
        elif kwargs:
            body = json.dumps(kwargs).encode()
        return _model_class(model).model_validate(self.request(method, path, body))

    def request(self, method: str, path: str, body: bytes | None = None) -> dict:
        """Send one request, retrying within the budget; the decoded JSON answer."""
        if not self.service_url:
            raise ServiceUnavailable(
                "Running under JupyterHub but the platform service URL is unknown; ask the "
                "admin to set MLPLAT_SERVICE_URL for single-user servers (c.Spawner.environment)."
            )
        url = self.service_url + path
        deadline = time.monotonic() + self.retry_seconds
        delay = _FIRST_DELAY
        while True:
            remaining = deadline - time.monotonic()
            try:
                status, payload = self._send(method, url, body, timeout=max(1.0, remaining))
            except (OSError, http.client.HTTPException) as exc:
                problem = _describe(exc)
                # A request that never reached the service is safe to repeat.
                retry = method in _IDEMPOTENT or _not_sent(exc)
            else:
                if status not in _RETRY_STATUS:
                    return _result(status, payload, url)
                problem, retry = f"HTTP {status}{_error_of(payload)}", True
            now = time.monotonic()
            if not retry or now >= deadline:
                raise ServiceUnavailable(
                    f"The platform service at {url} did not answer within "
                    f"{self.retry_seconds:g} s (last: {problem}); check that JupyterHub runs "
                    f"its {self.service_name!r} service and try again."
                )
            time.sleep(min(delay, deadline - now))
            delay = min(delay * 2, _MAX_DELAY)

    def _send(self, method: str, url: str, body: bytes | None, timeout: float):
        request = urllib.request.Request(url, data=body, method=method)
        request.add_header("Authorization", f"token {self.token}")
        request.add_header("Accept", "application/json")
        if body is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read()


def _error_of(payload: bytes) -> str:
    """``": <message>"`` from a JSON error body (the service's own 503), else nothing."""
    try:
        message = json.loads(payload).get("error")
    except (ValueError, AttributeError):
        return ""
    return f": {message.rstrip('.')}" if isinstance(message, str) else ""


def _not_sent(exc: BaseException) -> bool:
    reason = getattr(exc, "reason", exc)
    return isinstance(reason, (ConnectionRefusedError, socket.gaierror))


def _describe(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "timed out"
    return str(reason) or type(reason).__name__


def _result(status: int, payload: bytes, url: str) -> dict:
    try:
        data = json.loads(payload or b"{}")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise MlplatError(
            f"The platform service at {url} answered HTTP {status} without JSON; is "
            "MLPLAT_SERVICE_URL pointing at the platform service?"
        )
    if status < 400:
        return data
    message = data.get("error") or f"HTTP {status} from {url}."
    if status == 401:
        raise PermissionDenied(f"The platform service rejected the token: {message}")
    if status == 403:
        raise PermissionDenied(message)
    if status == 404:
        raise NotFoundError(message)
    if status < 500:
        raise UsageError(message)
    raise MlplatError(message)


class PlatformClient:
    """The platform's API: over HTTP inside JupyterHub, in-process otherwise.

    ``PlatformClient()`` reads the process settings; pass ``transport="http"`` or
    ``"inprocess"`` to force one, and ``service_url`` / ``token`` to override them.
    """

    def __init__(
        self,
        settings: MlplatSettings | None = None,
        *,
        transport: str | None = None,
        service_url: str | None = None,
        token: str | None = None,
        retry_seconds: float | None = None,
    ):
        self.settings = settings or get_settings()
        mode = transport or self.settings.client_transport
        if mode == "auto":
            inside_hub = bool(self.settings.hub_api_url and self.settings.hub_api_token)
            mode = "http" if inside_hub else "inprocess"
        if mode == "http":
            self._transport = HttpTransport(
                service_url if service_url is not None else self.settings.service_url,
                token if token is not None else self.settings.hub_api_token,
                self.settings.client_retry_seconds if retry_seconds is None else retry_seconds,
                self.settings.service_name,
            )
        elif mode == "inprocess":
            self._transport = InProcessTransport(self.settings)
        else:
            raise UsageError(f"Unknown transport {mode!r}; use 'auto', 'http' or 'inprocess'.")

    @property
    def transport(self) -> str:
        """``http`` or ``inprocess``."""
        return self._transport.name

    @property
    def service_url(self) -> str | None:
        return getattr(self._transport, "service_url", None)

    def health(self) -> DescribeHealth:
        """Whether the platform answers, and its version."""
        return self._transport.call("health")

    def me(self) -> DescribeMe:
        """The caller: user, teams, roles and where they came from."""
        return self._transport.call("me")

    def identity(self) -> Identity:
        return self.me().to_identity()

    # -- governance ----------------------------------------------------------------------
    def register_model(self, model: str, run_id: str, artifact: str | None = None):
        return self._transport.call("register_model", model=model, run_id=run_id, artifact=artifact)

    def request_approval(self, model: str, version: str, target: str = "staging", reason=None):
        return self._transport.call(
            "request_approval", model=model, version=str(version), target=target, reason=reason
        )

    def list_approvals(self, pending: bool = False):
        return self._transport.call("list_approvals", pending=pending)

    def show_approval(self, request_id: int):
        return self._transport.call("show_approval", request_id=int(request_id))

    def approve(self, request_id: int, comment: str | None = None):
        return self._transport.call("approve", request_id=int(request_id), comment=comment)

    def reject(self, request_id: int, comment: str | None = None):
        return self._transport.call("reject", request_id=int(request_id), comment=comment)

    def audit_verify(self):
        return self._transport.call("audit_verify")

    def audit_events(self, after_seq: int = 0, limit: int = 1000):
        return self._transport.call("audit_events", after_seq=after_seq, limit=limit)

    def iter_audit_events(self, page: int = 1000):
        """Every audit event, page by page, in chain order."""
        after = 0
        while True:
            response = self.audit_events(after_seq=after, limit=page)
            yield from response.events
            if response.next_seq is None or not response.events:
                return
            after = response.events[-1].seq
