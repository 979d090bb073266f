"""The notebook of a job: which file it is, the snapshot that runs, its parameters, its outcome.

Pure functions and one tiny dataclass; limits come in as arguments (the caller passes its
settings). The platform may act with more rights than the notebook's owner, so a path a user
names is checked before anything is opened:

* :func:`resolve_notebook` refuses, with one sentence each: a NUL byte or another control
  character; a backslash (a separator on Windows, a plain character here: ambiguous); an
  absolute path; any ``..`` segment (even one that would stay inside the root); a ``%``-escape
  that decodes (once or repeatedly: ``%2e``, ``%252e``) to ``/``, ``\\``, a NUL or control
  character, or to a whole ``.``/``..`` segment, and a segment still ``%``-encoded after four
  decodings; a name not ending in ``.ipynb``; a path whose real location (symlinks resolved
  anywhere in it) is outside the root; a missing file; a folder; anything but a regular
  file; content that is not an nbformat v4 notebook. A ``%`` that decodes to something
  harmless (``50%.ipynb``, ``a%20b.ipynb``) is an ordinary character: the file is looked up
  by its literal name, never by a decoded one.
* :func:`read_notebook` opens with ``O_NOFOLLOW`` (the final component is never a symlink)
  and reads a regular file only; given ``root``, every folder below the root is opened with
  ``O_NOFOLLOW`` too, so a folder swapped for a symlink after :func:`resolve_notebook`
  checked the path is refused instead of followed.

What runs is a *snapshot*: the notebook without outputs or execution counts, as canonical
JSON bytes, stored under its SHA-256 (:func:`snapshot_content`, :func:`store_snapshot`,
:func:`load_snapshot`).

Parameters: papermill writes ``name = value`` lines into an injected cell with the *name*
raw, so a name is code. :func:`check_parameters` lets through only names that the
notebook's ``parameters`` cell assigns (read with :mod:`ast`, never run) and values of the
type of their defaults, made of plain JSON values only.
"""

from __future__ import annotations

import ast
import copy
import errno
import hashlib
import json
import keyword
import math
import os
import re
import stat
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import nbformat

from ..errors import MlplatError, NotFoundError, TooLarge, UsageError

#: What :func:`resolve_notebook` reads at most to check a notebook when the caller passes no
#: limit of its own (callers pass their setting).
DEFAULT_MAX_NOTEBOOK_BYTES = 64 * 1024 * 1024
NOTEBOOK_SUFFIX = ".ipynb"
PARAMETERS_TAG = "parameters"
SNAPSHOT_SCHEME = "sha256"

_MAX_PATH_BYTES = 4096
_MAX_DECODINGS = 4
_MAX_DEPTH = 64
_EXCERPT_LINES = 5
_EXCERPT_CHARS = 500
_DIGEST = re.compile(r"[0-9a-f]{64}\Z")
_INT_TEXT = re.compile(r"[+-]?\d+\Z")
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_KINDS_BY_TYPE = {
    bool: "bool", int: "int", float: "float", str: "str",
    type(None): "None", list: "list", dict: "dict",
}  # fmt: skip
_ANNOTATION_KINDS = {"int", "float", "bool", "str", "list", "dict"}
_ACCEPTS_ANY = ("None", "any")


def _shown(text: object, limit: int = 120) -> str:
    """``text`` quoted for a message: repr (control characters escaped), cut to ``limit``."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------
# Paths


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def _check_segment_escapes(given: str, segment: str) -> None:
    """Refuse %-escapes of ``segment`` that decode to something other than plain text."""
    current = segment
    for _ in range(_MAX_DECODINGS):
        decoded = unquote(current)
        if decoded == current:
            return
        if "\0" in decoded or _has_control(decoded):
            what = "a NUL or control character"
        elif "/" in decoded or "\\" in decoded:
            what = "a path separator"
        elif decoded in (".", ".."):
            what = f"the segment {decoded!r}"
        else:
            current = decoded
            continue
        raise UsageError(
            f"The notebook path {_shown(given)} has %-escapes that decode to {what}; "
            "name the file by its plain path, without escapes of '/', '\\', '.' or '..'."
        )
    raise UsageError(
        f"The notebook path {_shown(given)} is %-encoded more than {_MAX_DECODINGS} times "
        "over; name the file by its plain path."
    )


def _check_path_text(given: object) -> list[str]:
    """The segments of ``given`` once its text passes every rule that needs no disk."""
    if not isinstance(given, str) or not given.strip():
        raise UsageError(
            "Name the notebook to run by its path relative to your root folder, "
            "like 'reports/daily.ipynb'."
        )
    if "\0" in given:
        raise UsageError(
            f"The notebook path {_shown(given)} contains a NUL byte; "
            "name the file by its plain path."
        )
    if _has_control(given):
        raise UsageError(
            f"The notebook path {_shown(given)} contains a control character; "
            "name the file by its plain path."
        )
    try:
        encoded = given.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(
            f"The notebook path {_shown(given)} is not valid UTF-8 text; "
            "name the file by its plain path."
        ) from None
    if len(encoded) > _MAX_PATH_BYTES:
        raise UsageError(
            f"The notebook path is {len(encoded)} bytes long, more than {_MAX_PATH_BYTES}; "
            "name a file with a shorter path."
        )
    if "\\" in given:
        raise UsageError(
            f"The notebook path {_shown(given)} contains a backslash; separate folders with '/'."
        )
    if given.startswith("/"):
        raise UsageError(
            f"The notebook path {_shown(given)} is absolute; give it relative to your "
            "root folder, like 'reports/daily.ipynb'."
        )
    segments = given.split("/")
    if ".." in segments:
        raise UsageError(
            f"The notebook path {_shown(given)} contains '..'; give the path from your "
            "root folder down, without '..'."
        )
    for segment in segments:
        if "%" in segment:
            _check_segment_escapes(given, segment)
    if not segments[-1].endswith(NOTEBOOK_SUFFIX) or segments[-1] == NOTEBOOK_SUFFIX:
        raise UsageError(
            f"{_shown(given)} is not a notebook: a notebook's name ends in '{NOTEBOOK_SUFFIX}'."
        )
    return segments


def _real_root(root: Path) -> Path:
    real = Path(os.path.realpath(root))
    if not real.is_dir():
        raise UsageError(f"The root folder {root} does not exist; create it or set another.")
    return real


def resolve_notebook(
    root: Path, given: str, *, max_bytes: int = DEFAULT_MAX_NOTEBOOK_BYTES
) -> Path:
    """The real path of the notebook ``given`` names relative to ``root`` (a server's root).

    Every rule of the module docstring is applied, those on the text first, then
    containment (``os.path.realpath`` of the candidate must be
    :meth:`~pathlib.Path.is_relative_to` the real root: a symlink anywhere in the path that
    leads outside is refused, one that stays inside is followed), then the file itself: it is
    read once (at most ``max_bytes``, else :class:`TooLarge`) to check it is an nbformat v4
    notebook. The returned path is resolved; read what runs with
    ``read_notebook(path, max_bytes, root=root)``.
    """
    _check_path_text(given)
    real_root = _real_root(Path(root))
    real = Path(os.path.realpath(real_root / given))
    if not real.is_relative_to(real_root):
        raise UsageError(
            f"The notebook path {_shown(given)} leads outside your root folder "
            "(through a symlink); name a notebook inside it."
        )
    read_notebook(real, max_bytes, root=real_root, shown=given)
    return real


# ---------------------------------------------------------------------------------------
# Reading


def _os_error(err: OSError, shown: str) -> UsageError:
    if err.errno in (errno.ENOENT, errno.ENOTDIR):
        return UsageError(f"There is no notebook at {_shown(shown)}; check the path.")
    if err.errno == errno.ELOOP:
        return UsageError(
            f"The notebook path {_shown(shown)} goes through a symlink that changed or loops; "
            "name the file by its real path."
        )
    if err.errno in (errno.EACCES, errno.EPERM):
        return UsageError(
            f"The notebook at {_shown(shown)} cannot be read (permission denied); "
            "make it readable or name another."
        )
    if err.errno == errno.ENAMETOOLONG:
        return UsageError(f"The notebook path {_shown(shown)} is too long; shorten it.")
    return UsageError(
        f"The notebook at {_shown(shown)} cannot be opened ({err.strerror}); name another."
    )


_FILE_FLAGS = (
    os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


def _open_file(path: Path, root: Path | None, shown: str) -> int:
    """An fd of ``path`` opened without following a symlink (below ``root``, none at all)."""
    if root is None:
        return os.open(path, _FILE_FLAGS)
    real_root = _real_root(Path(root))
    path = Path(path) if Path(path).is_absolute() else real_root / path
    for base in (real_root, Path(os.path.abspath(root))):  # resolved, or as the caller spelt it
        if path.is_relative_to(base):
            parts = path.relative_to(base).parts
            break
    else:
        raise UsageError(f"The notebook {_shown(shown)} is outside your root folder.")
    if not parts or ".." in parts:
        raise UsageError(f"{_shown(shown)} is not a notebook inside your root folder.")
    fd = os.open(real_root, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            try:
                below = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            except NotADirectoryError:  # Linux says so of a symlink opened O_NOFOLLOW
                if stat.S_ISLNK(os.lstat(part, dir_fd=fd).st_mode):
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), part) from None
                raise
            os.close(fd)
            fd = below
        return os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)


def _read_limited(fd: int, max_bytes: int, shown: str) -> bytes:
    info = os.fstat(fd)
    if stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{_shown(shown)} is a folder, not a notebook; name a notebook file.")
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{_shown(shown)} is not a regular file; name a notebook file.")

    def too_large(size: str) -> TooLarge:
        return TooLarge(
            f"The notebook {_shown(shown)} is {size} bytes, more than the limit of "
            f"{max_bytes}; clear its outputs or split it."
        )

    if info.st_size > max_bytes:
        raise too_large(str(info.st_size))
    chunks, total = [], 0
    while total <= max_bytes:
        chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total > max_bytes:
        raise too_large(f"more than {max_bytes}")
    return b"".join(chunks)


def read_notebook(
    path: Path, max_bytes: int, *, root: Path | None = None, shown: str | None = None
) -> nbformat.NotebookNode:
    """The validated nbformat v4 notebook at ``path``, read with the checks of the module docs.

    The final component is opened with ``O_NOFOLLOW`` (a symlink is refused) and must be a
    regular file (a FIFO or a device is refused without blocking); more than ``max_bytes``
    is :class:`TooLarge`. With ``root``, ``path`` must lie in it and no folder below the root
    may be a symlink either. ``shown`` is how messages name the file (default: ``path``).
    """
    shown = str(path) if shown is None else shown
    try:
        fd = _open_file(Path(path), root, shown)
    except OSError as err:
        raise _os_error(err, shown) from None
    try:
        raw = _read_limited(fd, max_bytes, shown)
    except OSError as err:
        raise _os_error(err, shown) from None
    finally:
        os.close(fd)
    return notebook_from_bytes(raw, shown)


def _assign_missing_cell_ids(data: dict) -> None:
    """Deterministic ids where a 4.5+ notebook lacks them or repeats one.

    nbformat would draw random ones, which would make two reads of one file differ.
    """
    if (data.get("nbformat"), data.get("nbformat_minor", 0)) < (4, 5):
        return
    cells = data.get("cells")
    if not isinstance(cells, list):
        return
    taken = {c.get("id") for c in cells if isinstance(c, dict)}
    seen: set[str] = set()
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict):
            continue
        current = cell.get("id")
        if isinstance(current, str) and current not in seen:
            seen.add(current)
            continue
        if "id" in cell and not isinstance(current, str):
            continue  # a malformed id: validation names it
        candidate, n = f"cell-{index}", 0
        while candidate in taken or candidate in seen:
            n += 1
            candidate = f"cell-{index}-{n}"
        cell["id"] = candidate
        seen.add(candidate)


def notebook_from_bytes(raw: bytes, shown: str = "the notebook") -> nbformat.NotebookNode:
    """The validated nbformat v4 notebook in ``raw`` (UTF-8 JSON); ``shown`` names it."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{_shown(shown)} is not a notebook: it is not UTF-8 text.") from None
    except json.JSONDecodeError as err:
        raise UsageError(
            f"{_shown(shown)} is not a notebook: it is not valid JSON ({err.msg} at line "
            f"{err.lineno}); save it again from Jupyter."
        ) from None
    except RecursionError:
        raise UsageError(f"{_shown(shown)} is not a notebook: its JSON nests too deeply.") from None
    if not isinstance(data, dict) or "cells" not in data or "nbformat" not in data:
        raise UsageError(f"{_shown(shown)} is not a notebook: it is JSON without notebook cells.")
    if data.get("nbformat") != 4:
        raise UsageError(
            f"{_shown(shown)} is an nbformat {_shown(data.get('nbformat'), 20)} notebook; "
            "only version 4 runs: open and save it in a current Jupyter to convert it."
        )
    _assign_missing_cell_ids(data)
    try:
        nb = nbformat.from_dict(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbformat.validate(nb)
    except nbformat.ValidationError as err:
        detail = getattr(err, "message", None) or str(err).splitlines()[0]
        raise UsageError(
            f"{_shown(shown)} is not a valid nbformat v4 notebook ({_shown(detail, 160)}); "
            "save it again from Jupyter."
        ) from None
    except RecursionError:
        raise UsageError(f"{_shown(shown)} is not a notebook: its JSON nests too deeply.") from None
    return nb


# ---------------------------------------------------------------------------------------
# Snapshots


def snapshot_content(nb: nbformat.NotebookNode) -> tuple[bytes, str]:
    """The canonical bytes of the notebook to run and their SHA-256 (hex).

    Outputs are emptied and execution counts cleared (irrelevant to a run, possibly huge);
    cells, sources, attachments, ids, cell and notebook metadata (tags included) stay. A
    source given as a list of lines is joined. The bytes are JSON with sorted keys, one-space
    indent and a final newline, so one notebook gives one digest whatever its outputs.
    ``nb`` is not changed.
    """
    data = copy.deepcopy(dict(nb))
    cells = data.get("cells")
    if not isinstance(cells, list):
        raise UsageError("The notebook has no list of cells; save it again from Jupyter.")
    for cell in cells:
        if not isinstance(cell, dict):
            raise UsageError("The notebook has a cell that is not an object; save it again.")
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(str(line) for line in cell["source"])
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    try:
        text = json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise UsageError(
            f"The notebook cannot be written as JSON ({err}); save it again."
        ) from None
    content = (text + "\n").encode("utf-8")
    return content, hashlib.sha256(content).hexdigest()


def _check_digest(digest: object) -> str:
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise UsageError(
            f"{_shown(digest, 80)} is not a snapshot digest; give the 64 lowercase hex "
            "digits of its SHA-256."
        )
    return digest


def _snapshot_dir(folder: Path, create: bool) -> Path:
    base = Path(folder)
    target = base / SNAPSHOT_SCHEME
    if create:
        missing = [p for p in (target, *target.parents) if not os.path.lexists(p)]
        for path in reversed(missing):
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                continue
            os.chmod(path, 0o700)
    info = os.lstat(target)
    if not stat.S_ISDIR(info.st_mode):
        raise MlplatError(f"The snapshot folder {target} is not a folder (a symlink?); remove it.")
    if create and stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(target, 0o700)
    return target


def _read_existing(path: Path) -> bytes | None:
    try:
        fd = os.open(path, _FILE_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as err:
        if err.errno == errno.ELOOP:
            return None  # a symlink where a snapshot belongs: replaced by the real file
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def store_snapshot(
    folder: Path, content: bytes, digest: str, suffix: str = NOTEBOOK_SUFFIX
) -> Path:
    """Store ``content`` as ``folder/sha256/<digest>.ipynb`` and return that path.

    ``digest`` must be the SHA-256 of ``content`` (else :class:`UsageError`). Folders made
    here are 0700, the file 0600, written to a temporary file in the same folder, flushed and
    renamed into place (readers see the whole snapshot or none). Storing again is a no-op;
    a stored file whose bytes no longer match is replaced by the right ones.
    """
    _check_digest(digest)
    if not isinstance(content, bytes) or hashlib.sha256(content).hexdigest() != digest:
        raise UsageError(
            f"The snapshot content does not have the SHA-256 {digest}; "
            "store the bytes snapshot_content returned with their digest."
        )
    target_dir = _snapshot_dir(folder, create=True)
    path = target_dir / f"{digest}{suffix}"
    if _read_existing(path) == content:
        if stat.S_IMODE(os.lstat(path).st_mode) != 0o600:
            os.chmod(path, 0o600)
        return path
    fd, temp = tempfile.mkstemp(prefix=f".{digest[:16]}-", suffix=".tmp", dir=target_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.lexists(temp):
            os.unlink(temp)
        raise
    dir_fd = os.open(target_dir, _DIR_FLAGS)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def load_snapshot(folder: Path, digest: str, suffix: str = NOTEBOOK_SUFFIX) -> bytes:
    """The bytes stored under ``digest``, checked again against it.

    A missing snapshot is :class:`NotFoundError`; one whose bytes no longer hash to its
    digest (changed on disk) is an :class:`MlplatError` naming the file.
    """
    _check_digest(digest)
    path = Path(folder) / SNAPSHOT_SCHEME / f"{digest}{suffix}"
    try:
        fd = os.open(path, _FILE_FLAGS)
    except FileNotFoundError:
        raise NotFoundError(f"There is no notebook snapshot {digest} in {folder}.") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise MlplatError(f"The notebook snapshot {path} is a symlink; remove it.") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise MlplatError(f"The notebook snapshot {path} is not a regular file; remove it.")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    finally:
        os.close(fd)
    content = b"".join(chunks)
    actual = hashlib.sha256(content).hexdigest()
    if actual != digest:
        raise MlplatError(
            f"The notebook snapshot {path} was changed after it was stored (its SHA-256 is "
            f"now {actual}); it will not run. Submit the notebook again."
        )
    return content


# ---------------------------------------------------------------------------------------
# Parameters


@dataclass(frozen=True)
class Declared:
    """One parameter a notebook's ``parameters`` cell assigns.

    ``kind`` is the type of the default: ``"int"``, ``"float"``, ``"bool"``, ``"str"``,
    ``"list"``, ``"dict"``, ``"None"`` (default ``None``: any JSON value is accepted) or
    ``"any"`` (the default is not a literal, such as ``np.arange(3)``, or a literal of another
    type such as a tuple: its type is unknown, any JSON value is accepted). A simple
    annotation (``rate: float = 1``) gives the kind. ``default`` is the literal value
    (``None`` when the kind is ``"any"``), ``source`` the default as written, ``line`` its
    1-based line in the cell.
    """

    name: str
    kind: str
    default: object
    source: str
    line: int


def parameters_cell_index(nb: nbformat.NotebookNode) -> int | None:
    """The index of the first cell tagged ``parameters`` (where papermill injects after)."""
    for index, cell in enumerate(nb.get("cells", [])):
        tags = (cell.get("metadata") or {}).get("tags") or []
        if isinstance(tags, list) and PARAMETERS_TAG in tags:
            return index
    return None


def _without_ipython_lines(source: str) -> str:
    """``source`` with lines of IPython syntax (``%magic``, ``!shell``) blanked."""
    return "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()
    )


def _kind_of(value: object) -> str:
    return _KINDS_BY_TYPE.get(type(value), "any")


def declared_parameters(nb: nbformat.NotebookNode) -> dict[str, Declared]:
    """The parameters the notebook's first ``parameters``-tagged cell declares, by name.

    Each top-level ``name = <literal>`` or ``name: type = <literal>`` (also ``a = b = 1``) is
    one parameter; a later assignment of a name wins. The cell is parsed with :mod:`ast`,
    never run; if it is not plain Python, lines of IPython syntax (``%matplotlib``,
    ``!pip``) are skipped. An assignment whose value is not a literal declares its name with
    kind ``"any"``: its type is unknown and any JSON value is accepted for it. Tuple targets, attributes and anything not at the top
    level declare nothing. A notebook without such a cell declares nothing (``{}``).
    """
    index = parameters_cell_index(nb)
    if index is None:
        return {}
    cell = nb["cells"][index]
    if cell.get("cell_type") != "code":
        raise UsageError(
            f"The cell tagged '{PARAMETERS_TAG}' (cell {index}) is a "
            f"{cell.get('cell_type')} cell; tag the code cell that sets the defaults."
        )
    source = cell.get("source", "")
    source = "".join(source) if isinstance(source, list) else str(source)
    try:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            source = _without_ipython_lines(source)
            tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        where = f" (line {err.lineno})" if getattr(err, "lineno", None) else ""
        raise UsageError(
            f"The parameters cell (cell {index}) is not valid Python{where}; fix it so its "
            "parameters can be read."
        ) from None
    declared: dict[str, Declared] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            if not all(isinstance(t, ast.Name) for t in node.targets):
                continue
            names, annotation, value = [t.id for t in node.targets], None, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names, annotation, value = [node.target.id], node.annotation, node.value
        else:
            continue
        if value is None:
            kind, default, text = "any", None, ""
        else:
            text = ast.get_source_segment(source, value) or ""
            try:
                default = ast.literal_eval(value)
                kind = _kind_of(default)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                default, kind = None, "any"
            if kind == "any":
                default = None
        if isinstance(annotation, ast.Name) and annotation.id in _ANNOTATION_KINDS:
            kind = annotation.id
        for name in names:
            declared[name] = Declared(name, kind, default, text[:200], node.lineno)
    return declared


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise UsageError(
            f"The parameter name {_shown(name, 80)} is not a Python identifier; a parameter is "
            "one of the variable names the notebook's parameters cell assigns."
        )
    return name


def _undeclared(name: str, declared: dict[str, Declared]) -> UsageError:
    names = ", ".join(sorted(declared)) if declared else "none"
    return UsageError(
        f"{name!r} is not a parameter of this notebook; its parameters cell declares: {names}."
    )


def _describe(value: object) -> str:
    return f"the {type(value).__name__} {_shown(value, 60)}"


def _plain(name: str, value: object, depth: int = 0) -> object:
    """A copy of ``value`` made of plain JSON values only (what papermill writes safely)."""
    if depth > _MAX_DEPTH:
        raise UsageError(f"The value of parameter {name!r} nests too deeply; flatten it.")
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        if not math.isfinite(value):
            raise UsageError(f"Parameter {name!r} got {value!r}; give a finite number.")
        return value
    if kind is list:
        return [_plain(name, item, depth + 1) for item in value]
    if kind is dict:
        plain = {}
        for key, item in value.items():
            if type(key) is not str:
                raise UsageError(
                    f"The value of parameter {name!r} has the key {_shown(key, 40)}; "
                    "dict keys of a parameter must be strings."
                )
            plain[key] = _plain(name, item, depth + 1)
        return plain
    raise UsageError(
        f"Parameter {name!r} got {_describe(value)}; a parameter value is a JSON value "
        "(null, bool, number, string, list or dict with string keys)."
    )


def _check_value(declared: Declared, value: object) -> object:
    value = _plain(declared.name, value)
    kind = declared.kind
    if kind in _ACCEPTS_ANY:
        return value
    actual = type(value)
    if kind == "float" and actual is int:
        try:
            return float(value)
        except OverflowError:
            raise UsageError(
                f"Parameter {declared.name!r} got an int too large for a float."
            ) from None
    if kind == _KINDS_BY_TYPE.get(actual):
        return value
    raise UsageError(
        f"Parameter {declared.name!r} takes a {kind} (its default is "
        f"{_shown(declared.source, 60)}); got {_describe(value)}."
    )


def check_parameters(nb: nbformat.NotebookNode, given: dict[str, object]) -> dict[str, object]:
    """``given`` checked against what ``nb`` declares (:func:`declared_parameters`).

    Names must be identifiers, not keywords, and declared by the parameters cell; values
    must be plain JSON values of the declared kind: an int is accepted for a float (and
    becomes a float), a bool is not an int, a str stays a str, a ``None`` or unknown default
    accepts any JSON value. Returns plain copies of the values. Parameters given to a
    notebook without a ``parameters`` cell are a :class:`UsageError`.
    """
    if not isinstance(given, dict):
        raise UsageError("Give the parameters as a mapping of names to values.")
    if not given:
        return {}
    for name in given:
        _check_name(name)
    if parameters_cell_index(nb) is None:
        raise UsageError(
            f"This notebook has no cell tagged '{PARAMETERS_TAG}', so it takes no parameters "
            f"(given: {', '.join(sorted(given))}); tag the cell that sets their defaults."
        )
    declared = declared_parameters(nb)
    checked = {}
    for name, value in given.items():
        if name not in declared:
            raise _undeclared(name, declared)
        checked[name] = _check_value(declared[name], value)
    return checked


def _convert(declared: Declared, text: str) -> object:
    name, kind = declared.name, declared.kind

    def wrong(what: str) -> UsageError:
        return UsageError(f"Parameter {name!r} takes {what}; got {_shown(text, 60)}.")

    if kind == "str":
        return text
    if kind == "int":
        if not _INT_TEXT.match(text.strip()):
            raise wrong("an int (like 3)")
        return int(text.strip())
    if kind == "float":
        try:
            number = float(text.strip())
        except ValueError:
            raise wrong("a number (like 0.5)") from None
        if not math.isfinite(number):
            raise wrong("a finite number")
        return number
    if kind == "bool":
        try:
            return _BOOLS[text.strip().lower()]
        except KeyError:
            raise wrong("true or false (also yes/no, 1/0)") from None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        if kind in _ACCEPTS_ANY:
            return text
        raise wrong(f"a JSON {'list' if kind == 'list' else 'object'}") from None
    if kind == "list" and type(value) is not list:
        raise wrong("a JSON list (like [1, 2])")
    if kind == "dict" and type(value) is not dict:
        raise wrong('a JSON object (like {"a": 1})')
    return _plain(name, value)


def parse_cli_parameters(pairs: list[str], declared: dict[str, Declared]) -> dict[str, object]:
    """The values of ``-p name=value`` pairs, converted by the kind of each declared default.

    Split on the first ``=`` (the name is stripped of spaces, the value kept as is): an int
    is ``int(text)`` (digits only), a float ``float(text)`` (finite), a bool one of
    true/false/yes/no/1/0 (any case), a str the text as is, a list or dict JSON; a ``None``
    or unknown default takes JSON when the text is JSON (``3``, ``null``, ``[1]``) and the
    text as a string otherwise. Undeclared names, names given twice and malformed pairs are
    a :class:`UsageError`.
    """
    values: dict[str, object] = {}
    for pair in pairs:
        if not isinstance(pair, str) or "=" not in pair:
            raise UsageError(
                f"The parameter {_shown(pair, 80)} is not name=value; write it as -p name=value."
            )
        name, _, text = pair.partition("=")
        name = name.strip()
        if not name:
            raise UsageError(
                f"The parameter {_shown(pair, 80)} has no name; write it as -p name=value."
            )
        _check_name(name)
        if name in values:
            raise UsageError(f"The parameter {name!r} is given twice; give it once.")
        if name not in declared:
            raise _undeclared(name, declared)
        values[name] = _convert(declared[name], text)
    return values


# ---------------------------------------------------------------------------------------
# Outcome (display only: a job's status comes from the run itself, never from its output)


def _excerpt(source: object) -> str:
    text = "".join(map(str, source)) if isinstance(source, list) else str(source or "")
    lines = text.splitlines()
    cut = "\n".join(lines[:_EXCERPT_LINES])
    if len(cut) > _EXCERPT_CHARS:
        cut = cut[: _EXCERPT_CHARS - 1]
    return cut + ("…" if cut != text else "")


def _cells(nb: object) -> list:
    cells = nb.get("cells") if isinstance(nb, dict) else None
    return [c for c in cells if isinstance(c, dict)] if isinstance(cells, list) else []


def failing_cell(output_nb: nbformat.NotebookNode) -> dict | None:
    """The first cell with an ``error`` output, for display; ``None`` if there is none.

    Keys: ``index`` (in the output notebook, which holds papermill's injected cells),
    ``cell_id``, ``execution_count``, ``source`` (the first lines, cut), ``ename`` and
    ``evalue`` (cut). The output notebook is written by the run, so it is read defensively
    and never decides the job's status.
    """
    for index, cell in enumerate(_cells(output_nb)):
        outputs = cell.get("outputs")
        if cell.get("cell_type") != "code" or not isinstance(outputs, list):
            continue
        for output in outputs:
            if isinstance(output, dict) and output.get("output_type") == "error":
                evalue = str(output.get("evalue", ""))
                cell_id, count = cell.get("id"), cell.get("execution_count")
                return {
                    "index": index,
                    "cell_id": cell_id if isinstance(cell_id, str) else None,
                    "execution_count": count if type(count) is int else None,
                    "source": _excerpt(cell.get("source")),
                    "ename": str(output.get("ename", ""))[:200],
                    "evalue": evalue if len(evalue) <= 1000 else evalue[:999] + "…",
                }
    return None


def progress(nb: nbformat.NotebookNode) -> tuple[int, int]:
    """(code cells done, code cells) of a notebook being run, for progress display only.

    A cell is done when it has an execution count or papermill's cell metadata says
    ``status: completed``. This reads what the run wrote and decides nothing.
    """
    done = total = 0
    for cell in _cells(nb):
        if cell.get("cell_type") != "code":
            continue
        total += 1
        metadata = cell.get("metadata")
        papermill = metadata.get("papermill") if isinstance(metadata, dict) else None
        status = papermill.get("status") if isinstance(papermill, dict) else None
        if cell.get("execution_count") is not None or status == "completed":
            done += 1
    return done, total
