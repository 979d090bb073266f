"""The platform service under a real JupyterHub, and the client that reaches it.

One hub per session (tests/hub_fixtures.py, the real hub_config/): JupyterHub 6,
configurable-http-proxy, the service as a managed service, real single-user servers.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from jupyter_mlplat import __version__
from jupyter_mlplat.client import PlatformClient
from jupyter_mlplat.embedded import free_port, stop_process, wait_http
from jupyter_mlplat.errors import ServiceUnavailable, Unauthenticated
from jupyter_mlplat.identity import identity_from_hub_model
from jupyter_mlplat.service.auth import HubAuthenticator, HubMisconfigured
from jupyter_mlplat.settings import MlplatSettings
from tests.hub import JupyterHubProcess

PREFIX = "/services/mlplat"


@pytest.fixture(scope="session")
def hub(platform_hub):
    """The real hub of hub_config/ (tests/hub_fixtures.py)."""
    return platform_hub


@pytest.fixture(scope="session")
def tokens(hub_tokens):
    return hub_tokens


def service_get(hub, path, token=None, **kwargs):
    return hub.request("GET", f"{hub.url}{PREFIX}{path}", token=token, **kwargs)


def test_health_is_public(hub):
    response = service_get(hub, "/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__}
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize(
    "user, teams, roles",
    [("alice", ["churn"], []), ("bob", ["fraud"], []), ("rita", ["churn"], ["reviewer"])],
)
def test_me_through_the_proxy_reports_teams_and_roles(hub, tokens, user, teams, roles):
    response = service_get(hub, "/api/me", token=tokens[user])
    assert response.status_code == 200, response.text
    assert response.json() == {
        "user": user,
        "kind": "user",
        "teams": teams,
        "roles": roles,
        "source": "JupyterHub groups",
    }


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "token "}, {"Authorization": "Basic YWxpY2U6eA=="}],
    ids=["none", "empty", "basic"],
)
def test_missing_token_is_401(hub, headers):
    response = service_get(hub, "/api/me", headers=headers)
    assert response.status_code == 401
    assert "Authorization: token" in response.json()["error"]


def test_unknown_token_is_401(hub):
    response = service_get(hub, "/api/me", token="not-a-real-token-0123456789")
    assert response.status_code == 401
    assert "does not recognise this token" in response.json()["error"]


def test_token_in_url_is_ignored(hub, tokens):
    response = service_get(hub, f"/api/me?token={tokens['alice']}")
    assert response.status_code == 401


def test_token_without_service_access_is_403(hub):
    token = hub.create_user_token("alice", scopes=["read:users:name!user=alice"])
    response = service_get(hub, "/api/me", token=token)
    assert response.status_code == 403
    assert "access:services!service=mlplat" in response.json()["error"]


def test_no_impersonation(hub, tokens):
    unknown = service_get(hub, "/api/me", token=tokens["alice"], params={"user": "bob"})
    assert unknown.status_code == 400 and unknown.json()["code"] == "usage"
    assert "user is not a field" in unknown.json()["error"]
    attempts = [
        {"params": {"token": tokens["bob"]}},
        {"headers": {"X-Forwarded-User": "bob", "X-Remote-User": "bob"}},
        {"headers": {"JUPYTERHUB_USER": "bob", "Cookie": "jupyterhub-user=bob"}},
    ]
    for attempt in attempts:
        response = service_get(hub, "/api/me", token=tokens["alice"], **attempt)
        assert response.status_code == 200, attempt
        assert response.json()["user"] == "alice", attempt


def test_a_service_token_is_a_service_caller(hub):
    response = service_get(hub, "/api/me", token=hub.admin_token)
    assert response.status_code == 200
    assert response.json()["kind"] == "service"
    assert response.json()["teams"] == []


def test_errors_are_one_json_sentence(hub, tokens):
    missing = service_get(hub, "/api/nope", token=tokens["alice"])
    assert missing.status_code == 404
    assert missing.json()["error"].startswith("The platform service has no endpoint")
    wrong_method = hub.request("POST", f"{hub.url}{PREFIX}/api/me", token=tokens["alice"])
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {
        "error": f"POST is not allowed on {PREFIX}/api/me; see the API of this endpoint.",
        "code": "usage",
    }
    assert missing.json()["code"] == "not_found"


def test_metrics_need_read_metrics_or_admin(hub, tokens):
    service_get(hub, "/api/me", token=tokens["bob"])
    assert service_get(hub, "/metrics").status_code == 401
    assert service_get(hub, "/metrics", token=tokens["alice"]).status_code == 403
    response = service_get(hub, "/metrics", token=hub.admin_token)  # has read:metrics
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert 'mlplat_service_requests_total{handler="me",method="GET",status="200"}' in response.text
    assert 'mlplat_service_request_duration_seconds_bucket{handler="me"' in response.text
    # The state gauges, read from the service's store at the scrape.
    for gauge in ("mlplat_job_runs", "mlplat_approval_requests", "mlplat_deployments"):
        assert f"# TYPE {gauge} gauge" in response.text


def test_client_over_http_through_the_proxy(hub, tokens):
    settings = MlplatSettings(client_transport="http", service_url=f"{hub.url}{PREFIX}/")
    client = PlatformClient(settings, token=tokens["rita"])
    assert client.transport == "http"
    assert client.health().version == __version__
    identity = client.identity()
    assert (identity.user, identity.teams, identity.roles) == ("rita", ("churn",), ("reviewer",))
    with pytest.raises(Unauthenticated, match="does not recognise this token"):
        PlatformClient(settings, token="garbage-token-0123456789").me()


async def test_single_user_server_reaches_the_service(hub):
    server = hub.spawn("alice")
    assert server["ready"]
    code = (
        "import json, os, urllib.request\n"
        "from jupyter_mlplat.client import PlatformClient\n"
        "client = PlatformClient()\n"
        "me = client.me()\n"
        "request = urllib.request.Request(os.environ['JUPYTERHUB_API_URL'] + '/user', headers={\n"
        "    'Authorization': 'token ' + os.environ['JUPYTERHUB_API_TOKEN']})\n"
        "scopes = json.load(urllib.request.urlopen(request))['scopes']\n"
        "print(json.dumps({'transport': client.transport, 'url': client.service_url,\n"
        "                  'scopes': scopes, **me.model_dump()}))\n"
    )
    output = await hub.execute("alice", code, token=hub.create_user_token("alice"))
    result = json.loads(output.strip().splitlines()[-1])
    assert result["transport"] == "http"
    assert result["url"].endswith(f"{PREFIX}/")
    assert (result["user"], result["teams"], result["roles"]) == ("alice", ["churn"], [])
    # The server's token carries service access (Spawner.server_token_scopes), not 'self'.
    assert "access:services!service=mlplat" in result["scopes"]
    assert not any(scope.startswith("servers!") for scope in result["scopes"])


async def test_group_lookup_with_the_service_token(hub, tokens):
    settings = MlplatSettings(hub_api_url=hub.hub_api_url, hub_api_token=hub.admin_token)
    authenticator = HubAuthenticator(settings)
    assert sorted(await authenticator.user_groups({"name": "rita"})) == [
        "mlplat-reviewers",
        "team-churn",
    ]
    weak = HubAuthenticator(MlplatSettings(hub_api_url=hub.hub_api_url, hub_api_token="x" * 32))
    with pytest.raises(HubMisconfigured) as info:
        await weak.user_groups({"name": "rita"})
    assert info.value.http_status == 500
    assert "read:users:groups" in str(info.value)


class ServiceProcess:
    """A second, stand-alone platform service process that checks tokens with the hub."""

    def __init__(self, hub: JupyterHubProcess, workdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{PREFIX}/"
        self.log = workdir / "service.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
        self.env.update(
            JUPYTERHUB_SERVICE_NAME="mlplat",
            JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{self.port}",
            JUPYTERHUB_SERVICE_PREFIX=f"{PREFIX}/",
            JUPYTERHUB_API_URL=hub.hub_api_url,
            JUPYTERHUB_API_TOKEN=hub.admin_token,
            MLPLAT_HOME=str(workdir / "home"),
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            command = [sys.executable, "-m", "jupyter_mlplat.service"]
            self.proc = subprocess.Popen(command, env=self.env, stdout=log, stderr=log)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


def test_client_rides_out_a_service_restart(hub, tokens, tmp_path):
    service = ServiceProcess(hub, tmp_path)
    service.start()
    timer = None
    try:
        wait_http(service.url + "api/health", service.proc, timeout=30)
        settings = MlplatSettings(client_transport="http", service_url=service.url)
        client = PlatformClient(settings, token=tokens["bob"], retry_seconds=20)
        assert client.me().teams == ["fraud"]
        service.stop()
        timer = threading.Timer(1.0, service.start)
        started = time.monotonic()
        timer.start()
        me = client.me()  # refused connections until the new process listens
        elapsed = time.monotonic() - started
        assert me.user == "bob"
        assert 1.0 <= elapsed < 20
    finally:
        if timer is not None:
            timer.join()
        service.stop()


def test_client_gives_up_after_its_budget_naming_the_url():
    url = f"http://127.0.0.1:{free_port()}{PREFIX}/"
    settings = MlplatSettings(client_transport="http", service_url=url, client_retry_seconds=1.5)
    client = PlatformClient(settings, token="any")
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as info:
        client.me()
    elapsed = time.monotonic() - started
    assert 1.4 <= elapsed < 4
    message = str(info.value)
    assert f"{url}api/me" in message and "1.5 s" in message


def test_client_retries_while_the_proxy_answers_503(tmp_path):
    """CHP answers 503 (an HTML page) while a service restarts; the client waits it out."""
    answers = [(503, "text/html", b"<h1>503</h1>")] * 2
    answers.append((200, "application/json", b'{"status": "ok", "version": "9"}'))
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers["Authorization"])
            status, kind, body = answers[min(len(seen), len(answers)) - 1]
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}{PREFIX}/"
        settings = MlplatSettings(client_transport="http", service_url=url)
        health = PlatformClient(settings, token="tok", retry_seconds=10).health()
        assert health.version == "9"
        assert seen == ["token tok"] * 3
    finally:
        server.shutdown()
        server.server_close()


def test_inprocess_client_uses_local_identity(configure, monkeypatch):
    for name in ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN", "MLPLAT_CLIENT_TRANSPORT"):
        monkeypatch.delenv(name, raising=False)
    settings = configure(user="dana", teams=["churn", "fraud"])
    client = PlatformClient()
    assert client.transport == "inprocess"
    assert client.health().version == __version__
    me = client.me()
    assert (me.user, me.teams, me.roles, me.source) == ("dana", ["churn", "fraud"], [], "test")
    assert client.identity().teams == tuple(settings.teams)


def test_auto_transport_is_http_inside_a_hub():
    inside = MlplatSettings(hub_api_url="http://127.0.0.1:1/hub/api", hub_api_token="t")
    client = PlatformClient(inside)
    assert client.transport == "http"
    with pytest.raises(ServiceUnavailable, match="MLPLAT_SERVICE_URL"):
        client.me()


def test_identity_from_hub_model_groups():
    settings = MlplatSettings()
    model = {"name": "ann", "groups": ["team-b", "team-a", "team-", "mlplat-admins", "other"]}
    identity = identity_from_hub_model(model, settings)
    assert identity.teams == ("a", "b") and identity.roles == ("admin",)
    service = identity_from_hub_model({"name": "cron", "kind": "service"}, settings)
    assert service.teams == () and service.roles == ()
