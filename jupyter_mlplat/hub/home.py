"""What a user's working directory gets before their server starts.

The example notebooks the user does not have yet (an edited or deleted example is never
overwritten or brought back), a JupyterLab setting that answers "no" to the news question
of a first visit and, when users have OS accounts of their own, the kernel config that
loads the %mlplat magics and a copy of the platform's feature repo.

When users have their own accounts this runs *as the user* (``python -m
jupyter_mlplat.hub.home HOME ...``, the feature repo as a tar stream on stdin, read by the
hub from the platform's private folder): root never writes into a folder the user controls,
where a planted symlink could send it anywhere. Only the standard library is imported.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

# JupyterLab 4 asks on first open whether to fetch Jupyter news, unless this user setting
# says so (`LabApp.news_url = None` only empties the feed: the question is still asked).
LAB_NOTIFICATION_SETTINGS = Path(
    ".jupyter", "lab", "user-settings", "@jupyterlab", "apputils-extension",
    "notification.jupyterlab-settings",
)  # fmt: skip
EXAMPLES_RECORD = Path(".mlplat", "examples-copied.json")
KERNEL_CONFIG_FILE = Path(".ipython", "profile_default", "ipython_kernel_config.py")
KERNEL_CONFIG = """\
# Written by jupyter-mlplat: every kernel of the embedded Lab loads the %mlplat magics.
c.InteractiveShellApp.extensions = ["jupyter_mlplat"]
"""
FEATURE_REPO_DIR = "feature_repo"


def write_new(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` only if nothing is there (also not a racing writer)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        return False
    return True


def copy_examples(source: Path, home: Path) -> list[str]:
    """Copy the files of ``source`` missing from ``home``; a file copied once is recorded
    in ``home/.mlplat/examples-copied.json`` and not brought back if the user deletes it."""
    if not source.is_dir():
        return []
    record = home / EXAMPLES_RECORD
    try:
        done = set(json.loads(record.read_text()))
    except (OSError, ValueError, TypeError):
        done = set()
    copied = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if not path.is_file() or any(
            part.startswith(".") or part == "__pycache__" for part in relative.parts
        ):
            continue
        name = relative.as_posix()
        target = home / relative
        if name in done or target.exists():
            done.add(name)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(path, "rb") as src, open(target, "xb") as dst:
                shutil.copyfileobj(src, dst)
        except FileExistsError:
            pass
        else:
            copied.append(name)
        done.add(name)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(sorted(done), indent=1) + "\n")
    return copied


def pack_repo(repo: Path) -> bytes:
    """The feature repo as an uncompressed tar (entries relative to the repo)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(repo.rglob("*")):
            if path.is_file() and not path.is_symlink() and "__pycache__" not in path.parts:
                tar.add(path, arcname=path.relative_to(repo).as_posix(), recursive=False)
    return buffer.getvalue()


def unpack_repo(data: bytes, target: Path) -> bool:
    """Unpack a :func:`pack_repo` tar as ``target`` unless it exists; True if unpacked."""
    if target.exists() or target.is_symlink():
        return False
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
            for member in tar.getmembers():
                parts = Path(member.name).parts
                if not member.isfile() or member.name.startswith("/") or ".." in parts:
                    continue  # regular files inside the repo only
                destination = staging / member.name
                destination.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(destination, "xb") as dst:
                    shutil.copyfileobj(src, dst)
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return True


def prepare(
    home: Path, examples_dir: str = "", kernel_config: bool = False, repo_tar: bytes = b""
) -> list[str]:
    """Fill ``home`` as the module docstring says; the example files copied this time."""
    home.mkdir(parents=True, exist_ok=True)
    write_new(home / LAB_NOTIFICATION_SETTINGS, json.dumps({"fetchNews": "false"}, indent=2) + "\n")
    if kernel_config:
        write_new(home / KERNEL_CONFIG_FILE, KERNEL_CONFIG)
    if repo_tar:
        unpack_repo(repo_tar, home / FEATURE_REPO_DIR)
    return copy_examples(Path(examples_dir), home) if examples_dir else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jupyter_mlplat.hub.home")
    parser.add_argument("home", type=Path)
    parser.add_argument("--examples", default="", help="folder of example notebooks")
    parser.add_argument("--kernel-config", action="store_true", help="add the kernel config")
    parser.add_argument("--repo-on-stdin", action="store_true", help="feature repo tar on stdin")
    args = parser.parse_args(argv)
    repo_tar = sys.stdin.buffer.read() if args.repo_on_stdin else b""
    copied = prepare(args.home, args.examples, args.kernel_config, repo_tar)
    print(json.dumps(copied))
    return 0


if __name__ == "__main__":
    sys.exit(main())
