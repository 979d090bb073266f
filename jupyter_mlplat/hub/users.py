"""Embedded-mode users: a YAML file of users, their groups and hashed passwords.

File format (``$MLPLAT_HOME/hub/users.yaml``, mode 0600)::

    users:
      alice:
        groups: [team-churn]
        password_hash: pbkdf2_sha256$600000$<salt hex>$<hash hex>

``mlplat hub add-user`` / ``remove-user`` / ``set-password`` (:func:`add_user`,
:func:`remove_user`, :func:`set_password`, :func:`set_groups`) change it; every change
rewrites the file atomically (a 0600 temp file, then ``os.replace``) under a lock, and
the hub re-reads it without a restart. Plain passwords are never stored, except the
generated demo passwords which `make up` prints (``demo-passwords.txt`` next to it; a
changed or removed user's line is dropped from it).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import ConflictError, NotFoundError, UsageError
from .secrets import write_private

_ITERATIONS = 600_000
_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}\Z")
_GROUP = re.compile(r"[a-z][a-z0-9_.-]{0,63}\Z")
# Names a new user may get (JupyterHub lowercases names; these also make safe paths).
NEW_NAME = re.compile(r"[a-z0-9_-]{1,32}\Z")
MIN_PASSWORD = 8
DEMO_PASSWORDS_FILE = "demo-passwords.txt"

# The demo: two teams and a reviewer, as the acceptance walk-through needs.
DEMO_USERS = {
    "alice": ["team-churn"],
    "bob": ["team-fraud"],
    "rita": ["team-churn", "mlplat-reviewers"],
    "ops": ["mlplat-admins"],
}


def hash_password(password: str, *, iterations: int = _ITERATIONS) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, iterations, salt, expected = encoded.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        digest = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), bytes.fromhex(salt), int(iterations)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest.hex(), expected)


@dataclass(frozen=True)
class UserRecord:
    name: str
    groups: tuple[str, ...]
    password_hash: str


def load_users(path: Path) -> dict[str, UserRecord]:
    """Users from the YAML file; a malformed file is a one-sentence UsageError naming it."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(
            f"Could not read the users file {path} ({exc}); fix or delete it."
        ) from exc
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, dict):
        raise UsageError(f"{path} needs a top-level 'users:' mapping of name to settings.")
    records = {}
    for name, entry in users.items():
        entry = entry or {}
        groups = entry.get("groups", [])
        if not isinstance(name, str) or not _NAME.match(name):
            raise UsageError(f"{path}: user name {name!r} must be lowercase letters, digits, ._-.")
        if not isinstance(groups, list) or not all(
            isinstance(g, str) and _GROUP.match(g) for g in groups
        ):
            raise UsageError(f"{path}: user {name!r} needs 'groups' as a list of group names.")
        password_hash = entry.get("password_hash", "")
        if not isinstance(password_hash, str) or not password_hash.startswith("pbkdf2_sha256$"):
            raise UsageError(
                f"{path}: user {name!r} has no pbkdf2_sha256 password_hash; set one with "
                "`mlplat hub set-password`."
            )
        records[name] = UserRecord(name, tuple(groups), password_hash)
    return records


def save_users(path: Path, records: dict[str, UserRecord]) -> None:
    body = {
        "users": {
            r.name: {"groups": list(r.groups), "password_hash": r.password_hash}
            for r in records.values()
        }
    }
    write_private(path, yaml.safe_dump(body, sort_keys=True))


def ensure_demo_users(users_file: Path, passwords_file: Path) -> dict[str, str]:
    """Create the demo users with generated passwords when no users file exists.

    Returns the demo logins (name → password) to print; they are kept in
    ``passwords_file`` (0600) so a later `make up` can print them again.
    """
    if users_file.exists():
        if passwords_file.exists():
            lines = passwords_file.read_text().splitlines()
            return dict(line.split(":", 1) for line in lines if ":" in line)
        return {}
    passwords = {name: secrets.token_urlsafe(9) for name in DEMO_USERS}
    records = {
        name: UserRecord(name, tuple(groups), hash_password(passwords[name]))
        for name, groups in DEMO_USERS.items()
    }
    save_users(users_file, records)
    write_private(passwords_file, "".join(f"{n}:{p}\n" for n, p in passwords.items()))
    return passwords


# ---- changes (the `mlplat hub ...` commands) ----------------------------------------


@contextlib.contextmanager
def _locked(users_file: Path) -> Iterator[dict[str, UserRecord]]:
    """The users of ``users_file`` (empty when it does not exist yet), to change in place;
    written back atomically when the block ends without an exception."""
    users_file = Path(users_file)
    users_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(users_file.with_name(users_file.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except ImportError:  # not POSIX: no lock, the write is still atomic
            pass
        records = load_users(users_file) if users_file.exists() else {}
        yield records
        save_users(users_file, records)
    finally:
        os.close(fd)


def _check_groups(groups: Iterable[str]) -> tuple[str, ...]:
    if isinstance(groups, str):
        groups = [groups]
    result = []
    for group in groups:
        if not isinstance(group, str) or not _GROUP.match(group):
            raise UsageError(
                f"Group {group!r} must start with a lowercase letter followed by lowercase "
                "letters, digits, '.', '_' or '-' (e.g. team-churn)."
            )
        if group not in result:
            result.append(group)
    return tuple(result)


def _check_password(password: str | None) -> str:
    if password is None:
        return secrets.token_urlsafe(12)
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise UsageError(f"A password needs at least {MIN_PASSWORD} characters.")
    return password


def _existing(records: dict[str, UserRecord], users_file: Path, name: str) -> UserRecord:
    if name not in records:
        raise NotFoundError(
            f"No user {name!r} in {users_file}; add one with `mlplat hub add-user {name}`."
        )
    return records[name]


def _forget_demo_password(users_file: Path, name: str) -> None:
    """Drop ``name``'s line from the demo passwords `make up` prints (it is no longer true)."""
    path = Path(users_file).with_name(DEMO_PASSWORDS_FILE)
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return
    kept = [line for line in lines if line.split(":", 1)[0] != name]
    if kept != lines:
        write_private(path, "".join(f"{line}\n" for line in kept))


def add_user(
    users_file: Path, name: str, groups: Iterable[str] = (), password: str | None = None
) -> str:
    """Add ``name`` with ``groups`` (e.g. ``["team-churn"]``); the password (generated when
    ``None``). A bad name, group or password is a UsageError, an existing user a ConflictError."""
    if not isinstance(name, str) or not NEW_NAME.match(name):
        raise UsageError(f"User name {name!r} must be 1-32 lowercase letters, digits, '-' or '_'.")
    checked_groups = _check_groups(groups)
    password = _check_password(password)
    hashed = hash_password(password)  # slow on purpose: outside the lock
    with _locked(Path(users_file)) as records:
        if name in records:
            raise ConflictError(
                f"User {name!r} already exists in {users_file}; use `mlplat hub set-password "
                f"{name}` to change the password."
            )
        records[name] = UserRecord(name, checked_groups, hashed)
    return password


def remove_user(users_file: Path, name: str) -> None:
    """Remove ``name`` (NotFoundError if unknown); a running server is not stopped."""
    with _locked(Path(users_file)) as records:
        _existing(records, users_file, name)
        del records[name]
    _forget_demo_password(Path(users_file), name)


def set_password(users_file: Path, name: str, password: str | None = None) -> str:
    """Give ``name`` a new password (generated when ``None``); the password."""
    password = _check_password(password)
    hashed = hash_password(password)
    with _locked(Path(users_file)) as records:
        record = _existing(records, users_file, name)
        records[name] = UserRecord(name, record.groups, hashed)
    _forget_demo_password(Path(users_file), name)
    return password


def set_groups(users_file: Path, name: str, groups: Iterable[str]) -> tuple[str, ...]:
    """Replace ``name``'s groups (the hub applies them at the user's next login)."""
    checked_groups = _check_groups(groups)
    with _locked(Path(users_file)) as records:
        record = _existing(records, users_file, name)
        records[name] = UserRecord(name, checked_groups, record.password_hash)
    return checked_groups
