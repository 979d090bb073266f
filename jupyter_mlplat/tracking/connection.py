"""Reaching the MLflow tracking backend within the configured retry budget."""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.error
import urllib.request

from ..errors import MlplatError, ServiceUnavailable
from ..settings import MlplatSettings

# A server that answered recently is not probed again before every call.
_HEALTHY_FOR_SECONDS = 30.0
_last_ok: dict[str, float] = {}
_lock = threading.Lock()
_clients: dict[str, object] = {}


def unreachable(uri: str, budget: float, reason: object) -> ServiceUnavailable:
    """The one error for a tracking server that does not answer (HTTP 503)."""
    return ServiceUnavailable(
        f"MLflow at {uri} is unreachable (no answer within {budget:g} s: {reason}); "
        "start it (`make up`) or point MLPLAT_TRACKING_URI at a running server."
    )


_UNREACHABLE_MARKERS = (
    "Max retries exceeded",
    "Connection refused",
    "ConnectionError",
    "timed out",
    "timeout exception",
    "Connection aborted",
    "Connection reset",
    "RemoteDisconnected",
)


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the tracking server did not answer.

    MLflow wraps connection failures and timeouts of its HTTP client in a plain
    ``MlflowException`` ("API request to ... failed with exception ..."), so the cause
    chain and the message are both consulted.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionError | TimeoutError):
            return True
        module = type(current).__module__ or ""
        if module.startswith(("requests", "urllib3")) and type(current).__name__ in (
            "ConnectionError", "ConnectTimeout", "ReadTimeout", "Timeout", "RetryError",
            "MaxRetryError", "NewConnectionError", "ProtocolError",
        ):  # fmt: skip
            return True
        text = str(current)
        if any(marker in text for marker in _UNREACHABLE_MARKERS):
            return True
        current = current.__cause__ or current.__context__
    return False


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text or "timeout" in text:
        return "timed out"
    return "no answer"


def check_reachable(uri: str, budget: float) -> None:
    """Probe ``<uri>/health`` until it answers or ``budget`` seconds pass.

    Only HTTP(S) URIs are probed; file and database stores are local.
    """
    if not uri.startswith(("http://", "https://")):
        return
    now = time.monotonic()
    if now - _last_ok.get(uri, float("-inf")) < _HEALTHY_FOR_SECONDS:
        return
    deadline = now + budget
    delay, reason = 0.2, "no answer"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise unreachable(uri, budget, reason)
        try:
            with urllib.request.urlopen(
                uri.rstrip("/") + "/health", timeout=max(0.2, min(remaining, 5.0))
            ) as response:
                if response.status < 500:
                    _last_ok[uri] = time.monotonic()
                    return
                reason = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            if exc.code < 500:  # an answer, even a 404 from a proxy prefix, is alive
                _last_ok[uri] = time.monotonic()
                return
            reason = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 2.0)


def forget_health(uri: str | None = None) -> None:
    """Make the next call probe again (after a failure, or in tests)."""
    if uri is None:
        _last_ok.clear()
    else:
        _last_ok.pop(uri, None)


def get_client(settings: MlplatSettings):
    """An ``MlflowClient`` for the settings' URI, with MLflow's retries bounded."""
    uri = settings.tracking_uri
    with _lock:
        # MLflow reads its HTTP timeout and retries from the environment on every request,
        # so the budget of the settings in use is published on every call (cheap).
        settings.apply_mlflow_env()
        client = _clients.get(uri)
        if client is None:
            from mlflow import MlflowClient

            from .plugins import defer_feast_header_provider, mark_autologged_models

            defer_feast_header_provider()
            mark_autologged_models()

            client = _clients[uri] = MlflowClient(tracking_uri=uri)
        import mlflow

        # MLflow's fluent API (used by autologging) follows one global URI.
        if mlflow.get_tracking_uri() != uri:
            mlflow.set_tracking_uri(uri)
    return client


@contextlib.contextmanager
def translated_errors(settings: MlplatSettings):
    """Turn MLflow's connection failures into one clear :class:`ServiceUnavailable`."""
    try:
        yield
    except MlplatError:  # already one sentence for the user (ServiceUnavailable included)
        raise
    except Exception as exc:  # noqa: BLE001 - narrowed below, re-raised otherwise
        if is_unreachable(exc):
            forget_health(settings.tracking_uri)
            raise unreachable(
                settings.tracking_uri, settings.tracking_retry_seconds, _reason(exc)
            ) from exc
        raise
