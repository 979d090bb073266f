"""Reading a profiles folder: ``groups.yaml``, one YAML file per team plus ``shared.yaml``,
and ``profile.schema.json``. :func:`load_profiles` checks every file against the schema
and the rules in :mod:`.checks`, and raises :class:`~.model.ProfileError` naming the
file, the profile and the field of each problem.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from . import checks
from .model import (
    GROUPS_FILE,
    SCHEMA_FILE,
    GpuType,
    Profile,
    ProfileError,
    ProfileSet,
    display_path,
    known_groups,
)


def default_profiles_dir() -> Path:
    """The team profiles shipped with the package (a configured folder overrides them:
    ``c.MlplatHub.profiles_dir``, ``mlplat profiles validate --folder DIR``)."""
    from ..resources import default_profiles_dir as shipped

    return shipped()


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that rejects duplicate mapping keys (PyYAML keeps the last silently)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, list | dict):
            continue  # unhashable: construct_mapping reports it
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path) -> Any:
    """Parse one YAML file; a syntax error becomes a :class:`ProfileError`."""
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.load(fh, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        text = f"{display_path(path)}: is not valid YAML ({problem}{where})"
        raise ProfileError([f"{text}; fix the file and restart."]) from None
    except OSError as exc:
        raise ProfileError(
            [f"{display_path(path)}: cannot be read ({exc.strerror}); check the file and restart."]
        ) from None


def load_schema(folder: Path) -> dict:
    """The JSON Schema of profile files: the folder's own copy, else the repository's."""
    for candidate in (folder / SCHEMA_FILE, default_profiles_dir() / SCHEMA_FILE):
        if candidate.is_file():
            return json.loads(candidate.read_text(encoding="utf-8"))
    where = display_path(folder)
    raise ProfileError(
        [
            f"{where}: has no {SCHEMA_FILE}; copy it from the shipped profiles "
            f"({display_path(default_profiles_dir())})."
        ]
    )


def load_profiles(folder: str | Path | None = None) -> ProfileSet:
    """Load and validate every profile file of ``folder`` (default: :func:`default_profiles_dir`).

    Raises :class:`ProfileError` listing every problem (file, profile slug, field)."""
    folder = Path(folder) if folder is not None else default_profiles_dir()
    if not folder.is_dir():
        where = display_path(folder)
        fix = "pass --folder DIR or set c.MlplatHub.profiles_dir"
        raise ProfileError([f"{where}: is not a folder of profiles; {fix}."])
    schema = load_schema(folder)
    groups_file = folder / GROUPS_FILE
    if not groups_file.is_file():
        raise ProfileError(
            [checks.problem(groups_file, None, "", "is missing (it lists the known teams and "
                            "role groups)")]
        )  # fmt: skip
    teams, roles = checks.read_groups(groups_file, read_yaml(groups_file), schema)
    files = tuple(p for p in sorted(folder.glob("*.yaml")) if p.name != GROUPS_FILE)
    if not files:
        raise ProfileError(
            [f"{display_path(folder)}: has no profile files (*.yaml); add one file per team."]
        )
    problems: list[str] = []
    documents = []
    for path in files:
        try:
            data = read_yaml(path)
        except ProfileError as exc:
            problems.extend(exc.problems)
            continue
        file_problems = checks.schema_problems(path, data, schema)
        problems.extend(file_problems)
        if not file_problems:
            documents.append((path, data))
    profiles = [_build(path, raw) for path, data in documents for raw in data["profiles"]]
    problems.extend(checks.semantic_problems(profiles, known_groups(teams, roles)))
    if problems:
        raise ProfileError(problems)
    return ProfileSet(folder, files, tuple(profiles), tuple(teams), tuple(roles))


def _build(path: Path, raw: dict) -> Profile:
    gpu = raw.get("gpu") or {}
    types = tuple(
        GpuType(
            name=t["name"],
            display_name=t["display_name"],
            node_selector=dict(t["node_selector"]),
            tolerations=tuple(dict(tol) for tol in t.get("tolerations", [])),
        )
        for t in gpu.get("types", [])
    )
    return Profile(
        slug=raw["slug"],
        display_name=raw["display_name"],
        description=raw.get("description", ""),
        groups=tuple(raw.get("groups", ())),
        shared=bool(raw.get("shared", False)),
        namespace=raw["namespace"],
        image=raw["image"],
        cpu_guarantee=float(raw["cpu"]["guarantee"]),
        cpu_limit=float(raw["cpu"]["limit"]),
        mem_guarantee=raw["memory"]["guarantee"],
        mem_limit=raw["memory"]["limit"],
        gpu_max_count=int(gpu.get("max_count", 0)),
        gpu_default_count=int(gpu.get("default_count", 0)),
        gpu_types=types,
        environment=dict(raw.get("environment", {})),
        default=bool(raw.get("default", False)),
        source=path,
    )
