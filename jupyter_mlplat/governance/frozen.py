"""Frozen copies of requested model artifacts: platform-owned, content-addressed (DESIGN §5).

When a version is requested for approval the platform downloads its model artifacts
(as the platform, see :func:`.registry.read_version`) into a staging folder, then
:func:`freeze` moves that folder to ``<frozen_artifacts_dir>/sha256/<digest>/`` in one
rename. The digest is SHA-256 over a canonical manifest: the sorted list of
``[relative path, sha256 of the file]`` as compact JSON (see :func:`manifest_digest`).
Folders are 0700 and files 0600, owned by the platform; decisions record the digest, and
:func:`verify` re-computes a copy against the digest it was recorded under, so a copy
changed after the fact (or a run's artifacts replaced in MLflow) changes nothing approved.

Layout of one copy::

    sha256/<digest>/manifest.json   the manifest the digest was computed over
    sha256/<digest>/model/...       the model's files, as MLflow stored them
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConflictError, UsageError
from ..settings import MlplatSettings

DIGEST = re.compile(r"[0-9a-f]{64}\Z")
MANIFEST = "manifest.json"
MODEL_DIR = "model"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FrozenCopy:
    """One frozen copy: its digest, folder, number of files and total bytes."""

    digest: str
    path: Path
    files: int
    bytes: int

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_DIR


@dataclass(frozen=True)
class FrozenCheck:
    """The outcome of :func:`verify`: ``ok``, and when not, one sentence saying why."""

    digest: str
    ok: bool
    reason: str = ""
    path: Path | None = None


def root(settings: MlplatSettings) -> Path:
    return Path(settings.frozen_artifacts_dir)


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_of(folder: Path) -> list[list[str]]:
    """``[[relative path, sha256], ...]`` of every file under ``folder``, sorted by path.

    Symbolic links and special files are refused: a frozen copy holds plain files only."""
    entries = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise UsageError(
                f"The model artifacts hold {path.relative_to(folder).as_posix()!r}, which is not "
                "a plain file; log the model again with plain files only."
            )
        if path.is_file():
            entries.append([path.relative_to(folder).as_posix(), _file_digest(path)])
    return sorted(entries)


def manifest_digest(manifest: list[list[str]]) -> str:
    """SHA-256 of the canonical manifest text (compact JSON, sorted entries)."""
    text = json.dumps(sorted(manifest), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def folder_digest(folder: Path) -> str:
    """The digest a frozen copy of ``folder`` (a model's files) would have."""
    return manifest_digest(manifest_of(folder))


def path_of(settings: MlplatSettings, digest: str) -> Path:
    if not isinstance(digest, str) or not DIGEST.match(digest):
        raise UsageError(f"{digest!r} is not a SHA-256 digest (64 lowercase hex characters).")
    return root(settings) / "sha256" / digest


@contextlib.contextmanager
def staging(settings: MlplatSettings) -> Iterator[Path]:
    """A new private folder to download a model into; removed on exit unless
    :func:`freeze` moved it into the store of frozen copies."""
    tmp_root = _private_dir(root(settings) / "tmp")
    _private_dir(root(settings) / "sha256")
    stage = Path(tempfile.mkdtemp(prefix="stage-", dir=tmp_root))  # 0700 by mkdtemp
    try:
        (stage / MODEL_DIR).mkdir(mode=0o700)
        yield stage / MODEL_DIR
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _lock_down(folder: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(folder):
        os.chmod(dirpath, 0o700)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o600)


def freeze(settings: MlplatSettings, model_dir: Path) -> FrozenCopy:
    """Move ``model_dir`` (a folder from :func:`staging`) to its content address.

    When a copy with the same digest is already there and intact, it is kept and the
    staged files are dropped; a damaged one is replaced by the new copy."""
    model_dir = Path(model_dir)
    manifest = manifest_of(model_dir)
    if not manifest:
        raise UsageError(
            "The model has no files to freeze; log the model again (autolog or "
            "mlflow.<flavor>.log_model)."
        )
    digest = manifest_digest(manifest)
    stage = model_dir.parent
    (stage / MANIFEST).write_text(
        json.dumps({"digest": digest, "files": manifest}, indent=1, sort_keys=True) + "\n"
    )
    _lock_down(stage)
    final = path_of(settings, digest)
    size = sum((model_dir / rel).stat().st_size for rel, _ in manifest)
    if final.exists():
        if verify(settings, digest).ok:
            return FrozenCopy(digest, final, len(manifest), size)
        # A damaged copy: move it aside (kept for inspection) and put the new one in place.
        aside = final.with_name(f"{digest}.damaged-{os.getpid()}-{os.urandom(4).hex()}")
        os.rename(final, aside)
    try:
        os.rename(stage, final)  # atomic: a reader sees no copy or a whole one
    except OSError:
        if not (final.exists() and verify(settings, digest).ok):  # a concurrent freeze won
            raise
    return FrozenCopy(digest, final, len(manifest), size)


def verify(settings: MlplatSettings, digest: str) -> FrozenCheck:
    """Re-compute the frozen copy of ``digest`` and say whether it is intact.

    Intact means: the folder exists, its ``model/`` files hash to exactly the recorded
    ``digest`` (no file changed, added or removed), and its manifest says the same."""
    final = path_of(settings, digest)
    short = digest[:12]
    if not (final / MODEL_DIR).is_dir():
        return FrozenCheck(
            digest, False, f"The frozen copy {short}… is missing from {final.parent}.", None
        )
    try:
        actual = folder_digest(final / MODEL_DIR)
        recorded = json.loads((final / MANIFEST).read_text()).get("digest")
    except (OSError, ValueError, UsageError, AttributeError) as exc:
        return FrozenCheck(digest, False, f"The frozen copy {short}… is unreadable ({exc}).", final)
    if actual != digest:
        return FrozenCheck(
            digest,
            False,
            f"The frozen copy {short}… was changed: its files now hash to {actual[:12]}…",
            final,
        )
    if recorded != digest:
        return FrozenCheck(
            digest, False, f"The manifest of the frozen copy {short}… was changed.", final
        )
    return FrozenCheck(digest, True, "", final)


def require_intact(settings: MlplatSettings, digest: str, request_id: int | str) -> Path:
    """The folder of the frozen copy of ``digest`` when it is intact; a ConflictError
    naming what changed otherwise (nothing can be approved or served from it)."""
    check = verify(settings, digest)
    if not check.ok:
        raise ConflictError(
            f"{check.reason.rstrip('.')}, so approval request #{request_id} cannot be decided "
            "on it; request approval again so the platform copies the version's files anew, "
            "and tell a platform admin."
        )
    return check.path
