"""Governance benchmarks: approval round trips under concurrency, and ``audit verify``.

Run with ``.venv/bin/python benchmarks/bench_governance.py`` (about 1-2 minutes on 2 cores).
Every figure runs on SQLite (a file in a temp dir) and on PostgreSQL (a throwaway server from
tests/postgres.py), next to a raw-SQLAlchemy baseline measured in the same run on the same
database; everything (files, server, scratch tables) is removed afterwards.

* Approval round trip: ``request_approval(..., "production", ...)`` by alice (team churn) and
  ``approve(...)`` by rita (role reviewer) for a distinct version each time, i.e. two write
  transactions with the automated checks, decisions and hash-chained audit events, from
  20 concurrent clients (threads) x 25 round trips. p50/p99 latency, throughput, errors (must
  be 0), then ``verify(store).ok``. Baseline: per round trip, one transaction inserting a row
  and an "event" row, one updating the row and inserting another "event" row (scratch tables,
  same concurrency, same connection settings as the store).
* ``audit verify`` of 100,000 events (built with ``append`` for the first, then bulk inserts
  chained exactly as ``append`` does): median of 3. Baseline: reading the same rows with
  SQLAlchemy (``yield_per``) and sha256-hashing each row's JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    cast,
    create_engine,
    event,
    insert,
    select,
    update,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from jupyter_mlplat.governance import (  # noqa: E402
    VersionInfo,
    append,
    approve,
    claim_model,
    request_approval,
    verify,
)
from jupyter_mlplat.governance.audit import event_hash  # noqa: E402
from jupyter_mlplat.identity import ROLE_REVIEWER, Identity  # noqa: E402
from jupyter_mlplat.settings import MlplatSettings, reset_settings  # noqa: E402
from jupyter_mlplat.store.db import Store  # noqa: E402
from jupyter_mlplat.store.models import AuditEvent  # noqa: E402
from tests.postgres import PostgresServer, find_pg_bin  # noqa: E402

MODEL = "churn-model"
TEAM = "churn"
ALICE = Identity(user="alice", teams=(TEAM,), source="bench")
RITA = Identity(user="rita", teams=("risk",), source="bench", roles=(ROLE_REVIEWER,))
INFO = VersionInfo(
    run_id="run-0001",
    artifact_digest="sha256:" + "ab" * 32,
    metrics={"accuracy": 0.9},
    lineage={
        "run_id": "run-0001",
        "notebook_hash": "sha256:" + "cd" * 32,
        "code_version": "git:0123456789abcdef",
        "feature_refs": ["customer_stats:tenure", "customer_stats:monthly_charges"],
        "data_source": "s3://bench/churn.parquet",
    },
)
AUDIT_BATCH = 10_000


# ---- helpers ---------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def run_concurrent(
    clients: int, per_client: int, round_trip: Callable[[int, int], None]
) -> tuple[list[float], list[str], float]:
    """Run ``round_trip(client, i)`` from ``clients`` threads; (latencies s, errors, wall s)."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client(c: int) -> None:
        mine, bad = [], []
        barrier.wait()
        for i in range(per_client):
            start = time.perf_counter()
            try:
                round_trip(c, i)
            except Exception as error:  # counted and reported, never hidden
                bad.append(f"{type(error).__name__}: {str(error).splitlines()[0][:160]}")
                continue
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return latencies, errors, time.perf_counter() - start


def raw_engine(url: str):
    """A plain SQLAlchemy engine with the store's connection settings (and nothing else):
    on SQLite the same busy timeout, synchronous=NORMAL and BEGIN IMMEDIATE writes (the file is
    already in WAL mode), so the baseline pays for the same durability and locking."""
    if not url.startswith("sqlite"):
        return create_engine(url)
    engine = create_engine(url, connect_args={"timeout": 10.0, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 10000")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


# ---- approval round trip -----------------------------------------------------------------------


def bench_round_trip(url: str, clients: int, per_client: int) -> dict:
    store = Store(url)
    try:
        claim_model(store, ALICE, MODEL, TEAM)

        def ours(c: int, i: int) -> None:
            version = f"{c + 1}{i:04d}"
            request = request_approval(
                store, ALICE, MODEL, version, "production", "bench promotion", INFO
            )
            if request.status != "requested":
                raise RuntimeError(f"request #{request.id} is {request.status}, not requested")
            decided = approve(store, RITA, request.id, "looks good", INFO)
            if decided.status != "approved":
                raise RuntimeError(f"request #{decided.id} is {decided.status}, not approved")

        for i in range(3):  # warm-up: connections, statement caches
            ours(900 + i, 0)
        latencies, errors, wall = run_concurrent(clients, per_client, ours)
        start = time.perf_counter()
        verified = verify(store)
        verify_seconds = time.perf_counter() - start
    finally:
        store.dispose()

    raw = bench_raw_round_trip(url, clients, per_client)
    return {
        "ours": (latencies, errors, wall),
        "raw": raw,
        "verify": verified,
        "verify_seconds": verify_seconds,
    }


def bench_raw_round_trip(url: str, clients: int, per_client: int):
    """Per round trip: INSERT row + INSERT event (one transaction), UPDATE row + INSERT event
    (another), on scratch tables that are dropped afterwards."""
    suffix = uuid.uuid4().hex[:8]
    metadata = MetaData()
    requests_t = Table(
        f"bench_raw_requests_{suffix}",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("model", String(200)),
        Column("version", String(50)),
        Column("status", String(20)),
        Column("reason", Text),
    )
    events_t = Table(
        f"bench_raw_events_{suffix}",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("actor", String(200)),
        Column("subject", String(600)),
        Column("payload", Text),
    )
    engine = raw_engine(url)
    metadata.create_all(engine)
    try:

        def raw(c: int, i: int) -> None:
            version = f"{c + 1}{i:04d}"
            subject = f"{MODEL}/{version}/production"
            with engine.begin() as conn:
                request_id = conn.execute(
                    insert(requests_t)
                    .values(model=MODEL, version=version, status="requested", reason="bench")
                    .returning(requests_t.c.id)
                ).scalar_one()
                conn.execute(
                    insert(events_t).values(
                        actor="alice", subject=subject, payload='{"status":"requested"}'
                    )
                )
            with engine.begin() as conn:
                conn.execute(
                    update(requests_t)
                    .where(requests_t.c.id == request_id)
                    .values(status="approved")
                )
                conn.execute(
                    insert(events_t).values(
                        actor="rita", subject=subject, payload='{"status":"approved"}'
                    )
                )

        for i in range(3):
            raw(900 + i, 0)
        return run_concurrent(clients, per_client, raw)
    finally:
        metadata.drop_all(engine)
        engine.dispose()


# ---- audit verify --------------------------------------------------------------------------------


def fill_audit(store: Store, total: int) -> float:
    """``total`` events: the first through ``append``, the rest bulk-inserted with the same
    chain computation (``event_hash`` over the stored values, linked by ``prev_hash``)."""
    start = time.perf_counter()
    with store.transaction() as session:
        first = append(session, "alice", "model.claim", MODEL, None, {"team": TEAM}, "registered")
        seq, prev_hash, base = first.seq, first.hash, first.time
    table = AuditEvent.__table__
    while seq < total:
        rows = []
        for _ in range(min(AUDIT_BATCH, total - seq)):
            seq += 1
            subject = f"{MODEL}/{seq // 2}/production"
            if seq % 2:
                actor, action, before = "rita", "approval.approve", {"status": "requested"}
                after, reason = {"status": "approved", "approvals": 1}, "looks good"
            else:
                actor, action, before = "alice", "approval.request", None
                after = {"status": "requested", "run_id": "run-0001", "checks": {"lineage": True}}
                reason = "bench promotion"
            when = base + timedelta(microseconds=seq)
            digest = event_hash(seq, when, actor, action, subject, before, after, reason, prev_hash)
            rows.append(
                {
                    "seq": seq,
                    "time": when,
                    "actor": actor,
                    "action": action,
                    "subject": subject,
                    "before": before,
                    "after": after,
                    "reason": reason,
                    "prev_hash": prev_hash,
                    "hash": digest,
                }
            )
            prev_hash = digest
        with store.transaction() as session:
            session.execute(insert(table), rows)
    return time.perf_counter() - start


def raw_hash_pass(store: Store) -> int:
    """Read every event with SQLAlchemy (yield_per) and sha256 its JSON; returns the count."""
    table = AuditEvent.__table__
    columns = [
        cast(c, Text).label(c.key) if c.key in ("before", "after") else c
        for c in (
            table.c.seq,
            table.c.time,
            table.c.actor,
            table.c.action,
            table.c.subject,
            table.c.before,
            table.c.after,
            table.c.reason,
            table.c.prev_hash,
            table.c.hash,
        )
    ]
    count = 0
    with store.engine.connect() as conn:
        result = conn.execute(
            select(*columns).order_by(table.c.seq), execution_options={"yield_per": 5000}
        )
        for row in result:
            payload = json.dumps(
                [row.seq, row.time.isoformat(), row.actor, row.action, row.subject,
                 row.before, row.after, row.reason, row.prev_hash],
                separators=(",", ":"),
                ensure_ascii=False,
            )  # fmt: skip
            hashlib.sha256(payload.encode("utf-8")).hexdigest()
            count += 1
    return count


def bench_verify(url: str, total: int, repeats: int) -> dict:
    store = Store(url)
    try:
        fill_seconds = fill_audit(store, total)
        ours, raw, results = [], [], []
        verify(store)  # warm-up
        raw_hash_pass(store)
        for _ in range(repeats):  # interleaved, so drift hits both alike
            start = time.perf_counter()
            results.append(verify(store))
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            count = raw_hash_pass(store)
            raw.append(time.perf_counter() - start)
    finally:
        store.dispose()
    return {
        "fill": fill_seconds,
        "ours": statistics.median(ours),
        "raw": statistics.median(raw),
        "results": results,
        "raw_count": count,
    }


# ---- report ----------------------------------------------------------------------------------


def report_round_trip(label: str, figures: dict, clients: int, per_client: int) -> bool:
    total = clients * per_client
    print(f"\n[{label}] approval round trip (request production + reviewer approve), "
          f"{clients} clients x {per_client}")  # fmt: skip
    ok = True
    medians = {}
    for name, (latencies, errors, wall) in (("mlplat", figures["ours"]), ("raw", figures["raw"])):
        p50 = percentile(latencies, 50) * 1000 if latencies else float("nan")
        p99 = percentile(latencies, 99) * 1000 if latencies else float("nan")
        medians[name] = (p50, len(latencies) / wall)
        title = "mlplat governance" if name == "mlplat" else "raw SQLAlchemy   "
        print(f"  {title}  p50 {p50:8.2f} ms   p99 {p99:8.2f} ms   "
              f"throughput {len(latencies) / wall:8.1f} round trips/s   "
              f"ok {len(latencies)}/{total}   errors {len(errors)}")  # fmt: skip
        for message in sorted(set(errors))[:5]:
            print(f"      error: {message} (x{errors.count(message)})")
        ok = ok and not errors and len(latencies) == total
    ratio_p50 = medians["mlplat"][0] / medians["raw"][0]
    ratio_tput = medians["raw"][1] / medians["mlplat"][1]
    print(f"  ratio mlplat/raw: p50 latency {ratio_p50:.2f}x, time per round trip "
          f"(1/throughput) {ratio_tput:.2f}x")  # fmt: skip
    verified = figures["verify"]
    why = "" if verified.ok else f": {verified.reason}"
    print(f"  audit chain afterwards: verify ok={verified.ok} events={verified.events} "
          f"({figures['verify_seconds'] * 1000:.0f} ms){why}")  # fmt: skip
    return ok and verified.ok


def report_verify(label: str, figures: dict, total: int, repeats: int) -> bool:
    print(f"\n[{label}] audit verify, {total:,} events (median of {repeats})")
    print(f"  fill ({total:,} events, append + chained bulk insert)  {figures['fill']:8.2f} s")
    print(f"  mlplat verify(store)                          {figures['ours']:8.3f} s   "
          f"{total / figures['ours']:10,.0f} events/s")  # fmt: skip
    print(f"  raw read (yield_per) + sha256 of row JSON     {figures['raw']:8.3f} s   "
          f"{total / figures['raw']:10,.0f} events/s")  # fmt: skip
    print(f"  ratio mlplat/raw: {figures['ours'] / figures['raw']:.2f}x")
    results = figures["results"]
    ok = all(r.ok and r.events == total for r in results) and figures["raw_count"] == total
    print(f"  verify ok={all(r.ok for r in results)} events={results[-1].events} "
          f"(raw pass read {figures['raw_count']})")  # fmt: skip
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--round-trips", type=int, default=25, help="per client")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="mlplat-bench-gov-"))
    reset_settings(MlplatSettings(home=str(tmp / "home")))  # default policy, no config file
    server = None
    ok = True
    try:
        targets = [("SQLite", lambda name: f"sqlite:///{tmp / (name + '.db')}")]
        if find_pg_bin() is None:
            print("PostgreSQL is not installed: skipping its figures (scripts/ensure-postgres.sh)")
        else:
            server = PostgresServer(tmp / "postgres").start()
            targets.append(("PostgreSQL", lambda name: server.create_database(name)))
        print(f"approval round trips: {args.clients} clients x {args.round_trips}; "
              f"audit verify: {args.events:,} events")  # fmt: skip
        for label, new_db in targets:
            started = time.perf_counter()
            figures = bench_round_trip(new_db("roundtrip"), args.clients, args.round_trips)
            ok &= report_round_trip(label, figures, args.clients, args.round_trips)
            figures = bench_verify(new_db("verify"), args.events, args.repeats)
            ok &= report_verify(label, figures, args.events, args.repeats)
            print(f"  ({label} took {time.perf_counter() - started:.0f} s)")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("\nOK: no errors, every audit chain verified" if ok else "\nFAILED (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
