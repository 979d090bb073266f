"""The local deployer's supervisor: one MLServer per (deployment, version), kept running.

Running as root with an ``account_prefix``, a team's model servers run as the OS account
``<prefix><team>`` (made with ``useradd --system`` if missing), since a model is the team's
code (a pickle runs on load). Under ``root`` (0711)::

    served/<account>/<deployment>/<version>-<digest16>/  the model, copied from the frozen
                                 copy: root-owned, dirs 0755 / files 0644, the team folder
                                 0710 root:<account> so other teams cannot read it
    work/<deployment>/<version>/ HOME, TMPDIR, MLServer's repository and the Unix sockets
                                 of its REST and gRPC APIs: the account's, 0700, made fresh
                                 on each start (so only the account and root reach them)
    logs/<deployment>/<version>.log  root-only: root never opens a path the account controls

Not running as root, every model server runs as the current user (who can then also change
the served files): the platform is for one person then. As root, ``account_prefix=None`` is
refused, so a model never runs as root.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import MlplatError, ServiceUnavailable, UsageError
from ..oslayer import SAFE_ACCOUNT, traversable_dirs, unreachable_part
from .environment import ServingEnvironment, find_serving_environment
from .local import LocalModelServer, ModelServerFailed

log = logging.getLogger(__name__)

STARTING, READY, FAILED, CRASHED, STOPPED = "starting", "ready", "failed", "crashed", "stopped"
# Deployment names and versions become path segments: no '/', no leading '.'.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_NO_LOGIN = next(
    (p for p in ("/usr/sbin/nologin", "/sbin/nologin") if os.path.exists(p)), "/bin/false"
)
# useradd locks /etc/passwd: one at a time within this process.
_USERADD = threading.Lock()
_TAIL_BYTES = 8192
# A model server under heavy load may miss one check's 2 s: a lost model is three in a row.
UNREADY_CHECKS = 3


@dataclass(frozen=True)
class ServerState:
    """What one model server is doing, as the service reports it."""

    deployment: str
    version: str
    digest: str
    status: str  # starting | ready | failed | crashed | stopped
    base_url: str | None
    model_name: str
    log_tail: str
    pid: int | None
    restarts: int = 0  # automatic restarts in a row (see LocalServers.supervise)
    socket: str | None = None  # the REST API's Unix socket, when ready


@dataclass
class _Entry:
    deployment: str
    team: str
    version: str
    digest: str
    status: str = STARTING
    server: LocalModelServer | None = None
    log_path: Path | None = None
    served: Path | None = None
    workdir: Path | None = None
    tail: str = ""  # kept for failed / crashed, when the log may be gone or rotated
    restarts: int = 0  # by supervise, in a row (a check that finds it ready resets it)
    unready: int = 0  # checks in a row that found the process up but its model not ready


def _tail(path: Path | None, lines: int = 40) -> str:
    if path is None:
        return ""
    try:
        with open(path, "rb") as file:
            file.seek(max(0, os.fstat(file.fileno()).st_size - _TAIL_BYTES))
            data = file.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def _mkdir(path: Path, mode: int, uid: int = -1, gid: int = -1) -> Path:
    """``path`` as a real folder (never a link) with ``mode`` and owner."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=mode)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise MlplatError(f"{path} is not a folder; the serving root's layout was changed.")
    os.chown(path, uid, gid, follow_symlinks=False)
    os.chmod(path, mode)
    return path


class LocalServers:
    """MLServer processes for deployments: ``ensure``, ``state``, ``stop``, ``reconcile``.

    Thread-safe. Each ``(deployment, version)`` has its own lock, so one start never waits
    for another deployment's. Settings come in as parameters: the serving venv's Python
    (None: beside this venv), the folder the servers' files live under, how long a start
    may take, how long a stop waits before SIGKILL, and the OS account prefix.
    """

    def __init__(
        self, environment_python: str | None, root: Path, *, ready_timeout: float = 60,
        stop_grace: float = 10, account_prefix: str | None = "mlplat-serve-",
    ) -> None:  # fmt: skip
        self.isolating = os.geteuid() == 0
        if self.isolating and not account_prefix:
            raise UsageError(
                "The platform runs as root, so model servers need an account prefix "
                "(account_prefix): a model is users' code and never runs as root."
            )
        self.environment_python = environment_python
        self.root = Path(root).resolve()
        self.ready_timeout = ready_timeout
        self.stop_grace = stop_grace
        self.account_prefix = account_prefix if self.isolating else None
        self._environment: ServingEnvironment | None = None
        self._accounts: dict[str, pwd.struct_passwd | None] = {}
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._key_locks: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()  # guards the dicts and every entry's fields
        self._setup = threading.Lock()  # environment check and account creation
        self._closed = False
        self._reap_stale()

    # --- servers a previous run of the platform left -------------------------------------

    def _pidfile(self, deployment: str, version: str) -> Path:
        return self.root / "pids" / f"{deployment}__{version}.pid"

    def _remember(self, deployment: str, version: str, pgid: int) -> None:
        folder = self.root / "pids"
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        self._pidfile(deployment, version).write_text(f"{pgid}\n")

    def _forget(self, deployment: str, version: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._pidfile(deployment, version).unlink()

    def _reap_stale(self) -> None:
        """Kill the model servers a previous run of the platform started and did not stop
        (it was killed): they run in sessions of their own, so nothing else would, and they
        would hold their ports and serve unsupervised."""
        folder = self.root / "pids"
        if not folder.is_dir():
            return
        for pidfile in folder.glob("*.pid"):
            with contextlib.suppress(ValueError, OSError):
                pgid = int(pidfile.read_text().strip())
                cmdline = Path(f"/proc/{pgid}/cmdline").read_bytes()
                if b"mlserver" in cmdline:
                    os.killpg(pgid, signal.SIGKILL)
                    log.warning("stopped model server group %d left by a previous run", pgid)
            with contextlib.suppress(FileNotFoundError):
                pidfile.unlink()

    # --- asking -------------------------------------------------------------------------

    def state(self, deployment: str, version: str) -> ServerState | None:
        """The server's state, None if never started here; a dead process shows as crashed."""
        with self._lock:
            entry = self._entries.get((deployment, version))
            if entry is None:
                return None
            self._notice_crash(entry)
            return self._snapshot(entry)

    def endpoint(self, deployment: str, version: str) -> tuple[str | None, str] | None:
        """``(socket, base URL)`` of the ready server, else None: the per-request path of
        :meth:`state` (no snapshot, no read of the log)."""
        with self._lock:
            entry = self._entries.get((deployment, version))
            if entry is None:
                return None
            self._notice_crash(entry)
            if entry.status != READY:
                return None
            handle = entry.server.handle
            return (str(handle.http_socket) if handle.http_socket else None), handle.base_url

    def _notice_crash(self, entry: _Entry) -> None:
        if entry.status != READY or entry.server.alive():
            return
        entry.status = CRASHED
        entry.tail = _tail(entry.log_path)
        log.warning("model server %s %s crashed", entry.deployment, entry.version)
        # Its inference worker may outlive it: the rest of the group goes now, unwaited.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(entry.server.handle.pid, signal.SIGKILL)

    def _snapshot(self, entry: _Entry) -> ServerState:
        server, ready = entry.server, entry.status == READY
        running = server is not None and entry.status in (STARTING, READY)
        return ServerState(
            deployment=entry.deployment, version=entry.version, digest=entry.digest,
            status=entry.status, base_url=server.handle.base_url if ready else None,
            model_name=entry.deployment, pid=server.handle.pid if running else None,
            log_tail=entry.tail if entry.status in (FAILED, CRASHED) else _tail(entry.log_path),
            restarts=entry.restarts,
            socket=str(server.handle.http_socket) if ready and server.handle.http_socket else None,
        )  # fmt: skip

    # --- supervising --------------------------------------------------------------------

    def supervise(
        self, deployment: str, team: str, version: str, digest: str,
        model_path: Callable[[], Path], max_restarts: int,
    ) -> str:  # fmt: skip
        """One check of a recorded version's server; what was done: ``ok``, ``restarted``,
        ``gave up`` (``max_restarts`` restarts in a row died before the next check),
        ``failed`` (its restart failed), or ``skipped`` (never started here, starting, or
        failed to load: a deploy or the start-up reconcile owns those).

        A server is restarted when its process died, or when it stays up but answers its
        model not ready on :data:`UNREADY_CHECKS` checks in a row (a lost model); a check
        that finds it ready ends the run of restarts. ``model_path()`` is called only to
        restart (it checks the frozen copy's digest, which costs a read of the model)."""
        key = (deployment, version)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.status in (STARTING, FAILED, STOPPED):
                return "skipped"
            self._notice_crash(entry)
            server, status = entry.server, entry.status
        if status == READY:
            if server.ready():
                with self._lock:
                    entry.unready, entry.restarts = 0, 0
                return "ok"
            with self._lock:
                entry.unready += 1
                if entry.unready < UNREADY_CHECKS:
                    return "ok"
                entry.status, entry.tail = CRASHED, _tail(entry.log_path)
                entry.tail += "\n(the model server answered its model not ready)"
            log.warning("model server %s %s lost its model; restarting", deployment, version)
        with self._lock:
            restarts = entry.restarts
            if restarts >= max_restarts:
                return "gave up"
        try:
            started = self.ensure(
                deployment, team, version, digest, model_path(), only_crashed=True
            )
        except MlplatError as exc:
            log.warning("model server %s %s did not restart: %s", deployment, version, exc)
            outcome = "failed"
        else:
            if started is None:
                return "skipped"
            log.warning("model server %s %s restarted", deployment, version)
            outcome = "restarted"
        with self._lock:
            now = self._entries.get(key)
            if now is not None:
                now.restarts = restarts + 1
        return outcome

    # --- starting -----------------------------------------------------------------------

    def ensure(
        self, deployment: str, team: str, version: str, digest: str, model_path: Path,
        *, only_crashed: bool = False,
    ) -> ServerState | None:  # fmt: skip
        """The ready server of this version and digest, started (and waited for) if needed.

        Raises :class:`ModelServerFailed` (503, with the log tail) when MLServer does not get
        the model ready; the failed state is kept for :meth:`state`. ``only_crashed``: do
        nothing (None) unless the current server crashed (a supervisor's restart must not
        bring back a version stopped meanwhile).
        """
        key = (deployment, version)
        with self._key_lock(key):
            with self._lock:
                if self._closed:
                    raise ServiceUnavailable("The platform service is shutting down.")
                entry = self._entries.get(key)
                if entry is not None:
                    self._notice_crash(entry)
                    if entry.status == READY and entry.digest == digest and entry.team == team:
                        return self._snapshot(entry)
                if only_crashed and (entry is None or entry.status != CRASHED):
                    return None  # stopped (or restarted) since the caller looked
            if entry is not None and entry.server is not None:
                entry.server.stop(self.stop_grace)  # another digest, or a dead one's group
            if entry is not None and entry.digest != digest and entry.served is not None:
                shutil.rmtree(entry.served, ignore_errors=True)
            return self._start(deployment, team, version, digest, Path(model_path))

    def _key_lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def _start(
        self, deployment: str, team: str, version: str, digest: str, model_path: Path
    ) -> ServerState:
        self._check_names(deployment, team, version, digest)  # a usage error: no entry
        entry = _Entry(deployment, team, version, digest)
        with self._lock:
            self._entries[(deployment, version)] = entry
        try:
            environment = self._serving_environment()
            account = self._account(team)
            self._check_reachable(environment, account)
            served = self._served_copy(model_path, deployment, team, version, digest, account)
            workdir, log_path = self._fresh_workdir(deployment, version, account)
            with self._lock:
                entry.served, entry.workdir, entry.log_path = served, workdir, log_path
            server = LocalModelServer.start(
                environment, served, deployment, workdir, log_path=log_path,
                extra_env={"TMPDIR": str(workdir)},
                account=None if account is None else (account.pw_uid, account.pw_gid),
                sockets=True,
            )  # fmt: skip
            with self._lock:
                entry.server = server
            self._remember(deployment, version, server.handle.pid)
            server.wait_ready(self.ready_timeout)
        except Exception as exc:
            with self._lock:
                entry.status = FAILED
                entry.tail = getattr(exc, "log_tail", None) or str(exc)
            if entry.server is not None:
                entry.server.stop(self.stop_grace)  # idempotent: wait_ready's failures stopped it
            if isinstance(exc, ModelServerFailed) or not isinstance(exc, (MlplatError, OSError)):
                raise  # the latter: a bug, with its traceback
            raise ModelServerFailed(
                f"The model server of {deployment} version {version} did not start: {exc}",
                log_tail=entry.tail,
                log_path=entry.log_path or self.root / "logs",
            ) from exc
        with self._lock:
            entry.status = READY
            return self._snapshot(entry)

    def _check_names(self, deployment: str, team: str, version: str, digest: str) -> None:
        for what, value in (("deployment", deployment), ("version", version), ("team", team)):
            if not _SEGMENT.fullmatch(value):
                raise UsageError(
                    f"{value!r} cannot name a {what} to serve: use letters, digits, '.', '_' "
                    "or '-', starting with a letter or digit."
                )
        if not _DIGEST.fullmatch(digest):
            raise UsageError(f"{digest!r} is not a frozen copy's SHA-256 digest (64 hex digits).")

    def _serving_environment(self) -> ServingEnvironment:
        with self._setup:
            if self._environment is None:
                self._environment = find_serving_environment(self.environment_python)
            return self._environment

    def _account(self, team: str) -> pwd.struct_passwd | None:
        """The team's OS account (made if missing) when isolating, else None."""
        if self.account_prefix is None:
            return None
        name = f"{self.account_prefix}{team}"
        if not SAFE_ACCOUNT.fullmatch(name):
            raise UsageError(
                f"Team {team!r} cannot have a model server account: {name!r} is not a safe "
                "account name (lowercase letters, digits, '_' and '-', at most 31 characters)."
            )
        with self._setup:
            if name not in self._accounts:
                self._accounts[name] = _ensure_account(name)
            return self._accounts[name]

    def _check_reachable(
        self, environment: ServingEnvironment, account: pwd.struct_passwd | None
    ) -> None:
        if account is None:
            return
        traversable_dirs(self.root.parent)
        for what, path in (
            ("the serving Python", environment.python),
            ("the serving venv", environment.python.parent),
            ("the serving root", self.root.parent),  # the root itself is made 0711 here
        ):
            closed = unreachable_part(path, account.pw_uid, account.pw_gid)
            if closed:
                raise ServiceUnavailable(
                    f"The model server account {account.pw_name} cannot reach {what} {path}: "
                    f"{closed} is closed to it; move it under folders others may traverse "
                    f"(o+x), or open {closed} with chmod o+x."
                )

    def _layout(self, part: str) -> Path:
        """``root/<part>``: root 0711 and served/work 0711 (no listing), logs 0700."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.isolating:
            _mkdir(self.root, 0o711)
        return _mkdir(self.root / part, 0o700 if part == "logs" or not self.isolating else 0o711)

    def _served_copy(
        self, model_path: Path, deployment: str, team: str, version: str, digest: str,
        account: pwd.struct_passwd | None,
    ) -> Path:  # fmt: skip
        """The read-only copy the server loads: made once per digest, by one rename."""
        owner = account.pw_name if account else team
        team_dir = self._layout("served") / owner
        if account is None:
            _mkdir(team_dir, 0o700)
        else:  # the team's group may pass, nobody else may
            _mkdir(team_dir, 0o710, 0, account.pw_gid)
        parent = _mkdir(team_dir / deployment, 0o755 if account else 0o700)
        final = parent / f"{version}-{digest[:16]}"
        if final.is_dir():
            return final
        stage = parent / f".{final.name}.{uuid.uuid4().hex}"
        try:
            _copy_regular_tree(model_path, stage)
            os.rename(stage, final)
        except OSError as exc:
            if not final.is_dir():
                raise ServiceUnavailable(
                    f"The model of {deployment} version {version} could not be copied from "
                    f"{model_path} for serving ({exc})."
                ) from exc
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        return final

    def _fresh_workdir(
        self, deployment: str, version: str, account: pwd.struct_passwd | None
    ) -> tuple[Path, Path]:
        """An empty working folder for the account and a root-only log file path.

        Made anew on each start: nothing a previous run of the model left there is
        trusted, and root only removes it (``rmtree`` does not follow links)."""
        parent = _mkdir(self._layout("work") / deployment, 0o711 if account else 0o700)
        workdir = parent / version
        shutil.rmtree(workdir, ignore_errors=True)
        uid, gid = (account.pw_uid, account.pw_gid) if account else (-1, -1)
        _mkdir(workdir, 0o700, uid, gid)
        _mkdir(workdir / "repository", 0o700, uid, gid)
        logs = _mkdir(self._layout("logs") / deployment, 0o700)
        log_path = logs / f"{version}.log"
        # MLServer's log is read from the start for load failures: the last run's goes aside.
        with contextlib.suppress(FileNotFoundError):
            os.replace(log_path, log_path.with_suffix(".log.1"))
        return workdir, log_path

    # --- stopping -----------------------------------------------------------------------

    def stop(self, deployment: str, version: str | None = None) -> None:
        """Stop the deployment's servers (``version`` None: all) and remove their files;
        waits for a start under way to finish first."""
        with self._lock:
            keys = [k for k in self._entries if k[0] == deployment and version in (None, k[1])]
        self._stop_all(keys, remove=True)

    def keep_only(self, deployment: str, versions: set[str]) -> None:
        """Stop the deployment's servers of every version not in ``versions``."""
        with self._lock:
            keys = [k for k in self._entries if k[0] == deployment and k[1] not in versions]
        self._stop_all(keys, remove=True)

    def close(self) -> None:
        """Stop every server (service shutdown); served copies stay for the next start."""
        with self._lock:
            self._closed = True
            keys = list(self._entries)
        self._stop_all(keys, remove=False)

    def _stop_all(self, keys: list[tuple[str, str]], remove: bool) -> None:
        if len(keys) <= 1:
            for key in keys:
                self._stop_one(key, remove)
            return
        with ThreadPoolExecutor(min(len(keys), 16)) as pool:
            list(pool.map(lambda key: self._stop_one(key, remove), keys))

    def _stop_one(self, key: tuple[str, str], remove: bool) -> None:
        with self._key_lock(key):
            with self._lock:
                entry = self._entries.get(key)
            if entry is None:
                return
            if entry.server is not None:
                entry.server.stop(self.stop_grace)
            self._forget(*key)
            with self._lock:
                entry.status, entry.tail = STOPPED, ""
            if remove:
                for path in (entry.workdir, entry.served):
                    if path is not None:
                        shutil.rmtree(path, ignore_errors=True)

    # --- following the records ----------------------------------------------------------

    def reconcile(self, wanted: list[tuple[str, str, str, str, Path]]) -> list[ServerState]:
        """Make the servers match ``wanted`` ``(deployment, team, version, digest,
        model_path)``: stop the others, start what is missing or crashed (in parallel, each
        within ``ready_timeout``) and report each, in order; a failure is reported, not
        raised. A version that failed with this digest is not retried here (it would fail
        again on every call): :meth:`ensure` retries it."""
        keep = {(d, v) for d, _, v, _, _ in wanted}
        with self._lock:
            others = [k for k, e in self._entries.items() if k not in keep and e.status != STOPPED]
        self._stop_all(others, remove=True)
        todo = []
        for deployment, team, version, digest, path in wanted:
            now = self.state(deployment, version)
            if now and now.digest == digest and now.status in (READY, FAILED):
                continue
            todo.append((deployment, team, version, digest, path))
        if todo:
            with ThreadPoolExecutor(min(len(todo), 8)) as pool:
                list(pool.map(lambda args: self._ensure_quietly(*args), todo))
        return [self.state(d, v) or self._unknown(d, v, g) for d, _, v, g, _ in wanted]

    def _ensure_quietly(self, *args) -> None:
        try:
            self.ensure(*args)
        except MlplatError as exc:
            log.warning("model server %s %s: %s", args[0], args[2], exc)
        except Exception:  # a bug: logged with its traceback, the others still start
            log.exception("model server %s %s could not be started", args[0], args[2])

    @staticmethod
    def _unknown(deployment: str, version: str, digest: str) -> ServerState:
        return ServerState(deployment, version, digest, FAILED, None, deployment, "", None)


def _ensure_account(name: str) -> pwd.struct_passwd:
    """The system account ``name``, made with ``useradd`` if missing; never uid 0."""
    with _USERADD:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            command = [
                "useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                "--shell", _NO_LOGIN, "--user-group", "--comment",
                "jupyter-mlplat model server", name,
            ]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True)
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                raise ServiceUnavailable(
                    f"useradd could not create the model server account {name!r}: "
                    f"{(done.stderr or done.stdout).strip()}"
                ) from None
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise MlplatError(f"The OS account {name!r} is root's; a model never runs as root.")
    return entry


def _copy_regular_tree(source: Path, dest: Path) -> None:
    """Copy folders and regular files only (a link could reach platform files), with dirs
    0755 and files 0644 owned by whoever copies."""
    source = Path(source)
    if not source.is_dir() or source.is_symlink():
        raise UsageError(f"There is no model folder at {source}; pass the frozen copy's folder.")
    dest.mkdir(mode=0o755)
    os.chmod(dest, 0o755)
    for dirpath, dirnames, filenames in os.walk(source):
        here = dest / Path(dirpath).relative_to(source)
        for name in dirnames + filenames:
            info = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISDIR(info.st_mode):
                (here / name).mkdir(mode=0o755)
                os.chmod(here / name, 0o755)
            elif stat.S_ISREG(info.st_mode):
                shutil.copyfile(os.path.join(dirpath, name), here / name, follow_symlinks=False)
                os.chmod(here / name, 0o644)
            else:
                raise UsageError(
                    f"{os.path.join(dirpath, name)} is not a regular file or folder; a model "
                    "to serve holds files and folders only."
                )
