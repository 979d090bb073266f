"""The ``store_url`` fixture gives SQLAlchemy 2 a fresh, transactional database on both backends."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from tests.postgres import PostgresServer

# Fixtures (plain assignments: tests/conftest.py may import them too).

only_postgres = pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)


@pytest.fixture
def engine(store_url):
    engine = sa.create_engine(store_url)
    yield engine
    engine.dispose()


def _count(conn, table: str = "items") -> int:
    return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_store_url_is_fresh_and_rolls_back(engine, request):
    assert engine.dialect.name == request.node.callspec.params["store_url"]
    assert sa.inspect(engine).get_table_names() == []

    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(50))"))

    with engine.connect() as conn:
        trans = conn.begin()
        conn.execute(sa.text("INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b')"))
        assert _count(conn) == 2
        trans.rollback()
        assert _count(conn) == 0

    with engine.connect() as conn:
        assert _count(conn) == 0
        conn.rollback()
        with conn.begin():
            conn.execute(sa.text("INSERT INTO items (id, name) VALUES (3, 'c')"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM items")).scalars().all() == ["c"]


@only_postgres
def test_select_for_update_blocks_a_second_transaction(engine, store_url, postgres_server):
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER)"))
        conn.execute(sa.text("INSERT INTO accounts VALUES (1, 0)"))

    holder = engine.connect()
    holder_trans = holder.begin()
    locked = "SELECT balance FROM accounts WHERE id = 1 FOR UPDATE"
    assert holder.execute(sa.text(locked)).scalar_one() == 0

    outcome: dict = {}
    done = threading.Event()

    def second_transaction():
        try:
            with engine.connect() as conn, conn.begin():
                conn.execute(sa.text("SET LOCAL lock_timeout = '20s'"))
                seen = conn.execute(sa.text(locked)).scalar_one()  # blocks on the row lock
                conn.execute(
                    sa.text("UPDATE accounts SET balance = :b WHERE id = 1"), {"b": seen + 1}
                )
                outcome["seen"] = seen
        except Exception as exc:  # surfaced by the assertions below
            outcome["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=second_transaction, daemon=True)
    worker.start()
    try:
        # The second backend must show up as waiting on a lock, and stay unfinished.
        dbname = engine.url.database
        deadline = time.monotonic() + 10
        waiting = 0
        with postgres_server.connect() as admin:
            while time.monotonic() < deadline and not waiting:
                waiting = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = %s AND wait_event_type = 'Lock'",
                    (dbname,),
                ).fetchone()[0]
                time.sleep(0.05)
        assert waiting == 1, outcome
        assert not done.wait(0.3), outcome

        holder.execute(sa.text("UPDATE accounts SET balance = 100 WHERE id = 1"))
        holder_trans.commit()
    finally:
        if holder_trans.is_active:
            holder_trans.rollback()
        holder.close()

    assert done.wait(10), "the second transaction never got the row lock"
    worker.join(5)
    assert "error" not in outcome, outcome
    assert outcome["seen"] == 100  # FOR UPDATE re-reads the row the first transaction committed
    with engine.connect() as conn:
        assert _count(conn, "accounts") == 1
        assert conn.execute(sa.text("SELECT balance FROM accounts")).scalar_one() == 101


@only_postgres
def test_serializable_write_skew_is_refused(engine):
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE doctors (name VARCHAR(20) PRIMARY KEY, on_call BOOL)"))
        conn.execute(sa.text("INSERT INTO doctors VALUES ('alice', true), ('bob', true)"))

    serializable = engine.execution_options(isolation_level="SERIALIZABLE")
    on_call = sa.text("SELECT count(*) FROM doctors WHERE on_call")
    off_call = sa.text("UPDATE doctors SET on_call = false WHERE name = :name")
    with serializable.connect() as first, serializable.connect() as second:
        t1, t2 = first.begin(), second.begin()
        assert first.execute(on_call).scalar_one() == 2
        assert second.execute(on_call).scalar_one() == 2
        first.execute(off_call, {"name": "alice"})
        second.execute(off_call, {"name": "bob"})
        t1.commit()
        with pytest.raises(OperationalError) as failure:
            t2.commit()
        assert failure.value.orig.sqlstate == "40001"  # serialization_failure

    with engine.connect() as conn:
        assert conn.execute(on_call).scalar_one() == 1


def test_a_second_server_starts_on_loopback_and_cleans_up(postgres_server, tmp_path):
    with PostgresServer(tmp_path / "pg", bin_dir=postgres_server.bin_dir) as server:
        assert server.port != postgres_server.port
        assert server.url.startswith(f"postgresql+psycopg://mlplat@127.0.0.1:{server.port}/")
        with server.connect(server.dbname) as conn:
            row = conn.execute("SHOW listen_addresses").fetchone()
            assert row[0] == "127.0.0.1"
            assert conn.execute("SHOW fsync").fetchone()[0] == "off"
        workdir = server.workdir
        assert workdir is not None and workdir.exists()
    assert server.proc is None and not workdir.exists()
