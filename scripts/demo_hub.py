"""A headless browser of the hub for scripts/demo.py: log in through the login form, get an
API token, start and stop a user's server, and open a notebook there as JupyterLab does (the
notebook saved through the contents API, a session for it, its kernel's websocket) to run
cells and collect what they print.

It talks HTTP and the Jupyter messaging protocol only (requests, tornado's websocket client)
and imports nothing of jupyter_mlplat or tests/.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid
from dataclasses import dataclass, field

import requests

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class HubError(RuntimeError):
    """The hub or a user's server refused or did not answer; one sentence."""


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # loopback only: never through an HTTP proxy of the machine
    return session


def _xsrf(session: requests.Session, page: requests.Response) -> str:
    found = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    return found[1] if found else session.cookies.get("_xsrf", "")


class Hub:
    """The hub at ``url`` (its public, proxied address)."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self._http = _session()

    def request(self, method: str, path: str, token: str, **kwargs) -> requests.Response:
        """``path`` under the hub's URL (or a whole URL), with ``token``."""
        headers = {"Authorization": f"token {token}", **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 60)
        url = path if path.startswith(("http://", "https://")) else self.url + path
        return self._http.request(method, url, headers=headers, **kwargs)

    def login_token(self, user: str, password: str, note: str, expires_in: int) -> str:
        """Log in through the login form, as a browser does, and make an API token there."""
        browser = _session()
        page = browser.get(f"{self.url}/hub/login", timeout=30)
        answer = browser.post(
            f"{self.url}/hub/login?next=",
            data={"username": user, "password": password, "_xsrf": _xsrf(browser, page)},
            allow_redirects=False,
            timeout=60,
        )
        if answer.status_code != 302:
            raise HubError(f"the hub refused {user}'s login (HTTP {answer.status_code})")
        # A page after the login carries the XSRF token of the logged-in session.
        page = browser.get(f"{self.url}/hub/token", timeout=30)
        made = browser.post(
            f"{self.url}/hub/api/users/{user}/tokens",
            json={"note": note, "expires_in": expires_in},
            headers={"X-XSRFToken": _xsrf(browser, page), "Referer": f"{self.url}/hub/token"},
            timeout=30,
        )
        browser.close()
        if made.status_code != 201:
            raise HubError(f"no API token for {user}: HTTP {made.status_code} {made.text[:200]}")
        return made.json()["token"]

    def _server(self, user: str, token: str) -> dict | None:
        answer = self.request("GET", f"/hub/api/users/{user}", token, timeout=30)
        answer.raise_for_status()
        return answer.json().get("servers", {}).get("")

    def spawn(self, user: str, token: str, timeout: float) -> None:
        """Start ``user``'s server with their default profile; return once it is ready."""
        answer = self.request("POST", f"/hub/api/users/{user}/server", token, json={})
        if answer.status_code not in (201, 202, 400):  # 400: it is running already
            raise HubError(
                f"{user}'s server did not start: HTTP {answer.status_code} {_message(answer)}"
            )
        deadline = time.monotonic() + timeout
        while True:
            server = self._server(user, token)
            if server and server.get("ready"):
                break
            if not server:
                raise HubError(f"{user}'s server stopped while starting (see the hub's log)")
            if time.monotonic() > deadline:
                raise HubError(f"{user}'s server was not ready after {timeout:.0f} s")
            time.sleep(0.5)
        # Ready in the hub means its API answers; through the proxy too before going on.
        while self.request("GET", f"/user/{user}/api/status", token).status_code != 200:
            if time.monotonic() > deadline:
                raise HubError(f"{user}'s server does not answer through the proxy")
            time.sleep(0.5)

    def stop_server(self, user: str, token: str, timeout: float = 60) -> bool:
        """Stop ``user``'s server; True once the hub says it is gone."""
        self.request("DELETE", f"/hub/api/users/{user}/server", token, timeout=timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._server(user, token) is None:
                return True
            time.sleep(0.5)
        return False


def _message(answer: requests.Response) -> str:
    try:
        return str(answer.json().get("message") or answer.json())[:300]
    except ValueError:
        return answer.text[:300]


@dataclass
class CellResult:
    """What a cell printed and how it ended."""

    ok: bool
    stdout: str = ""
    stderr: str = ""
    error: str = ""  # "EName: value", or what went wrong around the kernel
    traceback: list[str] = field(default_factory=list)

    def markers(self, prefix: str) -> dict:
        """The JSON objects of the lines ``<prefix> {...}`` the cell printed, merged."""
        found: dict = {}
        for line in self.stdout.splitlines():
            if line.startswith(prefix + " "):
                found.update(json.loads(line[len(prefix) + 1 :]))
        return found


def notebook_json(cells: list[str]) -> dict:
    return {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": uuid.uuid4().hex[:8],
                "metadata": {},
                "outputs": [],
                "source": source,
            }
            for source in cells
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


class Notebook:
    """A notebook of a user's server with its kernel, opened as JupyterLab opens one.

    ``save(cells)`` writes the notebook (``path`` relative to the server's root), ``open()``
    starts a session for it (the kernel gets ``JPY_SESSION_NAME``, the notebook's path) and
    connects to the kernel's websocket, ``run(code)`` executes one cell.
    """

    def __init__(self, hub: Hub, user: str, token: str, path: str):
        self.hub, self.user, self.token, self.path = hub, user, token, path
        self.base = f"/user/{user}/api"
        self.session_id = self.kernel_id = None
        self._client_session = uuid.uuid4().hex
        self._ws = None

    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.hub.request(method, self.base + path, self.token, **kwargs)

    def save(self, cells: list[str]) -> None:
        model = {"type": "notebook", "format": "json", "content": notebook_json(cells)}
        answer = self._call("PUT", f"/contents/{self.path}", json=model)
        if answer.status_code not in (200, 201):
            raise HubError(
                f"could not save {self.path} in {self.user}'s folder: HTTP "
                f"{answer.status_code} {_message(answer)}"
            )

    def upload(self, name: str, content: dict) -> None:
        """Put another notebook into the user's folder (as dragging a file into Lab does)."""
        model = {"type": "notebook", "format": "json", "content": content}
        answer = self._call("PUT", f"/contents/{name}", json=model)
        if answer.status_code not in (200, 201):
            raise HubError(
                f"could not upload {name} to {self.user}'s folder: HTTP "
                f"{answer.status_code} {_message(answer)}"
            )

    def exists(self, name: str) -> bool:
        return self._call("GET", f"/contents/{name}?content=0").status_code == 200

    async def open(self, timeout: float = 120) -> None:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        name = self.path.rsplit("/", 1)[-1]
        body = {"path": self.path, "name": name, "type": "notebook", "kernel": {"name": "python3"}}
        answer = self._call("POST", "/sessions", json=body, timeout=timeout)
        if answer.status_code != 201:
            raise HubError(
                f"no kernel for {self.path} in {self.user}'s server: HTTP "
                f"{answer.status_code} {_message(answer)}"
            )
        session = answer.json()
        self.session_id, self.kernel_id = session["id"], session["kernel"]["id"]
        url = self.hub.url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        url += f"{self.base}/kernels/{self.kernel_id}/channels?session_id={self._client_session}"
        request = HTTPRequest(
            url, headers={"Authorization": f"token {self.token}"}, connect_timeout=60
        )
        self._ws = await websocket_connect(request, ping_interval=20, max_message_size=1 << 26)
        # The kernel has started once it answers kernel_info.
        msg_id = self._send("kernel_info_request", {})
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = await self._receive(deadline)
            except TimeoutError:
                raise HubError(
                    f"the kernel for {self.path} in {self.user}'s server did not answer "
                    f"within {timeout:.0f} s"
                ) from None
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"].endswith("_reply"):
                return

    def _send(self, msg_type: str, content: dict, channel: str = "shell") -> str:
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": msg_type,
            "username": self.user,
            "session": self._client_session,
            "version": "5.3",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self._ws.write_message(
            json.dumps(
                {
                    "header": header,
                    "parent_header": {},
                    "metadata": {},
                    "content": content,
                    "channel": channel,
                    "buffers": [],
                }
            )
        )
        return msg_id

    async def _receive(self, deadline: float) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        try:
            raw = await asyncio.wait_for(self._ws.read_message(), remaining)
        except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
            raise TimeoutError from None
        if raw is None:
            raise HubError(f"the websocket of {self.user}'s kernel closed")
        if isinstance(raw, bytes):  # a binary frame (widgets' buffers): nothing we read
            return {"parent_header": {}, "msg_type": "binary", "content": {}}
        return json.loads(raw)

    async def run(self, code: str, timeout: float) -> CellResult:
        """Execute ``code``; past ``timeout`` the kernel is interrupted and the cell fails."""
        msg_id = self._send(
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
        )
        result = CellResult(ok=True)
        out: list[str] = []
        err: list[str] = []
        replied = idle = False
        deadline = time.monotonic() + timeout
        try:
            while not (replied and idle):
                msg = await self._receive(deadline)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                kind, content = msg["msg_type"], msg["content"]
                if kind == "stream":
                    (out if content.get("name") == "stdout" else err).append(content["text"])
                elif kind == "error":
                    result.ok = False
                    result.error = f"{content.get('ename')}: {content.get('evalue')}"
                    result.traceback = [ANSI.sub("", t) for t in content.get("traceback", [])]
                elif kind == "execute_reply":
                    replied = True
                    if content.get("status") != "ok" and result.ok:
                        result.ok = False
                        result.error = f"{content.get('ename')}: {content.get('evalue')}"
                elif kind == "status" and content.get("execution_state") == "idle":
                    idle = True
        except TimeoutError:
            self._call("POST", f"/kernels/{self.kernel_id}/interrupt")
            result.ok = False
            result.error = f"the cell did not finish within {timeout:.0f} s (interrupted)"
        result.stdout, result.stderr = ANSI.sub("", "".join(out)), ANSI.sub("", "".join(err))
        return result

    async def close(self) -> None:
        """Close the websocket and end the session (its kernel stops)."""
        if self._ws is not None:
            self._ws.close()
            self._ws = None
        if self.session_id:
            with contextlib.suppress(requests.RequestException):  # the server is going away
                self._call("DELETE", f"/sessions/{self.session_id}", timeout=30)
            self.session_id = None
