"""``mlplat up`` end to end: the ports of $MLPLAT_HOME/mlplat_config.py, a quiet terminal,
a clean Ctrl-C.

``mlplat up`` runs in its own process group, as in a terminal, and gets SIGINT on that
group, as a terminal's Ctrl-C sends it.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from jupyter_mlplat.embedded import free_port
from tests.hub import path_with_proxy
from tests.hub_fixtures import spawner_config_lines, spawner_knobs, xsrf_of

ALARMING = ("Traceback", "Failed to stop", "ERROR", "[E ", "404 GET", "Exception")


def _ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Terminal:
    """A process whose output lines are read as they come."""

    def __init__(self, command: list[str], env: dict, cwd):
        self.proc = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line matching {pattern!r}:\n" + "\n".join(self.lines))
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(
                    f"exited ({self.proc.wait()}) before {pattern!r}:\n" + "\n".join(self.lines)
                )
            self.lines.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def rest(self, timeout: float) -> list[str]:
        """Every line until the output ends."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("the output did not end:\n" + "\n".join(self.lines)) from None
            if line is None:
                return self.lines
            self.lines.append(line)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def up_home(tmp_path, demo_feature_repo):
    """A fresh data dir whose mlplat_config.py moves every port off its default."""
    home = tmp_path / "home"
    home.mkdir()
    port, hub_port, proxy_api_port, service_port, mlflow_port = _ports(5)
    knobs = {
        "port": port, "hub_port": hub_port, "proxy_api_port": proxy_api_port,
        "service_port": service_port, "mlflow_port": mlflow_port,
    }  # fmt: skip
    lines = ["c = get_config()  # noqa: F821"]
    lines += [f"c.MlplatHub.{key} = {value!r}" for key, value in knobs.items()]
    lines += spawner_config_lines(spawner_knobs())  # test accounts and homes when root
    (home / "mlplat_config.py").write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "MLPLAT_"))}
    env.update(
        MLPLAT_HOME=str(home),
        MLPLAT_FEATURE_REPO=str(demo_feature_repo),
        PATH=path_with_proxy(env.get("PATH")),  # as `make up` will
    )
    return home, knobs, env


def test_mlplat_up_uses_the_configured_port_is_quiet_and_stops_cleanly(up_home, tmp_path):
    home, knobs, env = up_home
    url = f"http://127.0.0.1:{knobs['port']}"
    # Started outside the checkout: nothing may depend on the current directory.
    term = Terminal([sys.executable, "-m", "jupyter_mlplat.cli", "up"], env, cwd=tmp_path)
    try:
        found = term.wait_for_line(r"JupyterHub is up at (\S+)", timeout=240)
        assert found[1] == url
        term.wait_for_line(r"^\s+ops\s", timeout=10)  # the last demo login
        logins = {
            m[1]: m[2] for line in term.lines if (m := re.match(r"^\s+(\w+)\s+(\S+)\s+\S", line))
        }
        assert set(logins) == {"alice", "bob", "rita", "ops"}

        session = requests.Session()
        session.trust_env = False
        page = session.get(f"{url}/hub/login", timeout=30)
        assert page.status_code == 200
        response = session.post(
            f"{url}/hub/login?next=",
            data={
                "username": "alice",
                "password": logins["alice"],
                "_xsrf": xsrf_of(session, page),
            },
            allow_redirects=False,
            timeout=30,
        )
        assert response.status_code == 302
        # A running server at Ctrl-C is what used to end in "Failed to stop user: ''".
        form = session.get(f"{url}/hub/spawn", timeout=30)
        spawned = session.post(
            f"{url}/hub/spawn",
            data={"profile": "churn-cpu", "_xsrf": xsrf_of(session, form)},
            allow_redirects=False,
            timeout=60,
        )
        assert spawned.status_code in (302, 303), spawned.text[:300]
        deadline = time.monotonic() + 120
        while True:
            answer = session.get(f"{url}/user/alice/api", allow_redirects=False, timeout=10)
            if answer.status_code == 200 and "version" in answer.text:
                break
            assert time.monotonic() < deadline, "alice's server did not start"
            time.sleep(0.5)
        assert _listening(knobs["mlflow_port"])

        os.killpg(term.proc.pid, signal.SIGINT)  # Ctrl-C
        assert term.proc.wait(120) == 0
        lines = term.rest(timeout=10)
    finally:
        term.kill()

    output = "\n".join(lines)
    for word in ALARMING:
        assert word not in output, f"{word!r} in the output of mlplat up:\n{output}"
    log_file = home / "hub" / "jupyterhub.log"
    assert [line for line in lines if str(log_file) in line], output
    assert sum("is up at" in line for line in lines) == 1
    assert len(lines) <= 12, output  # the URL, the logins and a few plain lines
    log = log_file.read_text(errors="replace")
    assert "JupyterHub is now running" in log
    shutdown = log[log.rindex("initiating shutdown") :]
    assert "Traceback" not in shutdown and "Failed to stop" not in shutdown, shutdown[-3000:]
    assert "...done" in shutdown
    for name, port in knobs.items():
        assert not _listening(port), f"{name} {port} is still served after mlplat up stopped"
