"""A real JupyterHub for tests: ``jupyterhub -f CONFIG`` with configurable-http-proxy.

Usage (session-scoped fixture)::

    hub = JupyterHubProcess(config_file, tmp_path, env={...}).start()
    token = hub.create_user_token("alice")
    hub.api("GET", "/users/alice").json()
    hub.spawn("alice")
    await hub.execute("alice", "print(1)")
    hub.stop()

The hub, the proxy's public side and the proxy's API listen on free loopback ports
given on the command line, so any config file works. An admin token is made per
run and given to the hub through the environment: a wrapper config loads the
given file, then adds a token-only service ``pytest-admin`` holding it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

from jupyter_mlplat.embedded import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
# The checkout's configurable-http-proxy (npm); hubs under test find it on PATH, as
# `make up` does, not through a path computed by the package.
CHP = REPO_ROOT / "node_modules" / ".bin" / "configurable-http-proxy"


def path_with_proxy(path: str | None = None) -> str:
    """``PATH`` (default this process's) with the checkout's node_modules/.bin first."""
    rest = path if path is not None else os.environ.get("PATH", os.defpath)
    return os.pathsep.join([str(CHP.parent), *(p for p in rest.split(os.pathsep) if p)])


ADMIN_SCOPES = [
    "admin:users", "admin:servers", "admin:groups", "tokens", "access:servers",
    "access:services", "read:metrics", "read:services", "list:services", "read:hub", "read:roles",
]  # fmt: skip

_WRAPPER = """\
# Written by tests/hub.py: the config under test plus this run's admin token.
import os
c = get_config()  # noqa: F821
load_subconfig({config!r})  # noqa: F821
c.JupyterHub.services.append(
    {{"name": "pytest-admin", "api_token": os.environ["MLPLAT_TEST_HUB_ADMIN_TOKEN"]}}
)
c.JupyterHub.load_roles.append(
    {{"name": "pytest-admin", "scopes": {scopes!r}, "services": ["pytest-admin"]}}
)
"""


class JupyterHubProcess:
    """One ``jupyterhub`` process (and the proxy it starts) on free loopback ports."""

    def __init__(self, config_file: Path, workdir: Path, env: dict | None = None):
        self.config_file = Path(config_file).resolve()
        self.workdir = Path(workdir).resolve()
        self.env = dict(env or {})
        ports: set[int] = set()
        while len(ports) < 3:
            ports.add(free_port())
        self.port, self.hub_port, self.proxy_api_port = sorted(ports)
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/hub/api"
        # The hub's own API without the proxy, as single-user servers and services see it.
        self.hub_api_url = f"http://127.0.0.1:{self.hub_port}/hub/api"
        self.admin_token = secrets.token_hex(32)
        self.log_path = self.workdir / "jupyterhub.log"
        self.proc: subprocess.Popen | None = None
        self._session = requests.Session()
        self._session.trust_env = False

    # ---- process ------------------------------------------------------------------

    def command(self, config: Path) -> list[str]:
        return [
            str(Path(sys.executable).with_name("jupyterhub")), "-f", str(config),
            "--ip=127.0.0.1", f"--port={self.port}",
            "--JupyterHub.hub_ip=127.0.0.1", f"--JupyterHub.hub_port={self.hub_port}",
            f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{self.proxy_api_port}",
            f"--ConfigurableHTTPProxy.pid_file={self.workdir / 'proxy.pid'}",
            f"--JupyterHub.pid_file={self.workdir / 'jupyterhub.pid'}",
            f"--JupyterHub.db_url=sqlite:///{self.workdir / 'jupyterhub.sqlite'}",
            f"--JupyterHub.cookie_secret_file={self.workdir / 'jupyterhub_cookie_secret'}",
        ]  # fmt: skip

    def start(self, timeout: float = 60) -> JupyterHubProcess:
        if not CHP.exists():
            raise RuntimeError(f"{CHP} is missing; run `npm install` in {REPO_ROOT}.")
        self.workdir.mkdir(parents=True, exist_ok=True)
        wrapper = self.workdir / "jupyterhub_test_config.py"
        wrapper.write_text(_WRAPPER.format(config=str(self.config_file), scopes=ADMIN_SCOPES))
        env = {
            **os.environ,
            **self.env,
            "MLPLAT_TEST_HUB_ADMIN_TOKEN": self.admin_token,
            "MLPLAT_TEST_HUB_WORKDIR": str(self.workdir),
        }
        env["PATH"] = path_with_proxy(env.get("PATH"))
        for name in [k for k in env if k.startswith("JUPYTERHUB_")]:
            env.pop(name)  # a hub run from inside a hub must not inherit its identity
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(wrapper),
                cwd=self.workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self.wait_for("/hub/health", timeout=timeout)  # 200 without a login
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, grace: float = 20) -> None:
        """SIGTERM the hub (it stops its servers, services and proxy), then clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stop_orphaned_proxy()
        self._session.close()

    def _stop_orphaned_proxy(self) -> None:
        """A hub that had to be killed leaves its proxy and the pid file it wrote."""
        pid_file = self.workdir / "proxy.pid"
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            return  # a clean shutdown removed the file, or the proxy is gone
        # Only our proxy: the pid may have been reused since the file was written.
        if "configurable-http-proxy" in cmdline and str(self.proxy_api_port) in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_for(self, path: str, status: int = 200, timeout: float = 30, token=None) -> None:
        """Wait until ``GET <url><path>`` through the proxy answers ``status``."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"jupyterhub exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                response = self.request("GET", self.url + path, token=token, timeout=5)
                if response.status_code == status:
                    return
                last = f"HTTP {response.status_code}"
            except requests.RequestException as exc:
                last = str(exc)
            time.sleep(0.2)
        raise TimeoutError(f"{self.url}{path} gave {last} for {timeout:.0f} s:\n{self.log_tail()}")

    # ---- REST ---------------------------------------------------------------------

    def request(self, method: str, url: str, token=None, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"token {token}"
        kwargs.setdefault("timeout", 30)
        return self._session.request(method, url, headers=headers, **kwargs)

    def api(self, method: str, path: str, token=None, json=None) -> requests.Response:
        """Call the Hub REST API (``path`` under /hub/api) with the admin token by default."""
        return self.request(method, self.api_url + path, token=token or self.admin_token, json=json)

    def create_user_token(self, user: str, scopes: list[str] | None = None) -> str:
        body = {"note": "pytest", "expires_in": 3600}
        if scopes is not None:
            body["scopes"] = scopes
        response = self.api("POST", f"/users/{user}/tokens", json=body)
        response.raise_for_status()
        return response.json()["token"]

    def spawn(self, user: str, options: dict | None = None, wait: bool = True, timeout=60) -> dict:
        """Start ``user``'s default server; with ``wait``, until it is ready. Its model."""
        response = self.api("POST", f"/users/{user}/server", json=options or {})
        if response.status_code not in (201, 202, 400):
            response.raise_for_status()
        deadline = time.monotonic() + timeout
        while True:
            server = self.api("GET", f"/users/{user}").json().get("servers", {}).get("", {})
            if not wait or server.get("ready"):
                return server
            if not server or time.monotonic() > deadline:
                raise RuntimeError(f"{user}'s server did not become ready:\n{self.log_tail()}")
            time.sleep(0.3)

    def stop_server(self, user: str, timeout: float = 60) -> None:
        self.api("DELETE", f"/users/{user}/server")
        deadline = time.monotonic() + timeout
        while self.api("GET", f"/users/{user}").json().get("servers") and (
            time.monotonic() < deadline
        ):
            time.sleep(0.3)

    # ---- code inside a single-user server --------------------------------------------

    async def execute(self, user: str, code: str, token=None, timeout: float = 60) -> str:
        """Run ``code`` in a new kernel of ``user``'s running server; its stdout.

        Raises ``RuntimeError`` with the traceback if the code fails.
        """
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        token = token or self.admin_token
        base = f"{self.url}/user/{user}/api/kernels"
        response = self.request("POST", base, token=token, json={"name": "python3"})
        response.raise_for_status()
        kernel_id = response.json()["id"]
        ws_url = base.replace("http://", "ws://") + f"/{kernel_id}/channels"
        headers = {"Authorization": f"token {token}"}
        conn = await websocket_connect(HTTPRequest(ws_url, headers=headers, connect_timeout=30))
        try:
            msg_id = uuid.uuid4().hex
            conn.write_message(json.dumps(_execute_request(msg_id, code)))
            return await _collect_output(conn, msg_id, time.monotonic() + timeout)
        finally:
            conn.close()
            self.request("DELETE", f"{base}/{kernel_id}", token=token)


def _execute_request(msg_id: str, code: str) -> dict:
    header = {
        "msg_id": msg_id, "msg_type": "execute_request", "username": "pytest",
        "session": uuid.uuid4().hex, "version": "5.3", "date": "",
    }  # fmt: skip
    content = {
        "code": code, "silent": False, "store_history": False, "user_expressions": {},
        "allow_stdin": False, "stop_on_error": True,
    }  # fmt: skip
    return {
        "header": header, "parent_header": {}, "metadata": {}, "content": content,
        "channel": "shell", "buffers": [],
    }  # fmt: skip


async def _collect_output(conn, msg_id: str, deadline: float) -> str:
    import asyncio

    stdout: list[str] = []
    error = None
    idle = replied = False
    while not (idle and replied):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the kernel did not finish in time")
        raw = await asyncio.wait_for(conn.read_message(), remaining)
        if raw is None:
            raise RuntimeError("the kernel websocket closed")
        msg = json.loads(raw)
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream" and content.get("name") == "stdout":
            stdout.append(content["text"])
        elif kind == "error":
            error = "\n".join(content.get("traceback", [])) or content.get("evalue")
        elif kind == "status" and content.get("execution_state") == "idle":
            idle = True
        elif kind == "execute_reply":
            replied = True
    if error:
        raise RuntimeError(f"code failed in the kernel:\n{error}")
    return "".join(stdout)
