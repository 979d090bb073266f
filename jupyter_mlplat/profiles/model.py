"""Team profiles as data: the pure model (no file reading; see :mod:`.loader`).

Memory amounts are strings such as ``"2G"`` read the way JupyterHub reads them
(K, M, G, T are binary units: ``2G`` is 2 GiB).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError

SCHEMA_FILE = "profile.schema.json"
GROUPS_FILE = "groups.yaml"
SLUG_PATTERN = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
SHARED = "*"  # the audience of a shared profile, in group listings
NO_GPU = "none"  # the GPU choice key for "no GPU"
_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


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


def known_groups(teams: Iterable[str], roles: Iterable[str]) -> tuple[str, ...]:
    return (*(f"team-{t}" for t in teams), *roles)


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
