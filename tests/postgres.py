"""A throwaway PostgreSQL server for the test suite, and the fixtures built on it.

``PostgresServer`` runs ``initdb`` into a fresh data directory and starts ``postgres`` on a free
loopback port with trust authentication (loopback and its own private socket only), fsync off.
PostgreSQL refuses to run as root, so when the suite runs as root (CI does) the server runs as
the unprivileged ``postgres`` system user (the Debian package creates it; created here if
missing), and its data directory lives in a private directory under the system temp dir, since
pytest's own temp dirs are readable by root only.

Fixtures (import them in ``tests/conftest.py``):

* ``postgres_server`` (session): the running server; skips every test that uses it when no
  PostgreSQL binaries are installed (``scripts/ensure-postgres.sh`` installs them), but fails
  instead when the ``CI`` environment variable is set, so CI can never silently skip.
* ``store_url`` (function, parametrized ``sqlite`` / ``postgresql``): a SQLAlchemy URL of a
  fresh, empty database for this test only: a SQLite file under ``tmp_path``, or a new database
  on the session server that is dropped afterwards.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from jupyter_mlplat.embedded import free_port

__all__ = [
    "PostgresServer",
    "find_pg_bin",
    "in_ci",
    "postgres_server",
    "store_url",
]

NOT_INSTALLED = "PostgreSQL is not installed: run scripts/ensure-postgres.sh (make test does)"
SERVER_OS_USER = "postgres"  # who runs the server when the tests run as root
_TOOLS = ("initdb", "postgres")


def _has_tools(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / tool, os.X_OK) for tool in _TOOLS)


def _version_key(path: Path) -> tuple[int, ...]:
    """``/usr/lib/postgresql/16/bin`` -> ``(16,)``; unparsable versions sort first."""
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (-1,)


def find_pg_bin() -> Path | None:
    """The directory holding ``initdb`` and ``postgres``, or ``None`` if none is installed.

    Looks at ``$MLPLAT_PG_BIN`` first, then the Debian layout ``/usr/lib/postgresql/*/bin``
    (highest major version wins), then ``initdb`` on ``PATH`` (Homebrew, Fedora, ...).
    """
    override = os.environ.get("MLPLAT_PG_BIN")
    if override:
        return Path(override) if _has_tools(Path(override)) else None
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    return next((path for path in candidates if _has_tools(path)), None)


def in_ci() -> bool:
    """True when the ``CI`` environment variable is set (to anything but empty/0/false/no)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _server_os_user() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as, or ``None`` to run as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_OS_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
             "/nonexistent", "--shell", "/usr/sbin/nologin", SERVER_OS_USER],
            check=True,
        )  # fmt: skip
        return pwd.getpwnam(SERVER_OS_USER)


class PostgresServer:
    """``initdb`` + ``postgres`` on a free loopback port; ``start()``, ``url``, ``stop()``.

    The superuser is ``db_user`` (trust auth, no password) and ``dbname`` is created at start.
    """

    def __init__(
        self,
        root: Path,
        *,
        bin_dir: Path | None = None,
        db_user: str = "mlplat",
        dbname: str = "mlplat",
        start_timeout: float = 60.0,
    ):
        self.root = Path(root)
        self.bin_dir = bin_dir
        self.db_user = db_user
        self.dbname = dbname
        self.start_timeout = start_timeout
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.log_path = self.root / "postgres.log"
        self.workdir: Path | None = None
        self.proc: subprocess.Popen | None = None
        self._os_user = _server_os_user()

    # -- URLs and connections ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the database created at start."""
        return self.url_for(self.dbname)

    def url_for(self, dbname: str) -> str:
        if self.port is None:
            raise RuntimeError("The PostgreSQL server is not started.")
        return f"postgresql+psycopg://{self.db_user}@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres", **kwargs):
        """A psycopg (3) connection, autocommit unless told otherwise."""
        import psycopg

        kwargs.setdefault("autocommit", True)
        kwargs.setdefault("connect_timeout", 5)
        return psycopg.connect(
            host=self.host, port=self.port, user=self.db_user, dbname=dbname, **kwargs
        )

    def create_database(self, dbname: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        from psycopg import sql

        with self.connect() as conn:
            # With fsync off, FILE_COPY (PostgreSQL 15+) is ~3x faster than the WAL_LOG default.
            fast = conn.info.server_version >= 150000
            strategy = sql.SQL(" STRATEGY FILE_COPY") if fast else sql.SQL("")
            conn.execute(sql.SQL("CREATE DATABASE {}{}").format(sql.Identifier(dbname), strategy))
        return self.url_for(dbname)

    def drop_database(self, dbname: str) -> None:
        """Drop a database, first terminating whatever is still connected to it."""
        from psycopg import sql

        with self.connect() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            )
            force = sql.SQL(" WITH (FORCE)") if conn.info.server_version >= 130000 else sql.SQL("")
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {}{}").format(sql.Identifier(dbname), force)
            )

    # -- lifecycle -----------------------------------------------------------------------------

    def _run_kwargs(self) -> dict:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        kwargs: dict = {"env": env, "cwd": str(self.workdir)}
        if self._os_user is not None:
            env.update(HOME=str(self.workdir), USER=self._os_user.pw_name)
            env["LOGNAME"] = self._os_user.pw_name
            kwargs.update(user=self._os_user.pw_uid, group=self._os_user.pw_gid, extra_groups=[])
        return kwargs

    def _make_workdir(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        workdir = self.root / "pg"
        # Another account cannot reach pytest's temp dirs (mode 0700), and a Unix socket path
        # must stay under ~107 bytes: use a private dir under the system temp dir then.
        if self._os_user is not None or len(str(workdir / "sock" / ".s.PGSQL.65535")) > 100:
            workdir = Path(tempfile.mkdtemp(prefix="mlplat-pg-"))
            (self.root / "WORKDIR").write_text(f"{workdir}\n")
        else:
            workdir.mkdir()
        for sub in ("data", "sock"):
            (workdir / sub).mkdir(mode=0o700)
        if self._os_user is not None:
            for path in (workdir, workdir / "data", workdir / "sock"):
                os.chown(path, self._os_user.pw_uid, self._os_user.pw_gid)
                path.chmod(0o700)
        return workdir

    def _initdb(self) -> None:
        data = self.workdir / "data"
        result = subprocess.run(
            [str(self.bin_dir / "initdb"), "-D", str(data), "-U", self.db_user,
             "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            **self._run_kwargs(),
        )  # fmt: skip
        with self.log_path.open("a") as log:
            log.write(result.stdout)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed ({result.returncode}):\n{result.stdout}")
        # Trust only our private socket and loopback IPv4 (the only address we listen on).
        hba = data / "pg_hba.conf"
        hba.write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
        if self._os_user is not None:
            os.chown(hba, self._os_user.pw_uid, self._os_user.pw_gid)

    def _launch(self, port: int) -> subprocess.Popen:
        settings = {
            "listen_addresses": self.host,
            "port": str(port),
            "unix_socket_directories": str(self.workdir / "sock"),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "logging_collector": "off",
        }
        command = [str(self.bin_dir / "postgres"), "-D", str(self.workdir / "data")]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, **self._run_kwargs(),
            )  # fmt: skip

    def _wait_ready(self) -> bool:
        """True once the server answers; False if it exited (e.g. the port was taken)."""
        import psycopg

        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with self.connect(connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                time.sleep(0.05)
        raise RuntimeError(
            f"PostgreSQL did not answer on port {self.port} within {self.start_timeout}s;"
            f" see {self.log_path}:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def start(self) -> PostgresServer:
        if self.proc is not None:
            return self
        if self.bin_dir is None:
            self.bin_dir = find_pg_bin()
        if self.bin_dir is None:
            raise RuntimeError(NOT_INSTALLED)
        atexit.register(self.stop)
        try:
            self.workdir = self._make_workdir()
            self._initdb()
            for _attempt in range(5):  # free_port() can race with another process
                self.port = free_port(self.host)
                self.proc = self._launch(self.port)
                if self._wait_ready():
                    break
                self.proc = None
            else:
                raise RuntimeError(
                    f"PostgreSQL kept exiting at start; see {self.log_path}:\n{self._log_tail()}"
                )
            self.create_database(self.dbname)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Fast shutdown (like ``pg_ctl stop -m fast``), then remove the data directory."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            for sig, wait in ((signal.SIGINT, 30), (signal.SIGQUIT, 10), (signal.SIGKILL, 10)):
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)  # SIGINT = "fast", SIGQUIT = "immediate"
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        atexit.unregister(self.stop)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A real PostgreSQL server for the whole session (skipped if not installed, unless CI)."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        if in_ci():
            pytest.fail(
                f"{NOT_INSTALLED} (CI is set, so this fails instead of skipping)", pytrace=False
            )
        pytest.skip(NOT_INSTALLED)
    server = PostgresServer(tmp_path_factory.mktemp("postgres"), bin_dir=bin_dir).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """SQLAlchemy URL of a fresh, empty database for this test (SQLite file or PostgreSQL DB)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    dbname = f"test_{uuid.uuid4().hex}"
    url = server.create_database(dbname)
    try:
        yield url
    finally:
        server.drop_database(dbname)
