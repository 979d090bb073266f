"""The Jupyter Server extension, through pytest-jupyter's real server.

pytest-jupyter drives the server on its own asyncio loop (``jp_asyncio_loop``, not
pytest-asyncio's), so these tests are synchronous and run each request on that very loop:
``IOLoop.current()`` can name another loop once earlier tests (nbclient, async tests) have
left theirs behind, and running that one would never serve the request.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from tornado.httpclient import HTTPClientError

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mlplat": True}}}


@pytest.fixture
def fetch(jp_serverapp, jp_fetch, jp_asyncio_loop):
    asyncio.set_event_loop(jp_asyncio_loop)  # jp_fetch makes its future on the current loop

    def _fetch(*parts, **kwargs):
        async def request():
            return await jp_fetch(*parts, **kwargs)

        return jp_asyncio_loop.run_until_complete(request())

    return _fetch


def test_status_endpoint_answers_with_identity(fetch, configure, sqlite_tracking_uri):
    configure(tracking_uri=sqlite_tracking_uri)
    response = fetch("mlplat", "api", "status")
    assert response.code == 200
    body = json.loads(response.body)
    assert body["user"] == "alice"
    assert body["teams"] == ["churn", "fraud"]
    assert body["tracking_uri"] == sqlite_tracking_uri


def test_status_endpoint_refuses_requests_without_a_token(fetch, configure):
    configure()
    with pytest.raises(HTTPClientError) as caught:
        fetch("mlplat", "api", "status", headers={"Authorization": ""})
    assert caught.value.code in (401, 403)


def test_platform_endpoints_are_served_through_the_async_client(fetch, configure):
    configure(user="dana", teams=["churn"])
    me = json.loads(fetch("mlplat", "api", "me").body)
    assert (me["user"], me["teams"]) == ("dana", ["churn"])
    page = json.loads(fetch("mlplat", "api", "approvals", params={"pending": "true"}).body)
    assert page == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        (("mlplat", "api", "approvals", "4242"), 404, "not_found"),
        (("mlplat", "api", "approvals", "99999999999999999999999999"), 400, "usage"),
        (("mlplat", "api", "audit", "verify"), 403, "forbidden"),
    ],
)
def test_extension_maps_errors_with_the_error_table(fetch, configure, path, status, code):
    configure(user="dana", teams=["churn"])
    with pytest.raises(HTTPClientError) as caught:
        fetch(*path)
    assert caught.value.code == status
    body = json.loads(caught.value.response.body)
    assert body["code"] == code and body["error"].endswith(".")


def test_extension_refuses_unauthenticated_reads_and_writes(fetch, configure):
    """No token and no login cookie: refused before the platform is called."""
    configure(user="dana", teams=["churn"])
    with pytest.raises(HTTPClientError) as caught:
        fetch(
            "mlplat", "api", "approvals", method="POST",
            body=json.dumps({"model": "m", "version": "1"}),
            headers={"Authorization": "", "Cookie": "_xsrf=abc"},
        )  # fmt: skip
    assert caught.value.code in (401, 403)
    with pytest.raises(HTTPClientError) as caught:
        fetch("mlplat", "api", "me", headers={"Authorization": ""})
    assert caught.value.code in (401, 403)


def test_a_cache_buster_and_the_token_are_not_fields_but_unknown_names_are_refused(
    fetch, configure
):
    """ServerConnection's `cache: 'no-store'` appends a bare `&<timestamp>`; a browser may
    carry `?token=`. Neither is a field; an unknown named argument is still a 400."""
    configure(user="dana", teams=["churn"])
    page = fetch("mlplat", "api", "approvals", params={"1796187182359": "", "limit": "5"})
    assert json.loads(page.body) == {"items": [], "next_cursor": None}
    with pytest.raises(HTTPClientError) as caught:
        fetch("mlplat", "api", "approvals", params={"bogus": "1"})
    assert caught.value.code == 400 and "bogus" in json.loads(caught.value.response.body)["error"]
