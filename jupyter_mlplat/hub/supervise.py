"""Run a managed service as its own process group, and never leave any of it behind.

    python -m jupyter_mlplat.hub.supervise --pidfile FILE [--grace S] [--stop-signal SIG] -- CMD...

JupyterHub signals and restarts only the process it started. A service such as
``mlflow server`` starts a worker of its own (uvicorn) that keeps the port when its
parent is killed with ``kill -9``, so every restart then fails with "address already in
use". This supervisor is what the hub starts instead:

* first it kills what is left of the process group recorded in ``FILE`` by an earlier
  run (only processes that carry that run's marker in their environment, so a reused
  process group id is never hit);
* it starts COMMAND in a new session, so the command and everything it starts form
  one process group, records that group in ``FILE`` and marks the command's
  environment with ``MLPLAT_SUPERVISOR_TOKEN``;
* SIGTERM, SIGINT and SIGHUP (JupyterHub stops a service with SIGINT) are forwarded to
  the whole group as ``--stop-signal`` (default SIGTERM: the quiet graceful stop of
  servers such as uvicorn, which answers SIGINT with a KeyboardInterrupt traceback); a
  group still alive ``--grace`` seconds later gets SIGKILL;
* when the command exits (or is killed), the rest of its group is stopped too and the
  supervisor exits with the command's status (128 + N for signal N);
* on Linux the command gets SIGTERM if the supervisor dies (``PR_SET_PDEATHSIG``) and
  the supervisor gets SIGTERM if the hub dies.

Only the standard library is imported: the supervisor costs one small process.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

TOKEN_VAR = "MLPLAT_SUPERVISOR_TOKEN"
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


def set_parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies; False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _child_setup() -> None:  # runs in the child between fork and exec
    set_parent_death_signal(signal.SIGTERM)


def group_members(pgid: int, token: str | None = None) -> list[int]:
    """Live processes of process group ``pgid`` (with ``token`` in their environment if given).

    Without /proc (not Linux) the group is trusted as it is: [pgid] if it exists.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    marker = f"{TOKEN_VAR}={token}".encode() if token else None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] == "Z" or int(fields[2]) != pgid:
                continue
            if marker is not None and marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
        except (OSError, ValueError, IndexError):
            continue
        members.append(int(entry.name))
    return members


def stop_group(pgid: int, token: str | None, grace: float, first: int = signal.SIGTERM) -> None:
    """Signal the group, wait up to ``grace`` s, then SIGKILL what is left (and wait for it)."""
    for sig, wait in ((first, grace), (signal.SIGKILL, 5.0)):
        if not group_members(pgid, token):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and group_members(pgid, token):
            time.sleep(0.05)


def read_pidfile(path: Path) -> tuple[int, str] | None:
    try:
        pgid, token = path.read_text().split()
        return int(pgid), token
    except (OSError, ValueError):
        return None


def kill_leftovers(path: Path, grace: float) -> list[int]:
    """Stop what an earlier run recorded in ``path`` left behind; the pids found."""
    recorded = read_pidfile(path)
    if recorded is None:
        return []
    pgid, token = recorded
    left = group_members(pgid, token)
    if left:
        print(
            f"supervise: stopping {len(left)} leftover process(es) of group {pgid} "
            f"recorded in {path}",
            file=sys.stderr,
            flush=True,
        )
        stop_group(pgid, token, grace)
    return left


def _write_pidfile(path: Path, pgid: int, token: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{pgid} {token}\n")
    os.replace(tmp, path)


def _remove_pidfile(path: Path, token: str) -> None:
    recorded = read_pidfile(path)
    if recorded is not None and recorded[1] == token:
        with contextlib.suppress(OSError):
            path.unlink()


def supervise(
    command: list[str], pidfile: Path, grace: float = 8.0, stop_signal: int = signal.SIGTERM
) -> int:
    """Run ``command`` as described in the module docstring; its exit status."""
    parent = os.getppid()
    if set_parent_death_signal(signal.SIGTERM) and os.getppid() != parent:
        return 128 + signal.SIGTERM  # the hub died while we were starting
    kill_leftovers(pidfile, grace)

    received: list[int] = []
    proc: subprocess.Popen | None = None

    def forward(signum, _frame):
        received.append(signum)
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, stop_signal)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    token = secrets.token_hex(16)
    env = {**os.environ, TOKEN_VAR: token}
    try:
        proc = subprocess.Popen(command, env=env, start_new_session=True, preexec_fn=_child_setup)
    except OSError as exc:
        print(f"supervise: cannot start {command[0]}: {exc}", file=sys.stderr, flush=True)
        return 127
    _write_pidfile(pidfile, proc.pid, token)
    if received:  # a signal came while the child was being started
        forward(received[-1], None)

    escalate_at = None
    while True:
        try:
            code = proc.wait(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            pass
        if received and escalate_at is None:
            escalate_at = time.monotonic() + grace
        if escalate_at is not None and time.monotonic() > escalate_at:
            stop_group(proc.pid, token, 0.0, first=signal.SIGKILL)
            escalate_at = float("inf")
    # The command is gone; nothing it started may outlive it.
    stop_group(proc.pid, token, grace if not received else 1.0)
    _remove_pidfile(pidfile, token)
    return code if code >= 0 else 128 - code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        print("usage: python -m jupyter_mlplat.hub.supervise --pidfile FILE -- COMMAND...")
        return 2
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="python -m jupyter_mlplat.hub.supervise")
    parser.add_argument("--pidfile", required=True, type=Path, help="where the group is recorded")
    parser.add_argument(
        "--grace", type=float, default=8.0, help="seconds between a signal and SIGKILL"
    )
    parser.add_argument(
        "--stop-signal",
        default="SIGTERM",
        type=lambda name: signal.Signals[name if name.startswith("SIG") else "SIG" + name],
        help="what the group gets when the supervisor is asked to stop (default SIGTERM)",
    )
    args = parser.parse_args(argv[:split])
    command = argv[split + 1 :]
    if not command:
        parser.error("give the command after --")
    # Services write the platform's databases and artifacts: never readable by users.
    os.umask(0o077)
    return supervise(command, args.pidfile, args.grace, args.stop_signal)


if __name__ == "__main__":
    sys.exit(main())
