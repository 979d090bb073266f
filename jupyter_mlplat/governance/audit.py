"""The append-only, hash-chained audit log of governance state changes.

Every event carries ``prev_hash`` (the hash of the event before; 64 zeros for the
first) and ``hash`` = HMAC-SHA256, keyed with the platform's audit key (plain SHA-256 for a
store opened without one, as in some tests), of the canonical JSON of
``(seq, time, actor, action, subject, before, after, reason, prev_hash)``. Editing,
deleting or re-ordering a stored event breaks the chain at that event, which
:func:`verify` reports; without the key nobody can recompute a chain that verifies. Events
cut off the *end* leave a valid shorter chain, so every commit also moves a head
checkpoint kept outside the database (:mod:`jupyter_mlplat.store.anchor`), and
:func:`verify` compares the chain's end with it.

:func:`append` runs inside the caller's transaction so an event commits exactly
when the state change it records does. Appends are serialized: PostgreSQL takes a
transaction-scoped advisory lock, SQLite write transactions already hold the
database lock (``BEGIN IMMEDIATE``), and the ``seq`` primary key rejects any fork.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from json.encoder import encode_basestring as _quote  # as json.dumps, ensure_ascii=False
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Text, cast, select, text
from sqlalchemy.orm import Session

from ..api.governance import ListAuditEventsResponse, VerifyAuditResponse
from ..errors import UsageError
from ..identity import Identity
from ..store.db import Store
from ..store.models import GENESIS_HASH, AuditEvent, canonical_json, iso, json_safe, utcnow
from .export import EXPORT_COLUMNS, JSON_FIELDS, write_records
from .export import FIELDS as FIELDS  # the hashed fields, in order
from .policy import check_audit_reader
from .queries import describe_event

# Key of the PostgreSQL advisory lock that serializes appends ("mlplat" + 0xA0).
AUDIT_LOCK = 0x6D6C706C6174_A0
_STREAM_BATCH = 5000


def _digest(
    key: bytes | None,
    seq: int,
    time_text: str,
    actor: str,
    action: str,
    subject: str,
    before_json: str,
    after_json: str,
    reason: str,
    prev_hash: str,
) -> str:
    # Exactly canonical_json({...the nine fields...}), keys in sorted order, built directly.
    payload = (
        f'{{"action":{_quote(action)},"actor":{_quote(actor)},"after":{after_json},'
        f'"before":{before_json},"prev_hash":{_quote(prev_hash)},"reason":{_quote(reason)},'
        f'"seq":{int(seq)},"subject":{_quote(subject)},"time":{_quote(time_text)}}}'
    )
    if key:
        return hmac.new(key, payload.encode("utf-8"), hashlib.sha256).hexdigest()
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def event_hash(
    seq: int,
    time: datetime,
    actor: str,
    action: str,
    subject: str,
    before: Any,
    after: Any,
    reason: str,
    prev_hash: str,
    key: bytes | None = None,
) -> str:
    """HMAC-SHA256 with ``key`` (plain sha256 without one), hex, of the canonical JSON
    (sorted keys, no spaces, UTF-8) of the object ``{seq, time, actor, action, subject,
    before, after, reason, prev_hash}``, ``time`` as ISO 8601 UTC with microseconds."""
    return _digest(
        key, seq, iso(time), actor, action, subject, canonical_json(before), canonical_json(after),
        reason, prev_hash,
    )  # fmt: skip


def append(
    session: Session,
    actor: str,
    action: str,
    subject: str,
    before: Any = None,
    after: Any = None,
    reason: str = "",
) -> AuditEvent:
    """Record one state change in the caller's (write) transaction; returns the new event."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK})
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    seq, prev_hash = (last.seq + 1, last.hash) if last else (1, GENESIS_HASH)
    before, after, reason = json_safe(before), json_safe(after), reason or ""
    # Stored times keep microseconds on both dialects, so the hash sees what is stored.
    time = utcnow()
    event = AuditEvent(
        seq=seq,
        time=time,
        actor=actor,
        action=action,
        subject=subject,
        before=before,
        after=after,
        reason=reason,
        prev_hash=prev_hash,
        hash=event_hash(
            seq, time, actor, action, subject, before, after, reason, prev_hash,
            key=session.info.get("audit_key"),
        ),
    )  # fmt: skip
    session.add(event)
    session.flush()
    session.info["audit_head"] = (seq, event.hash)  # the store checkpoints it after commit
    return event


@contextmanager
def _rows(store: Store, raw_json: bool = False) -> Iterator[Iterator[Any]]:
    """Stream the events in chain order without loading them all (``raw_json``: the
    stored text of ``before``/``after`` instead of parsed values)."""
    columns = [getattr(AuditEvent, name) for name in EXPORT_COLUMNS]
    if raw_json:
        columns = [cast(c, Text).label(c.key) if c.key in JSON_FIELDS else c for c in columns]
    query = select(*columns).order_by(AuditEvent.seq)
    with store.session() as session:
        options = {"yield_per": _STREAM_BATCH}
        yield iter(session.connection().execute(query, execution_options=options))


def _row_ok(row: Any, key: bytes | None) -> bool:
    """Whether a stored event matches its hash.

    The store writes JSON canonically, so the stored text is hashed as it is (fast);
    only if that fails is it parsed and re-serialized (a database that reformatted
    JSON is not tampering).
    """
    before, after = row.before or "null", row.after or "null"
    fields = (row.seq, iso(row.time), row.actor, row.action, row.subject)
    if _digest(key, *fields, before, after, row.reason, row.prev_hash) == row.hash:
        return True
    try:
        before, after = canonical_json(json.loads(before)), canonical_json(json.loads(after))
    except ValueError:
        return False
    return _digest(key, *fields, before, after, row.reason, row.prev_hash) == row.hash


def verify(store: Store) -> VerifyAuditResponse:
    """Re-compute the whole chain and compare its end with the head checkpoint; names the
    first event that does not hold (edits, deletions, re-ordering, a cut-off end)."""
    from ..store.anchor import read_head

    checkpoint = read_head(store.audit_checkpoint)
    count, previous, expected, at_checkpoint = 0, GENESIS_HASH, 1, None
    with _rows(store, raw_json=True) as rows:
        for row in rows:
            seq = row.seq
            problem = ""
            if seq != expected:
                problem = f"event {seq} comes where event {expected} should: events are missing"
            elif row.prev_hash != previous:
                problem = f"event {seq} does not link to the hash of event {seq - 1}"
            elif not _row_ok(row, store.audit_key):
                problem = f"event {seq} was changed after it was written (its hash differs)"
            if problem:
                return VerifyAuditResponse(
                    ok=False, events=count, first_broken_seq=seq, reason=problem
                )
            if checkpoint is not None and seq == checkpoint.seq:
                at_checkpoint = row.hash
            count, previous, expected = count + 1, row.hash, seq + 1
    if checkpoint is not None:
        problem = _checkpoint_problem(checkpoint, count, at_checkpoint)
        if problem:
            return VerifyAuditResponse(
                ok=False, events=count, first_broken_seq=min(count + 1, checkpoint.seq),
                reason=problem,
            )  # fmt: skip
    return VerifyAuditResponse(
        ok=True, events=count, reason="", last_hash=previous if count else None
    )


def _checkpoint_problem(checkpoint, count: int, hash_at_checkpoint: str | None) -> str:
    if checkpoint.seq < 0:
        return "the head checkpoint file is unreadable; restore it or ask a platform admin"
    if checkpoint.seq > count:
        return (
            f"the log ends at event {count} but the checkpoint records event "
            f"{checkpoint.seq}: events after {count} were removed"
        )
    if hash_at_checkpoint != checkpoint.hash:
        return (
            f"event {checkpoint.seq} differs from the head checkpoint: the log was "
            "rewritten from there on"
        )
    return ""


def _record(row: Any) -> dict[str, Any]:
    record = dict(row._mapping)
    record["time"] = iso(record["time"])
    return record


def export(store: Store, fmt: str, out: IO[str] | str | Path) -> int:
    """Write every event of the store, in chain order (see :func:`write_records`)."""
    if fmt not in ("jsonl", "csv"):
        raise UsageError(f"{fmt!r} is not an audit export format; use jsonl or csv.")
    with _rows(store) as rows:
        return write_records((_record(row) for row in rows), fmt, out)


def list_events(
    store: Store,
    identity: Identity,
    subject: str | None = None,
    after_seq: int = 0,
    limit: int = 100,
) -> ListAuditEventsResponse:
    """A page of events (reviewers and admins only); ``subject`` may be a prefix
    such as ``"churn-model/"`` or ``"churn-model/3/"``."""
    check_audit_reader(identity)
    limit = max(1, min(int(limit), 5000))
    query = select(AuditEvent).where(AuditEvent.seq > after_seq)
    if subject:
        query = query.where(
            (AuditEvent.subject == subject)
            | AuditEvent.subject.startswith(subject, autoescape=True)
        )
    with store.session() as session:
        rows = session.scalars(query.order_by(AuditEvent.seq).limit(limit + 1)).all()
        events = [describe_event(r) for r in rows[:limit]]
    next_seq = events[-1].seq if len(rows) > limit else None
    return ListAuditEventsResponse(
        items=events, next_cursor=str(next_seq) if next_seq is not None else None
    )
