"""The hub's managed services over time: the idle culler culls, a killed MLflow comes back.

One dedicated hub for this module (the shipped config with ``idle_timeout = 5`` and
``cull_every = 2``), so the session hub keeps its servers and its MLflow.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from jupyter_mlplat.embedded import free_port
from tests.hub import JupyterHubProcess
from tests.hub_fixtures import CONFIG, USERS, login, write_home

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name: state, ppid, pgrp, ..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _processes() -> dict[int, tuple[list[str], list[bytes]]]:
    """pid -> (stat fields, argv) of every live (non-zombie) process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(int(entry.name))
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            found[int(entry.name)] = (fields, argv)
    return found


def hub_child(hub_pid: int, *needles: bytes) -> int | None:
    """The hub's direct child whose argv holds every one of ``needles``."""
    for pid, (fields, argv) in _processes().items():
        if int(fields[1]) == hub_pid and all(n in argv for n in needles):
            return pid
    return None


def group_of(pgid: int) -> set[int]:
    return {pid for pid, (fields, _) in _processes().items() if int(fields[2]) == pgid}


def listeners(port: int) -> set[int]:
    """Pids holding a listening TCP socket on 127.0.0.1/any ``port`` (from /proc/net/tcp)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                inodes.add(cols[9])
    pids = set()
    for pid in _processes():
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    pids.add(pid)
        except OSError:
            continue
    return pids


@pytest.fixture(scope="module")
def culling_hub(tmp_path_factory, demo_feature_repo):
    home = tmp_path_factory.mktemp("culling-home")
    hub = JupyterHubProcess(CONFIG, tmp_path_factory.mktemp("culling-run"), env={})
    mlflow_port = free_port()
    write_home(home, hub, idle_timeout=5, cull_every=2, mlflow_port=mlflow_port)
    hub.mlflow_port = mlflow_port
    hub.env = {"MLPLAT_HOME": str(home), "MLPLAT_FEATURE_REPO": str(demo_feature_repo)}
    hub.start(timeout=120)
    try:
        assert login(hub, "alice", USERS["alice"][0]).status_code == 302, hub.log_tail()
        hub.wait_for("/services/mlflow/health", timeout=120)
        yield hub
    finally:
        hub.stop()


def test_an_idle_server_is_stopped_by_the_culler_which_keeps_running(culling_hub):
    hub = culling_hub
    services = hub.api("GET", "/services").json()
    assert "--timeout=5" in services["idle-culler"]["command"]
    assert "--cull-every=2" in services["idle-culler"]["command"]
    culler = hub_child(hub.proc.pid, b"jupyterhub_idle_culler")
    assert culler is not None, hub.log_tail()

    hub.spawn("alice")  # waits until ready
    deadline = time.monotonic() + 60
    while hub.api("GET", "/users/alice").json()["servers"]:
        assert time.monotonic() < deadline, f"alice's idle server was not culled:\n{hub.log_tail()}"
        time.sleep(0.5)

    log = hub.log_path.read_text(errors="replace")
    assert "Culling server alice" in log
    assert "Service idle-culler exited" not in log
    # The same culler process, not a restarted one.
    assert hub_child(hub.proc.pid, b"jupyterhub_idle_culler") == culler


def test_kill_9_of_mlflow_leaves_no_orphan_on_its_port_and_the_hub_restarts_it(culling_hub):
    """The worst case: ``mlflow server`` and its supervisor die by SIGKILL at once, so
    nobody stops the uvicorn worker, which keeps the port (and still answers /health);
    the restarted supervisor must stop it before MLflow can listen again."""
    hub = culling_hub
    pidfile = Path(hub.env["MLPLAT_HOME"]) / "hub" / "service-mlflow.pgid"
    supervisor = hub_child(hub.proc.pid, b"jupyter_mlplat.hub.supervise", b"mlflow")
    assert supervisor is not None, "the hub's MLflow service is not run by the supervisor"
    old_group = int(pidfile.read_text().split()[0])
    cli = old_group  # `mlflow server` leads its group; the rest is its uvicorn worker
    workers = group_of(old_group) - {cli}
    assert workers, "expected a worker process under `mlflow server`"
    assert listeners(hub.mlflow_port) and listeners(hub.mlflow_port) <= workers

    os.kill(cli, signal.SIGSTOP)  # it must not get to act on its parent's death
    os.kill(supervisor, signal.SIGKILL)
    os.kill(cli, signal.SIGKILL)
    deadline = time.monotonic() + 90  # JupyterHub polls its services about every 30 s
    while True:
        new = hub_child(hub.proc.pid, b"jupyter_mlplat.hub.supervise", b"mlflow")
        if new not in (None, supervisor) and not group_of(old_group):
            response = hub.request("GET", f"{hub.url}/services/mlflow/health", timeout=5)
            if response.status_code == 200 and listeners(hub.mlflow_port):
                break
        assert time.monotonic() < deadline, f"MLflow did not come back:\n{hub.log_tail(60)}"
        time.sleep(0.5)

    assert not group_of(old_group), "processes of the killed MLflow are still running"
    new_group = int(pidfile.read_text().split()[0])
    assert new_group != old_group
    assert listeners(hub.mlflow_port) <= group_of(new_group)
    log = hub.log_path.read_text(errors="replace")
    assert "Service mlflow exited with status -9" in log
    assert f"leftover process(es) of group {old_group}" in log
    assert "address already in use" not in log.lower()
