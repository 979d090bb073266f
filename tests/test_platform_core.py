"""The platform core: one error table, declared endpoints, bounded input, safe retries.

HTTP tests go through the real hub (tests/hub_fixtures.py): JupyterHub, the proxy and
the platform service as a managed service. Stand-in HTTP servers below are named as
such: they play the proxy answering 503 while the service restarts, or a service that
hangs, which a real hub cannot be made to do on demand.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time

import pytest

from jupyter_mlplat.application import ENDPOINTS
from jupyter_mlplat.client import AsyncPlatformClient, PlatformClient
from jupyter_mlplat.errors import (
    ERROR_CLASSES,
    ConflictError,
    MlplatError,
    NotFoundError,
    PermissionDenied,
    ServiceUnavailable,
    TooLarge,
    UsageError,
    from_error_body,
)
from jupyter_mlplat.settings import MlplatSettings

PREFIX = "/services/mlplat"


def url(hub, path: str) -> str:
    return f"{hub.url}{PREFIX}/{path}"


def client(hub, token, cls=PlatformClient, **kwargs):
    settings = MlplatSettings(client_transport="http", service_url=f"{hub.url}{PREFIX}/")
    return cls(settings, token=token, retry_seconds=kwargs.pop("retry_seconds", 10), **kwargs)


# ---- the error table ----


def test_every_error_class_has_a_distinct_code_status_and_round_trips():
    codes = [cls.code for cls in ERROR_CLASSES]
    assert len(set(codes)) == len(codes)
    expected = {
        "usage": 400, "unauthenticated": 401, "forbidden": 403, "not_found": 404,
        "conflict": 409, "too_large": 413, "unavailable": 503, "error": 500,
    }  # fmt: skip
    assert {cls.code: cls.http_status for cls in ERROR_CLASSES} == expected
    for cls in ERROR_CLASSES:
        again = from_error_body(cls.http_status, {"error": "x.", "code": cls.code})
        assert type(again) is cls and str(again) == "x."
    # A body without a code (a proxy, an old service) still maps by status.
    assert type(from_error_body(409, {"error": "busy"})) is ConflictError


def test_every_endpoint_is_declared_once_with_a_verb_named_request():
    routes = [(ep.method, ep.path) for ep in ENDPOINTS.values()]
    assert len(set(routes)) == len(routes)
    for ep in ENDPOINTS.values():
        assert ep.request.__module__.startswith("jupyter_mlplat."), ep.name
        assert hasattr(PlatformClient, ep.name) and hasattr(AsyncPlatformClient, ep.name)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "api/approvals/4242", None, 404, "not_found"),
        ("GET", "api/approvals/99999999999999999999999999", None, 400, "usage"),
        ("GET", "api/approvals/-1", None, 400, "usage"),
        ("GET", "api/approvals/abc", None, 400, "usage"),
        ("GET", "api/approvals?cursor=99999999999999999999999", None, 400, "usage"),
        ("GET", "api/audit/events?cursor=99999999999999999999999", None, 400, "usage"),
        ("GET", "api/audit/events?limit=0", None, 400, "usage"),
        ("POST", "api/approvals", {"model": "m", "version": "1", "target": "prod"}, 400, "usage"),
        ("POST", "api/approvals", {"model": "m", "version": "1", "extra": 1}, 400, "usage"),
        ("POST", "api/models", {"model": "m", "run_id": "../../etc"}, 400, "usage"),
        ("POST", "api/approvals/99999999999999999999999/approve", {}, 400, "usage"),
        ("GET", "api/audit/verify", None, 403, "forbidden"),
    ],
)
def test_http_errors_carry_status_code_and_one_sentence(
    platform_hub, hub_tokens, method, path, body, status, code
):
    response = platform_hub.request(method, url(platform_hub, path), token=hub_tokens["alice"],
                                    json=body)  # fmt: skip
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["code"] == code
    assert answer["error"].endswith(".") and "\n" not in answer["error"]
    assert "Traceback" not in answer["error"]


def test_the_client_raises_the_same_class_over_http_and_in_process(
    platform_hub, hub_tokens, configure
):
    configure(user="alice", teams=["churn"])
    local = PlatformClient(transport="inprocess")
    remote = client(platform_hub, hub_tokens["alice"])
    cases = [
        (lambda c: c.show_approval(4242), NotFoundError),
        (lambda c: c.audit_verify(), PermissionDenied),
        (lambda c: c.request_approval("m", "1", target="prod"), UsageError),
        (lambda c: c.show_approval(2**70), UsageError),
    ]
    for call, error in cases:
        for side in (local, remote):
            with pytest.raises(MlplatError) as info:
                call(side)
            assert type(info.value) is error, (side.transport, info.value)


# ---- bounded input; authentication before the body ----


def test_an_unauthenticated_junk_post_is_401_not_400(platform_hub):
    response = platform_hub.request(
        "POST", url(platform_hub, "api/approvals"), data=b"\x00not json{", token=None
    )
    assert response.status_code == 401 and response.json()["code"] == "unauthenticated"


def test_a_body_over_the_limit_is_413(platform_hub, hub_tokens):
    big = {"model": "m", "version": "1", "reason": "x" * (1024 * 1024 + 10)}
    response = platform_hub.request(
        "POST", url(platform_hub, "api/approvals"), token=hub_tokens["alice"], json=big
    )
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "too_large" and "limit" in response.json()["error"]


def test_a_free_text_field_over_4_kib_is_413_and_nothing_is_stored(
    platform_hub, hub_tokens, configure
):
    alice = client(platform_hub, hub_tokens["alice"])
    with pytest.raises(TooLarge, match="reason is 5000 bytes, more than the limit of 4096"):
        alice.request_approval("m", "1", reason="é" * 2500)
    response = platform_hub.request(
        "POST", url(platform_hub, "api/approvals/1/reject"), token=hub_tokens["rita"],
        json={"comment": "y" * 4097},
    )  # fmt: skip
    assert response.status_code == 413 and response.json()["code"] == "too_large"
    # The in-process path applies the same limit (the setting, not a constant).
    configure(user="alice", teams=["churn"], max_text_bytes=10)
    with pytest.raises(TooLarge, match="limit of 10 bytes"):
        PlatformClient(transport="inprocess").request_approval("m", "1", reason="x" * 11)


# ---- requests that are safe to retry ----


def _post(hub, token, path, body, key):
    return hub.request(
        "POST", url(hub, path), token=token, json=body, headers={"Idempotency-Key": key}
    )


def test_a_repeated_idempotency_key_gets_the_first_answer(platform_hub, hub_tokens):
    """The first answer (here a 404: no such run) is replayed, not recomputed; another
    user's identical key is their own; a key reused for another body is a 409."""
    token = hub_tokens["alice"]
    body = {"model": "idem-model", "run_id": "0123456789abcdef"}
    first = _post(platform_hub, token, "api/models", body, "key-1")
    assert first.status_code == 404, first.text
    again = _post(platform_hub, token, "api/models", body, "key-1")
    assert (again.status_code, again.json()) == (404, first.json())
    assert again.headers.get("Idempotent-Replay") == "true"
    other_user = _post(platform_hub, hub_tokens["bob"], "api/models", body, "key-1")
    assert other_user.status_code == 404 and "Idempotent-Replay" not in other_user.headers
    changed = _post(platform_hub, token, "api/models", {**body, "model": "other"}, "key-1")
    assert changed.status_code == 409 and changed.json()["code"] == "conflict"
    bad_key = _post(platform_hub, token, "api/models", body, "k" * 101)
    assert bad_key.status_code == 400


class StandIn:
    """A stand-in HTTP server on loopback answering from a script (not the service)."""

    def __init__(self, answers, delay: float = 0.0):
        self.answers, self.delay, self.seen = answers, delay, []
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                stand_in.seen.append((self.command, dict(self.headers), body))
                time.sleep(stand_in.delay)
                status, kind, payload = stand_in.answers[
                    min(len(stand_in.seen), len(stand_in.answers)) - 1
                ]
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{PREFIX}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


HTML_503 = (503, "text/html", b"<html><body><h1>503 Service Unavailable</h1></body></html>")


def test_a_post_is_retried_through_the_proxys_html_503_with_one_key():
    ok = json.dumps(
        {"error": "Model 'm' is not registered with the platform.", "code": "not_found"}
    )
    stand_in = StandIn([HTML_503, HTML_503, (404, "application/json", ok.encode())])
    try:
        settings = MlplatSettings(client_transport="http", service_url=stand_in.url)
        with pytest.raises(NotFoundError, match="not registered"):
            PlatformClient(settings, token="t", retry_seconds=10).request_approval("m", "1")
        keys = {headers["Idempotency-Key"] for _, headers, _ in stand_in.seen}
        assert len(stand_in.seen) == 3 and len(keys) == 1
    finally:
        stand_in.close()


def test_the_proxys_html_503_is_one_sentence_when_the_budget_runs_out():
    stand_in = StandIn([HTML_503])
    try:
        settings = MlplatSettings(client_transport="http", service_url=stand_in.url)
        with pytest.raises(ServiceUnavailable) as info:
            PlatformClient(settings, token="t", retry_seconds=1.0).me()
        message = str(info.value)
        assert "the proxy answered HTTP 503 without JSON" in message
        assert "restarting or down" in message and "<html>" not in message
    finally:
        stand_in.close()


# ---- the async client ----


async def test_the_async_client_over_http_through_the_hub(platform_hub, hub_tokens):
    rita = client(platform_hub, hub_tokens["rita"], cls=AsyncPlatformClient)
    me = await rita.me()
    assert (me.user, me.roles) == ("rita", ["reviewer"])
    assert (await rita.audit_verify()).ok
    with pytest.raises(NotFoundError):
        await rita.show_approval(4242)


async def test_the_async_client_never_blocks_the_event_loop():
    body = json.dumps({"status": "ok", "version": "stand-in"}).encode()
    stand_in = StandIn([(200, "application/json", body)], delay=1.0)
    try:
        settings = MlplatSettings(client_transport="http", service_url=stand_in.url)
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        task = asyncio.create_task(ticker())
        health = await AsyncPlatformClient(settings, token="t").health()
        task.cancel()
        assert health.version == "stand-in"
        assert ticks >= 10  # the loop kept running during the 1 s answer
    finally:
        stand_in.close()


# ---- an unreachable dependency is a 503 naming it, never a not-found ----


def test_mlflow_down_is_503_naming_it_not_a_missing_version(configure, tmp_path):
    from jupyter_mlplat.embedded import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    configure(user="alice", teams=["churn"], tracking_uri=dead, tracking_retry_seconds=1.0)
    local = PlatformClient(transport="inprocess")
    for call in (
        lambda: local.request_approval("churn-model", "1"),
        lambda: local.register_model("churn-model", "0123456789abcdef"),
    ):
        with pytest.raises(ServiceUnavailable) as info:
            call()
        assert dead in str(info.value) and "does not exist" not in str(info.value)


def test_idempotency_keys_past_their_ttl_are_pruned(tmp_path):
    from datetime import timedelta

    from jupyter_mlplat.store import Store, idempotency
    from jupyter_mlplat.store.models import IdempotencyKey, utcnow

    store = Store(f"sqlite:///{tmp_path / 'keys.db'}")
    try:
        for key in ("old", "new"):
            assert idempotency.begin(store, key, "alice", "approve", "f", 3600) is None
            idempotency.finish(store, key, "alice", 200, "{}")
        with store.transaction() as session:
            session.get(IdempotencyKey, ("old", "alice")).created_at = utcnow() - timedelta(hours=2)
        assert idempotency.prune(store, 3600) == 1
        assert idempotency.begin(store, "new", "alice", "approve", "f", 3600) == (200, "{}")
        assert idempotency.begin(store, "old", "alice", "approve", "f", 3600) is None  # acts again
    finally:
        store.dispose()


PRUNER = """
import asyncio, logging, os, signal
from datetime import timedelta
from jupyter_mlplat.service import app as service
from jupyter_mlplat.settings import get_settings
from jupyter_mlplat.store import idempotency
from jupyter_mlplat.store.db import get_store
from jupyter_mlplat.store.models import IdempotencyKey, utcnow

logging.basicConfig(level=logging.INFO)
service.PRUNE_EVERY_SECONDS = 0.5
store = get_store(get_settings())
idempotency.begin(store, "k", "alice", "approve", "f", 3600)
with store.transaction() as session:
    session.get(IdempotencyKey, ("k", "alice")).created_at = utcnow() - timedelta(days=3)

async def main():
    task = asyncio.create_task(service.serve(get_settings()))
    await asyncio.sleep(2.5)
    os.kill(os.getpid(), signal.SIGTERM)
    await task

asyncio.run(main())
with store.session() as session:
    print("left", session.get(IdempotencyKey, ("k", "alice")))
"""


def test_the_running_service_prunes_old_keys(tmp_path):
    import os
    import subprocess
    import sys

    from jupyter_mlplat.embedded import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLPLAT_", "JUPYTERHUB_"))}
    env.update(
        JUPYTERHUB_SERVICE_NAME="mlplat",
        JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{port}",
        JUPYTERHUB_SERVICE_PREFIX="/services/mlplat/",
        MLPLAT_HOME=str(tmp_path / "home"),
    )
    result = subprocess.run(
        [sys.executable, "-c", PRUNER], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "pruned 1 idempotency keys past their TTL" in result.stderr
    assert "left None" in result.stdout
