"""What anchors the audit chain outside the database: a secret key and a head checkpoint.

* The **key** (a file the platform owns, 0600) keys every event hash with HMAC-SHA256, so
  somebody who can write the database but not read the key cannot recompute a valid chain.
* The **checkpoint** (a file the platform owns) records the ``(seq, hash)`` of the newest
  committed event; ``audit verify`` compares the chain's end with it, which detects events cut
  off the end (a shorter chain is otherwise still valid) and a rewritten head.

Both live next to the platform's data (``MlplatSettings.audit_key_file`` /
``audit_checkpoint_file``); on Kubernetes the key is a mounted Secret.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from ..errors import MlplatError

KEY_BYTES = 32


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str


def read_or_create_key(path: Path) -> bytes:
    """The key in ``path``, created (random, owner-only) when the file does not exist yet."""
    path = Path(path)
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    except ValueError as exc:
        raise MlplatError(
            f"The audit key file {path} is not a hex key; restore it from a backup (without it "
            "the audit log cannot be verified)."
        ) from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return read_or_create_key(path)
    with os.fdopen(fd, "w", encoding="ascii") as stream:
        stream.write(key.hex() + "\n")
    return key


def read_head(path: Path | None) -> Head | None:
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return Head(int(data["seq"]), str(data["hash"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return Head(-1, "unreadable")


@contextlib.contextmanager
def _locked(path: Path):
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def advance_head(path: Path, head: Head) -> None:
    """Record ``head`` unless the checkpoint already names a later event (atomic replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        current = read_head(path)
        if current is not None and current.seq >= head.seq:
            return
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump({"seq": head.seq, "hash": head.hash}, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
