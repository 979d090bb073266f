"""The platform store: migrations, transactions, locking and clear errors (SQLite, PostgreSQL)."""

from __future__ import annotations

import sqlite3
import threading

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from jupyter_mlplat.embedded import free_port
from jupyter_mlplat.errors import ServiceUnavailable, UsageError
from jupyter_mlplat.settings import MlplatSettings
from jupyter_mlplat.store import Store, upgrade
from jupyter_mlplat.store.db import (
    VERSION_TABLE,
    get_store,
    head_revision,
    normalize_url,
    reset_stores,
)
from jupyter_mlplat.store.models import ApprovalRequest, Base, ModelOwnership, utcnow
from tests.postgres import postgres_server, store_url  # noqa: F401 (fixtures)

TABLES = {
    "mlplat_model_ownership",
    "mlplat_approval_requests",
    "mlplat_checks",
    "mlplat_decisions",
    "mlplat_audit_events",
    "mlplat_idempotency_keys",
    "mlplat_deployments",
    "mlplat_job_schedules",
    "mlplat_pipeline_runs",
    "mlplat_job_runs",
    VERSION_TABLE,
}


@pytest.fixture
def store(store_url):  # noqa: F811 (fixture)
    store = Store(store_url)
    yield store
    store.dispose()


def request_row(status="requested", version="1", target="production"):
    now = utcnow()
    return ApprovalRequest(
        model="m", version=version, target=target, requester="alice", requester_team="churn",
        run_id="r", artifact_digest="d", metrics={}, status=status, reason="",
        created_at=now, updated_at=now,
    )  # fmt: skip


def test_migrations_create_the_schema_and_match_the_models(store):
    assert set(sa.inspect(store.engine).get_table_names()) == TABLES
    assert store.current_revision() == head_revision() == "0006_pipelines"
    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE, "compare_type": True}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_upgrade_is_idempotent_and_safe_concurrently(store_url):  # noqa: F811 (fixture)
    errors: list[BaseException] = []

    def run():
        try:
            upgrade(store_url)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    store = Store(store_url)  # at head already: a no-op
    try:
        assert store.current_revision() == head_revision()
    finally:
        store.dispose()


def test_transaction_commits_all_or_nothing(store):
    with store.transaction() as session:
        session.add(ModelOwnership(model="a", team="t", registered_by="u", created_at=utcnow()))
    with pytest.raises(RuntimeError), store.transaction() as session:
        session.add(ModelOwnership(model="b", team="t", registered_by="u", created_at=utcnow()))
        session.flush()
        raise RuntimeError("fail after the write")
    with store.session() as session:
        assert session.scalars(sa.select(ModelOwnership.model)).all() == ["a"]
        created = session.get(ModelOwnership, "a").created_at
    assert created.tzinfo is not None and abs((utcnow() - created).total_seconds()) < 60


def test_at_most_one_open_request_per_version_and_target(store):
    with store.transaction() as session:
        session.add_all([request_row("rejected"), request_row("retired"), request_row()])
        session.add(request_row(target="staging"))
    for status in ("requested", "approved", "deployed"):
        with pytest.raises(sa.exc.IntegrityError), store.transaction() as session:
            session.add(request_row(status))
    with store.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ApprovalRequest)) == 4


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'p.db'}", timeout=7)
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 7000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        store.dispose()


def test_concurrent_writers_serialize(store):
    """Read-modify-write in parallel transactions loses no update on either database."""
    with store.transaction() as session:
        session.add(
            ModelOwnership(model="counter", team="0", registered_by="u", created_at=utcnow())
        )
    barrier = threading.Barrier(4)

    def bump(times):
        barrier.wait()
        for _ in range(times):
            with store.transaction() as session:
                row = session.get(ModelOwnership, "counter", with_for_update=True)
                row.team = str(int(row.team) + 1)

    threads = [threading.Thread(target=bump, args=(10,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with store.session() as session:
        assert session.get(ModelOwnership, "counter").team == "40"


def test_closed_port_is_unavailable_without_the_password():
    url = f"postgresql://mlplat:s3cret@127.0.0.1:{free_port()}/mlplat"
    with pytest.raises(ServiceUnavailable) as caught:
        Store(url, timeout=2)
    message = str(caught.value)
    assert message.startswith("The platform database at postgresql+psycopg://mlplat:***@127.0.0.1:")
    assert message.endswith("; try again or ask a platform admin.")
    assert "s3cret" not in message and "\n" not in message


def test_sqlite_in_a_missing_directory_is_unavailable(tmp_path):
    with pytest.raises(ServiceUnavailable, match=r"unable to open database file\); try again"):
        Store(f"sqlite:///{tmp_path / 'missing' / 'platform.db'}")


def test_connection_lost_mid_transaction_is_unavailable_and_writes_nothing(store, store_url):  # noqa: F811
    """The database drops the connection (PostgreSQL) or stays locked by another writer past the
    timeout (SQLite) after a write and before the audit event: nothing is kept."""
    from jupyter_mlplat.governance import audit

    unavailable = pytest.raises(ServiceUnavailable, match="try again or ask a platform admin")
    with unavailable, store.transaction() as session:
        session.add(ModelOwnership(model="x", team="t", registered_by="u", created_at=utcnow()))
        session.flush()
        if store.dialect == "postgresql":
            pid = session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            with sa.create_engine(store_url).connect() as admin:
                admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        audit.append(session, "u", "model.claim", "x")
        if store.dialect == "sqlite":
            raise sa.exc.OperationalError("COMMIT", {}, Exception("database is locked"))
    if store.dialect == "sqlite":
        # A real lock held by another process past the timeout is unavailable too.
        holder = sqlite3.connect(sa.engine.make_url(store_url).database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        quick = Store(store_url, timeout=0.2)  # at head: no write needed to open it
        try:
            locked = pytest.raises(ServiceUnavailable, match=r"\(database is locked\)")
            with locked, quick.transaction() as session:
                session.add(ModelOwnership(model="y", team="t", registered_by="u"))
        finally:
            holder.rollback()
            holder.close()
            quick.dispose()
    with store.session() as session:
        assert session.scalars(sa.select(ModelOwnership)).all() == []
        assert session.scalar(sa.text("SELECT count(*) FROM mlplat_audit_events")) == 0


def test_urls_and_settings(tmp_path, monkeypatch):
    assert normalize_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    with pytest.raises(UsageError, match="must be SQLite or PostgreSQL"):
        normalize_url("mysql://u@h/db")
    with pytest.raises(UsageError, match="is not a database URL"):
        normalize_url("not a url")

    monkeypatch.delenv("MLPLAT_STORE_URL", raising=False)
    settings = MlplatSettings(home=str(tmp_path / "home"))
    assert settings.store_url == f"sqlite:///{tmp_path / 'home' / 'platform.db'}"
    monkeypatch.setenv("MLPLAT_STORE_URL", "postgresql://db/mlplat")
    assert MlplatSettings().store_url == "postgresql://db/mlplat"

    reset_stores()
    try:
        store = get_store(settings)  # creates the data directory for its SQLite file
        assert get_store(settings) is store
        assert (tmp_path / "home" / "platform.db").is_file()
        assert store.current_revision() == head_revision()
    finally:
        reset_stores()


def test_state_counts_become_the_metrics_gauges(store):
    from jupyter_mlplat.service.metrics import ServiceMetrics
    from jupyter_mlplat.store.counts import state_counts

    with store.transaction() as session:
        session.add_all([request_row("rejected"), request_row("approved", version="2")])
        session.add_all([request_row(version="3"), request_row(version="3", target="staging")])
    counts = state_counts(store)
    assert counts.approval_requests == {
        ("production", "rejected"): 1, ("production", "approved"): 1,
        ("production", "requested"): 1, ("staging", "requested"): 1,
    }  # fmt: skip
    assert counts.job_runs == {} and counts.deployments == {}
    text = ServiceMetrics(lambda: state_counts(store)).render()[0].decode()
    assert 'mlplat_approval_requests{status="requested",target="production"} 1.0' in text
    assert "# TYPE mlplat_job_runs gauge" in text and "# TYPE mlplat_deployments gauge" in text

    def broken():
        raise sa.exc.OperationalError("select", {}, Exception("database is gone"))

    # A store that cannot be read drops the gauges from that scrape, not the request metrics.
    text = ServiceMetrics(broken).render()[0].decode()
    assert "mlplat_approval_requests" not in text and "process_cpu_seconds_total" in text
