"""Warm job starters: one :mod:`.forkserver` per job account, seen from the platform.

A starter is started on an account's first job, as that account (no supplementary groups),
and is kept while it is used; one idle for ``idle_seconds`` is stopped. Each run is a request
over the starter's ``SOCK_SEQPACKET`` socket carrying the run's log descriptor; the job it
forks is a :class:`ForkedJob` with the part of :class:`subprocess.Popen`'s interface the
runner uses (``pid``, ``poll``, ``wait``, ``returncode``).

The starter runs as the user, so what it says is the user's word: a pid it reports is taken
only when that process is its child and runs as the account, and its start time is kept,
so that a signal later goes to that process group and no other (see :meth:`ForkedJob.signal`).
What it says can only concern that user's own runs.
"""

from __future__ import annotations

import array
import contextlib
import json
import logging
import os
import pwd
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from ..errors import ServiceUnavailable
from . import forkserver

log = logging.getLogger(__name__)

STARTER_DIED = 3  # the exit code a run gets when its starter died under it (execute.BROKEN)
PID_TIMEOUT = 300.0  # the first run of an account waits for the imports


def _proc_facts(pid: int) -> tuple[int, int, int] | None:
    """(parent pid, real uid, start time in clock ticks) of ``pid``, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    uid = next(
        (int(line.split()[1]) for line in status.splitlines() if line.startswith("Uid:")), -1
    )
    return int(fields[1]), uid, int(fields[19])


class ForkedJob:
    """One run's job process, forked by a starter."""

    def __init__(self, starter: WarmStarter, run_id: int) -> None:
        self.starter = starter
        self.run_id = run_id
        self.pid = 0
        self.returncode: int | None = None
        self._started_ticks = -1
        self._forked = threading.Event()
        self._ended = threading.Event()
        self.error = ""

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(f"job run {self.run_id}", timeout)
        return self.returncode

    def signal(self, signum: int) -> None:
        """Signal the job's process group, if its leader is still the process forked."""
        facts = _proc_facts(self.pid) if self.pid > 0 else None
        if facts is None or facts[1] != self.starter.uid or facts[2] != self._started_ticks:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    # --- told by the starter's reader ---

    def _set_pid(self, pid: int) -> None:
        facts = _proc_facts(pid)
        if facts is not None and facts[0] == self.starter.pid and facts[1] == self.starter.uid:
            self.pid, self._started_ticks = pid, facts[2]
        else:  # (it may have ended already: its exit message follows; nothing to signal)
            self.pid = -1
        self._forked.set()

    def _end(self, code: int, error: str = "") -> None:
        if self.returncode is None:
            self.returncode, self.error = code, error
        self._forked.set()
        self._ended.set()


class WarmStarter:
    """One account's fork server process and the reader of its messages."""

    def __init__(
        self, python: str, account: pwd.struct_passwd | None, env: dict, log_path: Path
    ) -> None:
        self.uid = account.pw_uid if account else os.getuid()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ids = {} if account is None else {
            "user": account.pw_uid, "group": account.pw_gid, "extra_groups": []
        }  # fmt: skip
        with open(log_path, "ab") as starter_log:
            os.chmod(log_path, 0o600)
            self.process = subprocess.Popen(
                [python, "-m", forkserver.__name__, str(theirs.fileno())], cwd="/", env=env,
                stdin=subprocess.DEVNULL, stdout=starter_log, stderr=subprocess.STDOUT,
                pass_fds=(theirs.fileno(),), start_new_session=True, **ids,
            )  # fmt: skip
        theirs.close()
        self.pid = self.process.pid
        self.conn = ours
        self.last_used = time.monotonic()
        self._lock = threading.Lock()
        self._jobs: dict[int, ForkedJob] = {}
        self.alive = True
        self._reader = threading.Thread(target=self._read, name=f"mlplat-starter-{self.pid}")
        self._reader.daemon = True
        self._reader.start()

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._jobs)

    def start(self, run_id: int, spec_path: Path, cwd: Path, env: dict, log_fd: int) -> ForkedJob:
        """Fork the run's job process; raises ServiceUnavailable when the starter cannot."""
        job = ForkedJob(self, run_id)
        with self._lock:
            if not self.alive:
                raise ServiceUnavailable("The warm job starter stopped; the run is tried again.")
            self._jobs[run_id] = job
            self.last_used = time.monotonic()
        message = json.dumps({"run": run_id, "spec": str(spec_path), "cwd": str(cwd), "env": env})
        fds = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [log_fd]))]
        try:
            self.conn.sendmsg([message.encode()], fds)
        except OSError as exc:
            self._drop(run_id)
            raise ServiceUnavailable(f"The warm job starter is gone ({exc}).") from None
        if not job._forked.wait(PID_TIMEOUT):
            self._drop(run_id)
            raise ServiceUnavailable("The warm job starter did not start the run in time.")
        if job.error and job.returncode is not None and job.pid == 0:
            self._drop(run_id)
            raise ServiceUnavailable(f"The warm job starter could not start the run: {job.error}")
        return job

    def _drop(self, run_id: int) -> None:
        with self._lock:
            self._jobs.pop(run_id, None)

    def _read(self) -> None:
        try:
            while True:
                data = self.conn.recv(forkserver.MAX_MESSAGE)
                if not data:
                    break
                self._handle(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self.alive = False
                left, self._jobs = list(self._jobs.values()), {}
            for job in left:  # their processes are killed by the runner (by verified pgid)
                job._end(STARTER_DIED, "the warm job starter died")
            with contextlib.suppress(OSError):
                self.conn.close()
            with contextlib.suppress(Exception):
                self.process.wait(5)

    def _handle(self, data: bytes) -> None:
        try:
            message = json.loads(data)
            run_id = int(message["run"])
        except (ValueError, TypeError, KeyError):
            log.warning("warm job starter %s sent an unreadable message", self.pid)
            return
        with self._lock:
            job = self._jobs.get(run_id)
            if job is not None and ("exit" in message or "error" in message):
                self._jobs.pop(run_id, None)
        if job is None:
            return
        if "pid" in message and isinstance(message["pid"], int):
            job._set_pid(message["pid"])
        elif "exit" in message and isinstance(message["exit"], int):
            job._end(message["exit"])
        elif "error" in message:
            job._end(STARTER_DIED, str(message["error"])[:500])

    def close(self, grace: float = 5.0) -> None:
        """Stop the starter (it kills the job processes it still has)."""
        with contextlib.suppress(OSError):
            self.conn.shutdown(socket.SHUT_RDWR)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._reader.join(grace)


class WarmStarters:
    """The starters of all accounts; settings come in as parameters."""

    def __init__(self, python: str, log_dir: Path, idle_seconds: float = 600.0) -> None:
        self.python = python
        self.log_dir = Path(log_dir)
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._starters: dict[tuple[int, str], WarmStarter] = {}

    def for_account(self, account: pwd.struct_passwd | None, env: dict) -> WarmStarter:
        uid = account.pw_uid if account else os.getuid()
        key = (uid, account.pw_name if account else "")
        with self._lock:
            starter = self._starters.get(key)
            if starter is not None and starter.alive and starter.process.poll() is None:
                return starter
            self.log_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.log_dir, 0o700)
            name = account.pw_name if account else "platform"
            starter = WarmStarter(self.python, account, env, self.log_dir / f"{name}.log")
            self._starters[key] = starter
            return starter

    def prune(self) -> int:
        """Stop the starters idle for ``idle_seconds`` (or dead); how many."""
        now = time.monotonic()
        with self._lock:
            idle = [
                key for key, starter in self._starters.items()
                if not starter.alive
                or (not starter.busy and now - starter.last_used > self.idle_seconds)
            ]  # fmt: skip
            stopping = [self._starters.pop(key) for key in idle]
        for starter in stopping:
            starter.close()
        return len(stopping)

    def close(self) -> None:
        with self._lock:
            stopping, self._starters = list(self._starters.values()), {}
        for starter in stopping:
            starter.close()

    def pids(self) -> list[int]:
        with self._lock:
            return [s.pid for s in self._starters.values() if s.alive]
