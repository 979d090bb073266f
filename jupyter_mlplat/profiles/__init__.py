"""Team server profiles: YAML files in ``spawner_profiles/``, validated and rendered.

* :func:`load_profiles` -> :class:`ProfileSet` (raises :class:`ProfileError`)
* :func:`profiles_for_groups`, :func:`resolve` -> :class:`ResolvedProfile` (in :mod:`.selection`)
* :func:`kubespawner_profile_list`, :func:`helm_values` (in :mod:`.render`)

Only yaml, json and jsonschema are imported here; KubeSpawner is never imported.
"""

from __future__ import annotations

from .loader import default_profiles_dir, load_profiles
from .model import (
    GpuChoice,
    GpuType,
    Profile,
    ProfileError,
    ProfileSet,
    parse_memory,
)
from .render import (
    helm_values,
    kubespawner_profile_list,
    kubespawner_profile_list_callable,
)
from .selection import (
    ProfileForbidden,
    ResolvedProfile,
    SpawnRequestError,
    profiles_for_groups,
    resolve,
)

__all__ = [
    "GpuChoice",
    "GpuType",
    "Profile",
    "ProfileError",
    "ProfileForbidden",
    "ProfileSet",
    "ResolvedProfile",
    "SpawnRequestError",
    "default_profiles_dir",
    "helm_values",
    "kubespawner_profile_list",
    "kubespawner_profile_list_callable",
    "load_profiles",
    "parse_memory",
    "profiles_for_groups",
    "resolve",
]
