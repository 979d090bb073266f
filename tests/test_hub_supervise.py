"""The service supervisor (python -m jupyter_mlplat.hub.supervise) on real processes.

The supervised command here is a small Python program that starts a worker of its
own, as ``mlflow server`` starts uvicorn; each process writes its pid to a file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")

PARENT = """\
import os, signal, subprocess, sys, time
from pathlib import Path
out = Path(sys.argv[1])
ignore_term = len(sys.argv) > 2
worker = subprocess.Popen([sys.executable, "-c", '''
import os, signal, sys, time
from pathlib import Path
out = Path(sys.argv[1])
def stop(signum, frame):
    (out / "worker-signal").write_text(str(signum))
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
if len(sys.argv) > 2:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
(out / "worker").write_text(str(os.getpid()))
time.sleep(600)
''', str(out)] + (["ignore"] if ignore_term else []))
if ignore_term:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
(out / "parent").write_text(str(os.getpid()))
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """Running (not a zombie waiting for a reaper)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout:.0f} s")
        time.sleep(0.05)


class Supervised:
    """``supervise --pidfile F -- python PARENT OUT`` and the pids its processes wrote."""

    def __init__(self, tmp_path: Path, *extra: str, grace: float = 8.0):
        self.out = tmp_path / f"run-{time.monotonic_ns()}"
        self.out.mkdir()
        self.pidfile = tmp_path / "service.pgid"
        script = tmp_path / "parent.py"
        script.write_text(PARENT)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_mlplat.hub.supervise",
                "--pidfile",
                str(self.pidfile),
                "--grace",
                str(grace),
                "--",
                sys.executable,
                str(script),
                str(self.out),
                *extra,
            ],  # fmt: skip
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_until(
            lambda: (self.out / "worker").exists() and (self.out / "parent").exists(),
            30,
            "the supervised command and its worker did not start",
        )
        self.parent = int((self.out / "parent").read_text())
        self.worker = int((self.out / "worker").read_text())

    def cleanup(self) -> None:
        for pid in (self.proc.pid, self.parent, self.worker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def supervised(tmp_path):
    started = []

    def start(*extra, grace=8.0):
        run = Supervised(tmp_path, *extra, grace=grace)
        started.append(run)
        return run

    yield start
    for run in started:
        run.cleanup()


def test_command_and_worker_form_one_recorded_process_group(supervised):
    run = supervised()
    pgid, token = run.pidfile.read_text().split()
    assert os.getpgid(run.parent) == os.getpgid(run.worker) == int(pgid) == run.parent
    assert os.getpgid(run.proc.pid) != int(pgid)  # the supervisor stays outside the group
    environ = Path(f"/proc/{run.worker}/environ").read_bytes().split(b"\0")
    assert f"MLPLAT_SUPERVISOR_TOKEN={token}".encode() in environ


def test_a_stop_request_stops_the_whole_group_and_exits_with_the_commands_status(supervised):
    run = supervised()
    run.proc.send_signal(signal.SIGINT)  # how JupyterHub stops a managed service
    assert run.proc.wait(30) == 128 + signal.SIGTERM  # the command died of the SIGTERM
    assert (run.out / "worker-signal").read_text() == str(int(signal.SIGTERM))
    assert not _alive(run.parent) and not _alive(run.worker)
    assert not run.pidfile.exists()


def test_kill_9_of_the_command_takes_its_worker_down_too(supervised):
    run = supervised()
    os.kill(run.parent, signal.SIGKILL)
    assert run.proc.wait(30) == 128 + signal.SIGKILL
    _wait_until(lambda: not _alive(run.worker), 5, "the orphaned worker is still running")


def test_leftovers_of_a_killed_supervisor_are_stopped_before_the_next_start(supervised, tmp_path):
    run = supervised()
    os.kill(run.proc.pid, signal.SIGKILL)  # the supervisor itself, as `kill -9` would
    run.proc.wait(10)
    # The parent gets SIGTERM from the kernel (PR_SET_PDEATHSIG); its worker is orphaned.
    _wait_until(lambda: not _alive(run.parent), 5, "the command outlived its supervisor")
    assert _alive(run.worker)
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter_mlplat.hub.supervise",
            "--pidfile",
            str(run.pidfile),
            "--",
            sys.executable,
            "-c",
            "print('second run')",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0, again.stderr
    assert "second run" in again.stdout
    assert "leftover" in again.stderr
    assert not _alive(run.worker)


def test_a_reused_group_id_without_the_runs_marker_is_not_touched(tmp_path):
    """The pidfile names a group that now belongs to someone else: it survives."""
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        pidfile = tmp_path / "service.pgid"
        pidfile.write_text(f"{bystander.pid} {'0' * 32}\n")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "jupyter_mlplat.hub.supervise",
                "--pidfile",
                str(pidfile),
                "--",
                "true",
            ],  # fmt: skip
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert bystander.poll() is None and _alive(bystander.pid)
    finally:
        bystander.kill()
        bystander.wait()


def test_a_group_that_ignores_the_stop_signal_is_killed_after_the_grace(supervised):
    run = supervised("ignore-term", grace=1.0)
    run.proc.send_signal(signal.SIGTERM)
    assert run.proc.wait(30) == 128 + signal.SIGKILL
    _wait_until(lambda: not _alive(run.worker), 5, "the worker survived SIGKILL")
    assert not _alive(run.parent)
