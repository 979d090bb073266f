"""Every route of the server extension, attacked: no credentials, a resource the
authorizer denies, and a login cookie without the XSRF token.

A real Jupyter server (pytest-jupyter) with ``allow_unauthenticated_access = False`` and a
recording authorizer; the routes are read from the extension itself, so a route added
later is attacked too.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.parse

import pytest
from jupyter_server.auth.authorizer import Authorizer
from tornado.httpclient import HTTPClientError

from jupyter_mlplat.server.handlers import handler_specs

pytest_plugins = ["pytest_jupyter.jupyter_server"]

SAMPLE = {
    "run_id": "1", "request_id": "1", "schedule_id": "1", "name": "dep", "model": "m",
    "version": "1", "task": "t",
}  # fmt: skip
RUN_ID = "0123456789abcdef0123456789abcdef"


class RecordingAuthorizer(Authorizer):
    """Allows everything but the resources in ``denied``; records what it was asked."""

    denied: set[str] = set()
    asked: list[tuple[str, str]] = []

    def is_authorized(self, handler, user, action, resource) -> bool:
        RecordingAuthorizer.asked.append((resource, action))
        return resource not in RecordingAuthorizer.denied


def routes() -> list[tuple[str, str, str]]:
    """(method, path below the base URL, resource) for every route the extension serves."""
    found = []
    for spec in handler_specs():
        pattern, handler = spec[0], spec[1]
        if len(spec) == 2:
            found.append(("GET", pattern.lstrip("/"), handler.auth_resource))
            continue
        kwargs = spec[2]
        resource = handler.auth_resource

        def fill(match: re.Match, pattern: str = pattern) -> str:
            name = match.group(1)
            if name == "run_id" and "/runs/" in pattern:
                return RUN_ID
            return SAMPLE[name]

        path = re.sub(r"\(\?P<([a-z_]+)>\[\^/\]\+\)", fill, pattern).lstrip("/")
        found += [(method, path, resource) for method in kwargs["endpoints"]]
    return found


ROUTES = routes()


@pytest.fixture
def jp_server_config():
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_mlplat": True},
            "allow_unauthenticated_access": False,
            "authorizer_class": RecordingAuthorizer,
        }
    }


@pytest.fixture
def call(jp_serverapp, jp_fetch, jp_asyncio_loop, configure):
    """``call(method, path, headers=..., body=...)`` → (status, body, response); never
    raises. ``headers`` replace the test token pytest-jupyter would send."""
    configure(user="dana", teams=["churn"])
    asyncio.set_event_loop(jp_asyncio_loop)  # jp_fetch makes its future on the current loop

    def _call(method: str, path: str, headers: dict | None = None, body: str | None = None):
        path, _, query = path.partition("?")
        params = dict(urllib.parse.parse_qsl(query))
        sent = {"Authorization": "", **(headers or {})}

        async def request():
            try:
                response = await jp_fetch(
                    *path.split("/"), method=method, headers=sent, params=params,
                    body=(body if body is not None else "{}") if method == "POST" else None,
                    follow_redirects=False,
                )  # fmt: skip
            except HTTPClientError as exc:
                return exc.code, exc.response.body if exc.response else b"", exc.response
            return response.code, response.body, response

        return jp_asyncio_loop.run_until_complete(request())

    return _call


def test_the_extension_serves_every_declared_endpoint_and_status():
    from jupyter_mlplat.application import ENDPOINTS

    paths = {path for _, path, _ in ROUTES}
    declared = [e for e in ENDPOINTS.values() if not e.public]
    assert "mlplat/api/status" in paths
    assert len([r for r in ROUTES if r[1] != "mlplat/api/status"]) == len(declared)
    assert {resource for *_, resource in ROUTES} == {
        "mlplat:status", "mlplat:core", "mlplat:governance", "mlplat:serving", "mlplat:jobs",
        "mlplat:pipelines", "mlplat:runs",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "resource"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES]
)
def test_every_route_refuses_a_request_without_credentials(call, method, path, resource):
    RecordingAuthorizer.asked.clear()
    status, body, _ = call(method, path)
    assert status in (401, 403), (status, body[:200])
    assert b'"code"' not in body  # refused by the server, before the platform was called
    assert RecordingAuthorizer.asked == []  # not even asked: nobody was authenticated


@pytest.mark.parametrize(
    ("method", "path", "resource"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES]
)
def test_every_route_asks_the_authorizer_for_its_resource_and_obeys(
    call, jp_auth_header, method, path, resource
):
    action = "read" if method == "GET" else "write"
    RecordingAuthorizer.denied = {resource}
    RecordingAuthorizer.asked.clear()
    try:
        status, body, _ = call(method, path, headers=jp_auth_header)
    finally:
        RecordingAuthorizer.denied = set()
    assert status == 403, (status, body[:200])
    assert b'"code"' not in body
    assert (resource, action) in RecordingAuthorizer.asked
    # Allowed, the same request reaches the platform: an answer of the error table or data.
    RecordingAuthorizer.asked.clear()
    status, body, _ = call(method, path, headers=jp_auth_header)
    assert (resource, action) in RecordingAuthorizer.asked
    assert status != 403 or json.loads(body).get("code") == "forbidden", body[:200]


@pytest.fixture
def login_cookie(call, jp_serverapp):
    """The server's login cookie, as a browser gets it (token once in the URL)."""
    token = jp_serverapp.identity_provider.token
    status, _, response = call("GET", f"api/status?token={urllib.parse.quote(token)}")
    assert status == 200
    cookies = [v for k, v in response.headers.get_all() if k.lower() == "set-cookie"]
    login = [c.split(";")[0] for c in cookies if c.startswith("username-")]
    assert login, cookies
    return login[0]


def test_cookie_writes_without_the_xsrf_token_are_refused(call, login_cookie):
    posts = [(m, p) for m, p, _ in ROUTES if m == "POST"]
    assert len(posts) > 10
    for method, path in posts:
        status, body, _ = call(method, path, headers={"Cookie": login_cookie})
        assert status == 403, (path, status, body[:200])
        assert b"XSRF" in body or b"xsrf" in body, body[:200]
    # The same cookie reads (GET needs no XSRF token) and, with the token, writes.
    status, body, _ = call("GET", "mlplat/api/me", headers={"Cookie": login_cookie})
    assert status == 200 and json.loads(body)["user"] == "dana"
    xsrf = "2|abcdef12|0123456789abcdef0123456789abcdef|1700000000"
    status, body, _ = call(
        "POST", "mlplat/api/approvals/1/reject",
        headers={"Cookie": f"{login_cookie}; _xsrf={xsrf}", "X-XSRFToken": xsrf},
        body=json.dumps({"comment": "no"}),
    )  # fmt: skip
    assert status == 404 and json.loads(body)["code"] == "not_found", body[:300]
