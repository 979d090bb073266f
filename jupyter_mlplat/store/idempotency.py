"""Idempotency keys: the first answer to a mutating request, replayed for a retry.

A client sends ``Idempotency-Key: <uuid>`` with every mutating request and the same
key when it retries. :func:`begin` records the key as in flight (or returns the
answer recorded for it); :func:`finish` stores the answer; :func:`abandon` forgets a
key whose request did nothing (the database was down, the service failed), so the
retry acts. Keys are per caller: another user's key never matches.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from ..errors import ConflictError, UsageError
from .db import Store
from .models import IdempotencyKey, utcnow

MAX_KEY_LENGTH = 100


class InFlight(ConflictError):
    """The first request with this key has not finished yet (retry shortly)."""

    retry_after = 1


def fingerprint(endpoint: str, payload: bytes) -> str:
    return hashlib.sha256(endpoint.encode() + b"\0" + payload).hexdigest()


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise UsageError(
            f"The Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} printable ASCII "
            "characters; send a fresh UUID per request."
        )
    return key


def begin(
    store: Store, key: str, caller: str, endpoint: str, print_: str, ttl_seconds: float
) -> tuple[int, str] | None:
    """``None`` when this request should act (the key is now in flight), else the
    recorded ``(status, body)`` of the first request with this key."""
    now = utcnow()
    for _ in range(2):
        try:
            with store.transaction() as session:
                row = session.get(IdempotencyKey, (key, caller))
                if row is not None and row.created_at < now - timedelta(seconds=ttl_seconds):
                    session.delete(row)
                    session.flush()
                    row = None
                if row is None:
                    session.add(
                        IdempotencyKey(
                            key=key,
                            caller=caller,
                            endpoint=endpoint,
                            fingerprint=print_,
                            created_at=now,
                        )  # fmt: skip
                    )
                    session.flush()
                    return None
                if row.endpoint != endpoint or row.fingerprint != print_:
                    raise ConflictError(
                        "This Idempotency-Key was already used for a different request; "
                        "send a fresh key for each new request."
                    )
                if row.status is None:
                    raise InFlight(
                        "The first request with this Idempotency-Key is still running; "
                        "retry in a moment."
                    )
                return row.status, row.body or "{}"
        except IntegrityError:
            continue  # a concurrent request inserted the key first: read it
    raise InFlight("A request with this Idempotency-Key is running; retry in a moment.")


def finish(store: Store, key: str, caller: str, status: int, body: str) -> None:
    with store.transaction() as session:
        row = session.get(IdempotencyKey, (key, caller))
        if row is not None:
            row.status, row.body = status, body


def abandon(store: Store, key: str, caller: str) -> None:
    with store.transaction() as session:
        session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.key == key, IdempotencyKey.caller == caller)
        )


def prune(store: Store, ttl_seconds: float) -> int:
    """Forget keys older than the TTL; returns how many."""
    with store.transaction() as session:
        result = session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.created_at < utcnow() - timedelta(seconds=ttl_seconds)
            )
        )
        return result.rowcount or 0
