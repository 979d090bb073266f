"""Team profiles as data: load ``spawner_profiles/*.yaml``, validate, and model them.

A profiles folder holds ``groups.yaml`` (the known teams and role groups), one YAML
file per team plus ``shared.yaml``, and ``profile.schema.json``. :func:`load_profiles`
checks every file against the schema and the rules in :mod:`.checks`, and raises
:class:`ProfileError` naming the file, the profile and the field of each problem.

Memory amounts are strings such as ``"2G"`` read the way JupyterHub reads them
(K, M, G, T are binary units: ``2G`` is 2 GiB).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import UsageError

SCHEMA_FILE = "profile.schema.json"
GROUPS_FILE = "groups.yaml"
SLUG_PATTERN = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
SHARED = "*"  # the audience of a shared profile, in group listings
NO_GPU = "none"  # the GPU choice key for "no GPU"
_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_PACKAGE_REPO_ROOT = Path(__file__).resolve().parents[2]


class ProfileError(UsageError):
    """A profiles file is invalid; ``problems`` lists every problem found, one sentence each."""

    http_status = 500  # a file on the server is wrong, not the request

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        first = self.problems[0]
        if len(self.problems) > 1:
            first = (
                f"{first.rstrip('.')} ({len(self.problems) - 1} more problem(s): run "
                "`mlplat profiles validate` to list them all)."
            )
        super().__init__(first)


def parse_memory(amount: str) -> int:
    """Bytes of a memory amount such as ``"2G"`` (binary units, as JupyterHub reads them)."""
    return int(float(amount[:-1]) * _UNITS[amount[-1]])


def default_profiles_dir(settings: Any = None) -> Path:
    """The profiles folder: ``settings.profiles_dir`` when set, else ``spawner_profiles/``
    at the root of the repository this package was loaded from."""
    if settings is None:
        from ..settings import get_settings

        settings = get_settings()
    configured = getattr(settings, "profiles_dir", "") or ""
    if configured:
        return Path(configured).expanduser()
    return _PACKAGE_REPO_ROOT / "spawner_profiles"


@dataclass(frozen=True)
class GpuType:
    name: str
    display_name: str
    node_selector: dict[str, str]
    tolerations: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class GpuChoice:
    """One selectable GPU option of a profile: ``none`` or ``<count>x-<type>``."""

    key: str
    count: int
    type: GpuType | None
    display_name: str
    default: bool = False


@dataclass(frozen=True)
class Profile:
    slug: str
    display_name: str
    description: str
    groups: tuple[str, ...]  # empty when shared
    shared: bool
    namespace: str
    image: str
    cpu_guarantee: float
    cpu_limit: float
    mem_guarantee: str
    mem_limit: str
    gpu_max_count: int = 0
    gpu_default_count: int = 0
    gpu_types: tuple[GpuType, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    default: bool = False
    source: Path | None = None

    @property
    def audience(self) -> tuple[str, ...]:
        """The groups that may use this profile; ``("*",)`` when everyone may."""
        return (SHARED,) if self.shared else self.groups

    def allowed_for(self, groups: Iterable[str]) -> bool:
        return self.shared or not set(self.groups).isdisjoint(groups)

    def gpu_options(self) -> list[GpuChoice]:
        """``none`` then every (type, count) pair; empty when the profile offers no GPU."""
        if self.gpu_max_count == 0:
            return []
        default_key = self.default_gpu_key
        choices = [GpuChoice(NO_GPU, 0, None, "No GPU", default_key == NO_GPU)]
        for gpu_type in self.gpu_types:
            for count in range(1, self.gpu_max_count + 1):
                key = gpu_choice_key(count, gpu_type.name)
                label = f"{count} GPU{'s' if count > 1 else ''}: {gpu_type.display_name}"
                choices.append(GpuChoice(key, count, gpu_type, label, key == default_key))
        return choices

    def gpu_choices(self) -> dict[str, str]:
        """GPU choice key -> label, for forms (``{}`` when the profile offers no GPU)."""
        return {c.key: c.display_name for c in self.gpu_options()}

    @property
    def default_gpu_key(self) -> str:
        if self.gpu_default_count == 0 or not self.gpu_types:
            return NO_GPU
        return gpu_choice_key(self.gpu_default_count, self.gpu_types[0].name)


def gpu_choice_key(count: int, type_name: str | None) -> str:
    return NO_GPU if count == 0 or not type_name else f"{count}x-{type_name}"


@dataclass(frozen=True)
class ProfileSet:
    """Every profile of a folder, in file order (files sorted by name)."""

    folder: Path
    files: tuple[Path, ...]
    profiles: tuple[Profile, ...]
    teams: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()

    def known_groups(self) -> tuple[str, ...]:
        """``team-<name>`` for every team of groups.yaml, then its role groups."""
        return known_groups(self.teams, self.roles)

    @property
    def slugs(self) -> list[str]:
        return [p.slug for p in self.profiles]

    def get(self, slug: str) -> Profile | None:
        return next((p for p in self.profiles if p.slug == slug), None)

    def for_groups(self, groups: Iterable[Any]) -> list[Profile]:
        """The profiles a member of ``groups`` may use: their teams' first, then shared ones.

        ``groups`` are names or objects with a ``.name`` (JupyterHub ``Group``)."""
        from .selection import profiles_for_groups

        return profiles_for_groups(self, groups)

    def resolve(self, slug: str | None, options: Mapping[str, Any] | None, groups: Iterable[Any]):
        """Validate a spawn request; see :func:`.selection.resolve`."""
        from .selection import resolve

        return resolve(self, slug, options, groups)


def known_groups(teams: Iterable[str], roles: Iterable[str]) -> tuple[str, ...]:
    return (*(f"team-{t}" for t in teams), *roles)


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


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


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
    for candidate in (folder / SCHEMA_FILE, _PACKAGE_REPO_ROOT / "spawner_profiles" / SCHEMA_FILE):
        if candidate.is_file():
            return json.loads(candidate.read_text(encoding="utf-8"))
    where = display_path(folder)
    raise ProfileError(
        [f"{where}: has no {SCHEMA_FILE}; copy it from the repository's spawner_profiles/."]
    )


def load_profiles(folder: str | Path | None = None) -> ProfileSet:
    """Load and validate every profile file of ``folder`` (default: :func:`default_profiles_dir`).

    Raises :class:`ProfileError` listing every problem (file, profile slug, field)."""
    from . import checks

    folder = Path(folder) if folder is not None else default_profiles_dir()
    if not folder.is_dir():
        where = display_path(folder)
        fix = "pass --folder DIR or set c.MlplatSettings.profiles_dir"
        raise ProfileError([f"{where}: is not a folder of profiles; {fix}."])
    schema = load_schema(folder)
    teams, roles = checks.read_groups(folder / GROUPS_FILE, schema)
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
