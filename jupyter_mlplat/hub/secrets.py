"""Generated secrets kept under the data directory, readable by their owner only."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def ensure_private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` created with mode 0600 (never briefly world-readable)."""
    ensure_private_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def read_or_create_secret(path: Path, nbytes: int = 32) -> str:
    """The hex secret stored at ``path``, generated on first use.

    An existing file with permissions wider than 0600 is tightened, not trusted blindly.
    """
    if path.exists():
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        value = path.read_text().strip()
        if value:
            return value
    value = secrets.token_hex(nbytes)
    write_private(path, value + "\n")
    return value
