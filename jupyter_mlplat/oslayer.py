"""OS accounts and file modes the platform checks for the accounts it runs users' code as
(single-user servers in the hub, model servers in serving)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

# What useradd accepts on every distribution (Debian's default NAME_REGEX), within 32 chars.
SAFE_ACCOUNT = re.compile(r"[a-z_][a-z0-9_-]{0,30}")


def unreachable_part(path: str | Path, uid: int, gid: int) -> str | None:
    """The first folder (or the file) on the way to ``path`` that ``uid`` cannot
    traverse (or run), judged from the mode bits; None if the way is open."""
    real = Path(os.path.realpath(path))
    for part in [*reversed(real.parents), real]:
        try:
            info = os.stat(part)
        except OSError:
            return str(part)
        if info.st_uid == uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid == gid:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            return str(part)
    return None


def traversable_dirs(path: str | Path) -> Path:
    """``path`` and its missing parents made 0711 (others may pass, not list): the folders
    the platform creates on the way to what users' accounts must reach (a umask of 077, as
    the hub sets, would make them 0700). Existing folders are left as they are."""
    path = Path(path)
    missing = []
    for part in [path, *path.parents]:
        if part.exists():
            break
        missing.append(part)
    for part in reversed(missing):
        try:
            part.mkdir(mode=0o711)
        except FileExistsError:
            continue
        os.chmod(part, 0o711)
    return path
