"""The Jupyter Server extension, through pytest-jupyter's real server.

pytest-jupyter drives the server on its own IOLoop (not pytest-asyncio's), so
these tests are synchronous and run each request on that loop.
"""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import HTTPClientError

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mlplat": True}}}


@pytest.fixture
def fetch(jp_serverapp, jp_fetch, io_loop):
    def _fetch(*parts, **kwargs):
        return io_loop.run_sync(lambda: jp_fetch(*parts, **kwargs))

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
