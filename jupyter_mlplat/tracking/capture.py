"""What a run records about where it came from: notebook, code, environment."""

from __future__ import annotations

import functools
import hashlib
import subprocess
import sys
from pathlib import Path

from ..settings import MlplatSettings

# The code a run was trained with (see code_version); read by governance's lineage check.
CODE_VERSION_TAG = "mlplat.code_version"


def notebook_info(settings: MlplatSettings) -> dict[str, str]:
    """Path and SHA-256 of the notebook's saved content, when the path is known."""
    path = settings.notebook_path
    if not path:
        return {}
    info = {"mlplat.notebook.path": path}
    file = Path(path).expanduser()
    if file.is_file():
        info["mlplat.notebook.sha256"] = hashlib.sha256(file.read_bytes()).hexdigest()
    return info


def git_info(start: Path) -> dict[str, str]:
    """The commit (and whether the tree is dirty) of the repository holding ``start``."""
    folder = start if start.is_dir() else start.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=5,
        )
        if commit.returncode != 0:
            return {}
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    return {
        "mlflow.source.git.commit": commit.stdout.strip(),
        "mlplat.git.dirty": str(bool(dirty.stdout.strip())).lower(),
    }


@functools.lru_cache(maxsize=1)
def packages_digest() -> tuple[str, int]:
    """SHA-256 over the sorted ``name==version`` of installed distributions, and their count."""
    from importlib import metadata

    pins = sorted(
        {
            f"{(dist.metadata['Name'] or '').lower()}=={dist.version}"
            for dist in metadata.distributions()
            if dist.metadata["Name"]
        }
    )
    return hashlib.sha256("\n".join(pins).encode()).hexdigest(), len(pins)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_file() -> Path | None:
    """The script being run (``python train.py``), or None (notebooks, ``-c``, REPLs).

    IPython kernels replace ``__main__`` with the user namespace, which has no file.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path:
        return None
    file = Path(path).expanduser()
    return file if file.is_file() else None


def code_version(git: dict[str, str], notebook: dict[str, str]) -> str:
    """What identifies the code of a run: the git commit when it lives in a repository,
    else ``notebook-sha256:<hash>`` of the saved notebook, else ``source-sha256:<hash>``
    of the script being run; empty when none is known."""
    commit = git.get("mlflow.source.git.commit")
    if commit:
        return commit
    notebook_hash = notebook.get("mlplat.notebook.sha256")
    if notebook_hash:
        return f"notebook-sha256:{notebook_hash}"
    script = source_file()
    if script is not None:
        try:
            return f"source-sha256:{_file_sha256(script)}"
        except OSError:
            return ""
    return ""


def run_context_tags(settings: MlplatSettings, user: str, team: str) -> dict[str, str]:
    """All provenance tags a new run gets."""
    digest, count = packages_digest()
    tags = {
        "mlflow.user": user,
        "mlplat.user": user,
        "mlplat.team": team,
        "mlplat.python_version": settings.python_version,
        "mlplat.packages.sha256": digest,
        "mlplat.packages.count": str(count),
    }
    notebook = notebook_info(settings)
    tags.update(notebook)
    if notebook.get("mlplat.notebook.path"):
        tags["mlflow.source.name"] = notebook["mlplat.notebook.path"]
        start = Path(notebook["mlplat.notebook.path"]).expanduser()
    else:
        start = Path.cwd()
    git = git_info(start)
    tags.update(git)
    version = code_version(git, notebook)
    if version:
        tags[CODE_VERSION_TAG] = version
    return tags
