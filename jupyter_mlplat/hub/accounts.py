"""OS accounts of hub users when the embedded hub runs as root (one account per user).

A hub user ``alice`` runs as ``jupyter-alice`` (the prefix is a spawner knob), created on
first spawn with ``useradd``: no login shell, no home made by useradd (the spawner makes
it, 0700). The prefix keeps a hub user named ``root`` from ever being OS root.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from pathlib import Path

from ..errors import MlplatError, UsageError
from ..oslayer import SAFE_ACCOUNT, unreachable_part  # noqa: F401 (re-exported)

NO_LOGIN = next(
    (p for p in ("/usr/sbin/nologin", "/sbin/nologin") if os.path.exists(p)), "/bin/false"
)


def account_name(prefix: str, username: str) -> str:
    """``prefix + username`` if that is a safe OS account name, else UsageError."""
    name = f"{prefix}{username}"
    if not SAFE_ACCOUNT.fullmatch(name):
        raise UsageError(
            f"The hub user {username!r} cannot have an OS account: {name!r} is not a safe "
            "account name (lowercase letters, digits, '_' and '-', starting with a letter "
            "or '_', at most 31 characters)."
        )
    return name


def ensure_account(name: str, home: Path) -> pwd.struct_passwd:
    """The account ``name``, created with ``useradd`` if missing; never uid 0."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        command = [
            "useradd", "--no-create-home", "--home-dir", str(home), "--shell", NO_LOGIN,
            "--user-group", "--comment", "jupyter-mlplat hub user", name,
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 and not _exists(name):  # a concurrent spawn made it
            raise MlplatError(
                f"useradd could not create the OS account {name!r}: "
                f"{(result.stderr or result.stdout).strip()}"
            ) from None
        entry = pwd.getpwnam(name)
    if entry.pw_uid == 0:
        raise MlplatError(f"The OS account {name!r} is root; a hub user never runs as root.")
    return entry


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def ensure_home(home: Path, entry: pwd.struct_passwd) -> None:
    """Create ``home`` (0700, owned by the account), or check the one there is the account's."""
    if not home.parent.exists():
        home.parent.mkdir(parents=True)
        os.chmod(home.parent, 0o711)  # the hub's umask is 077; owners must get through
    try:
        home.mkdir(mode=0o700)
    except FileExistsError:
        pass
    else:
        os.chown(home, entry.pw_uid, entry.pw_gid)
        os.chmod(home, 0o700)
        return
    info = os.lstat(home)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != entry.pw_uid:
        # Root writes nothing into a home the user does not own (or a link to elsewhere).
        raise MlplatError(
            f"{home} exists but is not a folder owned by {entry.pw_name}; "
            "move it away or give it to that account."
        )


def isolation_notice(isolating: bool, account_prefix: str = "jupyter-") -> str:
    """What ``mlplat up`` and the hub log say about who runs users' code."""
    if isolating:
        return (
            f"each user's server runs as an OS account of its own ({account_prefix}<name>, "
            "made on first login); the platform's data dir is readable by root only."
        )
    account = pwd.getpwuid(os.getuid()).pw_name
    return (
        f"every user's server runs as this one OS account ({account}), so every user can "
        "read every other user's files and the platform's secrets and databases: this "
        "platform is for one person. Run it as root to give each user an OS account."
    )


def shared_account_announcement() -> str:
    """The banner of the hub's pages when users share the hub's OS account."""
    return (
        "Single-person platform: every user's notebooks run as the same OS account, so "
        "they can read each other's files and the platform's secrets. Do not share it."
    )
