"""The platform database: engine, transactions, migrations, clear errors.

``Store(url)`` works the same on SQLite (embedded) and PostgreSQL (Kubernetes)::

    store = Store("sqlite:////srv/mlplat/platform.db")   # migrates to the latest schema
    with store.transaction() as session:                 # commit, or roll back everything
        session.add(...)

SQLite runs in WAL mode with a busy timeout, and write transactions start with
``BEGIN IMMEDIATE`` so concurrent writers queue instead of failing half-way;
PostgreSQL code takes row locks (``with_for_update``) and advisory locks where it
must serialize. A database that cannot be reached raises
:class:`~jupyter_mlplat.errors.ServiceUnavailable`, which HTTP layers answer with 503.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path

from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from ..errors import ServiceUnavailable, UsageError
from ..settings import MlplatSettings
from .models import canonical_json

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "mlplat_alembic_version"
# Key of the PostgreSQL advisory lock that serializes concurrent schema upgrades.
_MIGRATION_LOCK = 0x6D6C706C6174_01

# Errors that mean "the database is not there / not answering", not "your data is wrong".
_UNAVAILABLE = (exc.OperationalError, exc.InterfaceError, exc.TimeoutError)


def normalize_url(url: str | URL) -> URL:
    """``url`` with the driver this package uses (``postgresql://`` → psycopg 3)."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError as error:
        raise UsageError(
            f"{url!r} is not a database URL; use sqlite:///PATH or "
            "postgresql://USER:PASSWORD@HOST/DB."
        ) from error
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise UsageError(
            f"The platform database must be SQLite or PostgreSQL, not {parsed.drivername!r}; "
            "set c.MlplatSettings.store_url accordingly."
        )
    return parsed


def safe_url(url: str | URL) -> str:
    """``url`` for messages: the password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return "<invalid URL>"


def unavailable(url: str | URL, error: BaseException) -> ServiceUnavailable:
    """The one-sentence error for a database that cannot be used right now."""
    orig = getattr(error, "orig", None) or error
    detail = " ".join(str(orig).split("\n")[0].split()).rstrip(".")[:200] or type(orig).__name__
    return ServiceUnavailable(
        f"The platform database at {safe_url(url)} is unavailable ({detail}); "
        "try again or ask a platform admin."
    )


def is_unavailable(error: BaseException) -> bool:
    if isinstance(error, _UNAVAILABLE):
        return True
    return isinstance(error, exc.DBAPIError) and bool(error.connection_invalidated)


def _enable_wal(cursor, timeout: float) -> None:
    """Switch the database file to WAL (persistent). The switch needs the file to itself and
    SQLite does not wait for that, so retry while other connections open it at once."""
    deadline = time.monotonic() + timeout
    while cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() not in ("wal", "memory"):
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Store:
    """The platform database at ``url``; one per process is enough (it pools connections).

    ``timeout`` bounds how long SQLite waits for a lock and PostgreSQL for a connection.
    ``migrate=True`` upgrades the schema to the latest revision first. ``audit_key`` keys
    the audit chain's hashes (HMAC) and ``audit_checkpoint`` is the file that records its
    head after each commit (see :mod:`.anchor`); :meth:`from_settings` supplies both.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        timeout: float = 10.0,
        migrate: bool = True,
        audit_key: bytes | None = None,
        audit_checkpoint: Path | None = None,
    ):
        self.audit_key = audit_key
        self.audit_checkpoint = Path(audit_checkpoint) if audit_checkpoint else None
        self.url = normalize_url(url)
        self.dialect = self.url.get_backend_name()
        self.timeout = timeout
        if self.dialect == "sqlite":
            self.engine = create_engine(
                self.url,
                json_serializer=canonical_json,
                connect_args={"timeout": timeout, "check_same_thread": False},
            )
            self._install_sqlite_hooks(self.engine, timeout)
        else:
            self.engine = create_engine(
                self.url,
                pool_pre_ping=True,
                json_serializer=canonical_json,
                connect_args={"connect_timeout": max(1, int(timeout))},
            )
        # Same pool; on SQLite its transactions start with BEGIN IMMEDIATE.
        self._write_engine = self.engine.execution_options(mlplat_write=True)
        info = {"audit_key": audit_key}
        self._read = sessionmaker(self.engine, expire_on_commit=False, info=dict(info))
        self._write = sessionmaker(self._write_engine, expire_on_commit=False, info=dict(info))
        if self.audit_checkpoint is not None:
            event.listen(self._write, "after_commit", self._checkpoint)
        if migrate:
            self.upgrade()

    def __repr__(self) -> str:
        return f"Store({safe_url(self.url)!r})"

    @classmethod
    def from_settings(cls, settings: MlplatSettings, **kwargs) -> Store:
        """The store of ``settings.store_url``; creates the data directory of a SQLite file."""
        url = normalize_url(settings.store_url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            home = Path(settings.home)
            if Path(url.database).resolve().parent == home.resolve():
                home.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("timeout", settings.store_timeout_seconds)
        from .anchor import read_or_create_key

        kwargs.setdefault("audit_key", read_or_create_key(Path(settings.audit_key_file)))
        kwargs.setdefault("audit_checkpoint", Path(settings.audit_checkpoint_file))
        return cls(url, **kwargs)

    def _checkpoint(self, session: Session) -> None:
        """After a commit that appended audit events, move the head checkpoint forward."""
        head = session.info.pop("audit_head", None)
        if head is not None:
            from .anchor import Head, advance_head

            try:
                advance_head(self.audit_checkpoint, Head(*head))
            except OSError:  # committed already; an older checkpoint still verifies
                logging.getLogger(__name__).warning(
                    "could not move the audit checkpoint %s to event %s",
                    self.audit_checkpoint, head[0], exc_info=True,
                )  # fmt: skip

    @staticmethod
    def _install_sqlite_hooks(engine: Engine, timeout: float) -> None:
        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection, _record):
            # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            _enable_wal(cursor, timeout)
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection):
            write = connection.get_execution_options().get("mlplat_write")
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    @contextmanager
    def _scope(self, factory: sessionmaker) -> Iterator[Session]:
        session = factory()
        try:
            yield session
            session.commit()
        except BaseException as error:
            # The connection may be gone; the server then rolls back by itself.
            with suppress(Exception):
                session.rollback()
            if isinstance(error, exc.SQLAlchemyError) and is_unavailable(error):
                raise unavailable(self.url, error) from error
            raise
        finally:
            session.close()

    def session(self) -> AbstractContextManager[Session]:
        """A session for reading (commits at the end; use :meth:`transaction` to write)."""
        return self._scope(self._read)

    def transaction(self) -> AbstractContextManager[Session]:
        """A write transaction: everything in it commits together or not at all.

        On SQLite it holds the database's write lock from the start, so concurrent
        writers run one after the other.
        """
        return self._scope(self._write)

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` (the latest by default); safe to run concurrently."""
        from alembic import command

        if revision == "head" and self.current_revision() == head_revision():
            return  # nothing to do: no write lock needed
        try:
            with self._write_engine.begin() as connection:
                if self.dialect == "postgresql":
                    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
                config = alembic_config(connection)
                command.upgrade(config, revision)
        except exc.SQLAlchemyError as error:
            if is_unavailable(error):
                raise unavailable(self.url, error) from error
            raise

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self._scope(self._read) as session:
            context = MigrationContext.configure(
                session.connection(), opts={"version_table": VERSION_TABLE}
            )
            return context.get_current_revision()

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(connection=None):
    """An Alembic ``Config`` for the bundled migrations (no ``alembic.ini`` needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def head_revision() -> str:
    """The latest schema revision shipped with this package."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Create or upgrade the platform schema at ``url``."""
    store = Store(url, migrate=False)
    try:
        store.upgrade(revision)
    finally:
        store.dispose()


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def get_store(settings: MlplatSettings) -> Store:
    """The process-wide store of the settings' ``store_url`` (created and migrated once)."""
    key = settings.store_url
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = Store.from_settings(settings)
        return store


def reset_stores() -> None:
    """Forget (and close) the process-wide stores (tests, after changing settings)."""
    with _stores_lock:
        for store in _stores.values():
            store.dispose()
        _stores.clear()
