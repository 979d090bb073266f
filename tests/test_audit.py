"""The hash-chained audit log: append, verify, tamper detection, export, access."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import insert, text

from jupyter_mlplat.errors import PermissionDenied, UsageError
from jupyter_mlplat.governance import audit, check_audit_reader
from jupyter_mlplat.identity import ROLE_ADMIN, ROLE_REVIEWER, Identity
from jupyter_mlplat.store import Store
from jupyter_mlplat.store.models import GENESIS_HASH, AuditEvent, utcnow
from tests.postgres import postgres_server, store_url  # noqa: F401 (fixtures)

REVIEWER = Identity("rev", ("risk",), "test", roles=(ROLE_REVIEWER,))
ADMIN = Identity("root", (), "test", roles=(ROLE_ADMIN,))
USER = Identity("alice", ("churn",), "test")


@pytest.fixture
def store(store_url):  # noqa: F811 (fixture)
    store = Store(store_url)
    yield store
    store.dispose()


def add(store, n, subject="m/1/staging"):
    for i in range(n):
        with store.transaction() as session:
            audit.append(
                session, f"user{i}", "approval.request", subject,
                {"status": "requested", "i": i}, {"status": "approved", "score": 0.1 * i},
                f"reason {i}",
            )  # fmt: skip


def test_chain_links_and_hashes(store):
    add(store, 3)
    with store.session() as session:
        rows = session.query(AuditEvent).order_by(AuditEvent.seq).all()
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[0].prev_hash == GENESIS_HASH
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]
    first = rows[0]
    recomputed = audit.event_hash(
        first.seq, first.time, first.actor, first.action, first.subject,
        first.before, first.after, first.reason, first.prev_hash,
    )  # fmt: skip
    assert recomputed == first.hash
    result = audit.verify(store)
    assert (result.ok, result.events, result.first_broken_seq) == (True, 3, None)
    assert result.last_hash == rows[-1].hash


def test_hash_is_sha256_of_the_canonical_json():
    when = utcnow().replace(microsecond=123456)
    fields = (7, when, "zoë", 'say "hi"\n', "m/1/production", None, {"b": [1, 2.5], "a": "é"},
              "\u2028 tab\t", "ab" * 32)  # fmt: skip
    payload = dict(zip(audit.FIELDS, fields, strict=True), time=when.isoformat())
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert audit.event_hash(*fields) == hashlib.sha256(canonical.encode()).hexdigest()


def test_empty_log_verifies(store):
    assert audit.verify(store).model_dump() == {
        "ok": True, "events": 0, "first_broken_seq": None, "reason": "", "last_hash": None
    }  # fmt: skip


def test_odd_values_are_stored_as_plain_json(store):
    with store.transaction() as session:
        audit.append(session, "a", "x", "s", {"nan": float("nan"), "t": utcnow()}, ["é", 1], None)
    (event,) = audit.list_events(store, ADMIN).items
    assert event.before["nan"] == "nan" and event.after == ["é", 1] and event.reason == ""
    assert audit.verify(store).ok


def test_edited_row_breaks_the_chain_at_that_event(store):
    add(store, 5)
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE mlplat_audit_events SET after = :after WHERE seq = 3"),
            {"after": json.dumps({"status": "rejected", "score": 0.2})},
        )
    result = audit.verify(store)
    assert not result.ok
    assert (result.first_broken_seq, result.events) == (3, 2)
    assert "event 3 was changed" in result.reason


def test_reformatted_json_is_not_tampering(store):
    add(store, 2)
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE mlplat_audit_events SET after = :after WHERE seq = 2"),
            {"after": json.dumps({"score": 0.1, "status": "approved"}, indent=2)},
        )
    assert audit.verify(store).ok


def test_rehashed_row_breaks_the_chain_at_the_next_event(store):
    add(store, 4)
    with store.transaction() as session:
        row = session.get(AuditEvent, 2)
        row.reason = "forged"
        row.hash = audit.event_hash(
            row.seq, row.time, row.actor, row.action, row.subject,
            row.before, row.after, row.reason, row.prev_hash,
        )  # fmt: skip
    result = audit.verify(store)
    assert (result.ok, result.first_broken_seq) == (False, 3)
    assert "does not link" in result.reason


def test_deleted_row_is_detected(store):
    add(store, 4)
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM mlplat_audit_events WHERE seq = 2"))
    result = audit.verify(store)
    assert (result.ok, result.first_broken_seq) == (False, 3)
    assert "events are missing" in result.reason


def test_concurrent_appends_keep_one_chain(store):
    threads, per_thread = 6, 15
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def writer():
        barrier.wait()
        try:
            add(store, per_thread)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    workers = [threading.Thread(target=writer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not errors
    result = audit.verify(store)
    assert (result.ok, result.events) == (True, threads * per_thread)


def test_export_jsonl_and_csv(store, tmp_path):
    add(store, 3)
    events = audit.list_events(store, REVIEWER).items

    out = io.StringIO()
    assert audit.export(store, "jsonl", out) == 3
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3]
    assert lines[1]["after"] == {"status": "approved", "score": 0.1}
    assert lines[2]["hash"] == events[2].hash and lines[0]["time"].endswith("+00:00")

    path = tmp_path / "audit.csv"
    assert audit.export(store, "csv", path) == 3
    rows = list(csv.DictReader(path.open(newline="")))
    assert [int(r["seq"]) for r in rows] == [1, 2, 3]
    assert json.loads(rows[0]["before"]) == {"status": "requested", "i": 0}
    assert rows[2]["prev_hash"] == events[1].hash

    with pytest.raises(UsageError, match="'xml' is not an audit export format"):
        audit.export(store, "xml", io.StringIO())


def test_reading_needs_reviewer_or_admin(store):
    add(store, 5, subject="churn-model/1/production")
    add(store, 2, subject="fraud-model/2/staging")
    assert check_audit_reader(REVIEWER) is REVIEWER and check_audit_reader(ADMIN) is ADMIN
    with pytest.raises(PermissionDenied, match="reviewer or admin role"):
        check_audit_reader(USER)
    with pytest.raises(PermissionDenied):
        audit.list_events(store, USER)
    page = audit.list_events(store, ADMIN, limit=3)
    assert [e.seq for e in page.items] == [1, 2, 3] and page.next_cursor == "3"
    rest = audit.list_events(store, ADMIN, after_seq=int(page.next_cursor), limit=10)
    assert [e.seq for e in rest.items] == [4, 5, 6, 7] and rest.next_cursor is None
    fraud = audit.list_events(store, REVIEWER, subject="fraud-model/")
    assert [e.seq for e in fraud.items] == [6, 7]


def test_verify_handles_100k_events_quickly(store):
    n, rows, prev = 100_000, [], GENESIS_HASH
    start = utcnow()
    for seq in range(1, n + 1):
        when = start + timedelta(microseconds=seq)
        fields = (seq, when, "bot", "approval.request", f"m/{seq}/staging",
                  {"status": None}, {"status": "requested"}, "load", prev)  # fmt: skip
        prev = audit.event_hash(*fields)
        rows.append(dict(zip(audit.FIELDS, fields, strict=True), hash=prev))
    with store.transaction() as session:
        for chunk in range(0, n, 10_000):
            session.execute(insert(AuditEvent), rows[chunk : chunk + 10_000])
    began = time.perf_counter()
    result = audit.verify(store)
    elapsed = time.perf_counter() - began
    assert (result.ok, result.events, result.last_hash) == (True, n, prev)
    assert elapsed < 10, f"verify took {elapsed:.1f}s for {n} events"
    print(f"verify: {n} events in {elapsed:.2f}s ({store.dialect})")


# ---- a keyed chain, anchored outside the database ----


@pytest.fixture
def keyed(store_url, tmp_path):  # noqa: F811 (fixture)
    from jupyter_mlplat.store.anchor import read_or_create_key

    key = read_or_create_key(tmp_path / "audit.key")
    store = Store(store_url, audit_key=key, audit_checkpoint=tmp_path / "audit.head")
    yield store
    store.dispose()


def rewrite_from(store, seq, key=None):
    """What an attacker with database access does: edit an event and re-chain the rest."""
    with store.transaction() as session:
        rows = session.query(AuditEvent).filter(AuditEvent.seq >= seq).order_by(AuditEvent.seq)
        previous = None
        for row in rows:
            if row.seq == seq:
                row.reason = "forged"
            else:
                row.prev_hash = previous
            row.hash = audit.event_hash(
                row.seq, row.time, row.actor, row.action, row.subject, row.before,
                row.after, row.reason, row.prev_hash, key=key,
            )  # fmt: skip
            previous = row.hash


def test_the_key_file_is_owner_only_and_stable(tmp_path):
    import os

    from jupyter_mlplat.store.anchor import read_or_create_key

    key = read_or_create_key(tmp_path / "k" / "audit.key")
    assert len(key) == 32 and read_or_create_key(tmp_path / "k" / "audit.key") == key
    assert os.stat(tmp_path / "k" / "audit.key").st_mode & 0o777 == 0o600


def test_a_rechained_log_without_the_key_does_not_verify(keyed):
    add(keyed, 5)
    assert audit.verify(keyed).ok
    rewrite_from(keyed, 2)  # the package's own event_hash, but no key
    result = audit.verify(keyed)
    assert (result.ok, result.first_broken_seq) == (False, 2)
    assert "changed after it was written" in result.reason


def test_a_rechained_head_is_caught_by_the_checkpoint_even_with_the_key(keyed):
    add(keyed, 5)
    rewrite_from(keyed, 4, key=keyed.audit_key)  # an insider holding the key
    result = audit.verify(keyed)
    assert (result.ok, result.first_broken_seq) == (False, 5)
    assert "differs from the head checkpoint" in result.reason


def test_events_cut_off_the_end_are_detected(keyed):
    add(keyed, 6)
    with keyed.engine.begin() as conn:
        conn.execute(text("DELETE FROM mlplat_audit_events WHERE seq > 4"))
    result = audit.verify(keyed)
    assert (result.ok, result.events, result.first_broken_seq) == (False, 4, 5)
    assert "events after 4 were removed" in result.reason


def test_the_checkpoint_follows_every_commit_and_never_goes_back(keyed):
    from jupyter_mlplat.store.anchor import Head, advance_head, read_head

    add(keyed, 3)
    head = read_head(keyed.audit_checkpoint)
    assert head.seq == 3 and head.hash == audit.verify(keyed).last_hash
    advance_head(keyed.audit_checkpoint, Head(1, "older"))  # a late writer cannot rewind it
    assert read_head(keyed.audit_checkpoint).seq == 3
    with pytest.raises(RuntimeError), keyed.transaction() as session:  # rolled back: no move
        audit.append(session, "x", "approval.request", "m/9/staging")
        raise RuntimeError("rolled back")
    assert read_head(keyed.audit_checkpoint).seq == 3 and audit.verify(keyed).ok


def test_the_settings_store_is_keyed_and_anchored(tmp_path):
    from jupyter_mlplat.settings import MlplatSettings
    from jupyter_mlplat.store.anchor import read_head

    settings = MlplatSettings(home=str(tmp_path / "home"))
    store = Store.from_settings(settings)
    try:
        add(store, 2)
        assert store.audit_key and (tmp_path / "home" / "audit.key").is_file()
        assert read_head(tmp_path / "home" / "audit.head").seq == 2
        unkeyed = Store(settings.store_url)  # the same rows, hashed without the key
        assert not audit.verify(unkeyed).ok and audit.verify(store).ok
        unkeyed.dispose()
    finally:
        store.dispose()
