"""Embedded-mode users: a YAML file of users, their groups and hashed passwords.

File format (``$MLPLAT_HOME/hub/users.yaml``, mode 0600)::

    users:
      alice:
        groups: [team-churn]
        password_hash: pbkdf2_sha256$600000$<salt hex>$<hash hex>

``mlplat hub add-user`` (or :func:`set_password`) writes hashes; plain passwords are
never stored, except the generated demo passwords which `make up` prints.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import UsageError
from .secrets import write_private

_ITERATIONS = 600_000
_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}\Z")
_GROUP = re.compile(r"[a-z][a-z0-9_.-]{0,63}\Z")

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
