"""Which profiles a user may start, and validation of a spawn request.

A user sees the profiles of their teams (JupyterHub groups such as ``team-churn``) and
the shared ones. :func:`resolve` turns ``(slug, options, groups)`` into a
:class:`ResolvedProfile` or raises an error carrying ``http_status``:

* malformed or unknown slug, bad GPU option -> :class:`SpawnRequestError` (400)
* a profile of another team -> :class:`ProfileForbidden` (403)

Options are KubeSpawner-style ``{"gpu": "1x-a100"}`` (a key of
:meth:`Profile.gpu_choices`), or ``{"gpu_count": 1, "gpu_type": "a100"}``; a ``profile``
key equal to the slug is accepted too, so KubeSpawner ``user_options`` pass as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import PermissionDenied, UsageError
from .model import NO_GPU, SLUG_PATTERN, GpuType, Profile, ProfileSet, gpu_choice_key, parse_memory

OPTION_KEYS = ("profile", "gpu", "gpu_count", "gpu_type")

# What a local-process spawner cannot enforce from a profile: it passes the limits on as
# environment variables (CPU_LIMIT, MEM_LIMIT...) but the OS does not cap the process, it
# has no node to select so the GPU type is informational, and CUDA_VISIBLE_DEVICES only
# hides devices from CUDA programs rather than reserving them.
LOCAL_UNENFORCED = ("cpu_guarantee", "cpu_limit", "mem_guarantee", "mem_limit", "gpu_type")


class SpawnRequestError(UsageError):
    """A malformed spawn request (unknown or malformed slug, bad GPU option)."""

    http_status = 400


class ProfileForbidden(PermissionDenied):
    """The profile belongs to a team the user is not a member of."""

    http_status = 403


@dataclass(frozen=True)
class ResolvedProfile:
    """A validated spawn request: everything a spawner needs.

    ``env`` is the profile's variables plus ``CUDA_VISIBLE_DEVICES`` for the chosen
    GPU count (``"0"``, ``"0,1"``; ``""`` for none). A local-process spawner cannot enforce
    the CPU and memory figures or the GPU type (see :data:`LOCAL_UNENFORCED`); KubeSpawner
    enforces all of them through the pod's resources and node selection.
    """

    profile: Profile
    gpu_count: int
    gpu_type: GpuType | None
    env: dict[str, str]

    slug = property(lambda self: self.profile.slug)
    image = property(lambda self: self.profile.image)
    namespace = property(lambda self: self.profile.namespace)
    cpu_guarantee = property(lambda self: self.profile.cpu_guarantee)
    cpu_limit = property(lambda self: self.profile.cpu_limit)
    mem_guarantee = property(lambda self: self.profile.mem_guarantee)
    mem_limit = property(lambda self: self.profile.mem_limit)

    @property
    def gpu_choice(self) -> str:
        """The key of the chosen GPU option (``"none"``, ``"2x-a100"``)."""
        return gpu_choice_key(self.gpu_count, self.gpu_type.name if self.gpu_type else None)

    @property
    def mem_limit_bytes(self) -> int:
        return parse_memory(self.profile.mem_limit)

    @property
    def mem_guarantee_bytes(self) -> int:
        return parse_memory(self.profile.mem_guarantee)

    @property
    def kubespawner_user_options(self) -> dict[str, str]:
        """The same choice as KubeSpawner ``user_options`` for our rendered profile_list."""
        options = {"profile": self.slug}
        if self.profile.gpu_max_count:
            options["gpu"] = self.gpu_choice
        return options


def group_names(groups: Iterable[Any] | None) -> list[str]:
    """Names of ``groups``: strings, or objects with ``.name`` (JupyterHub ``Group``)."""
    if isinstance(groups, str):
        groups = [groups]
    return [g if isinstance(g, str) else g.name for g in (groups or [])]


def profiles_for_groups(profile_set: ProfileSet, groups: Iterable[Any] | None) -> list[Profile]:
    """The profiles of the user's teams (file order), then the shared ones."""
    names = set(group_names(groups))
    own = [p for p in profile_set.profiles if not p.shared and p.allowed_for(names)]
    return own + [p for p in profile_set.profiles if p.shared]


def resolve(
    profile_set: ProfileSet,
    slug: str | None,
    options: Mapping[str, Any] | None,
    groups: Iterable[Any] | None,
) -> ResolvedProfile:
    """Validate a spawn request for a member of ``groups``; no slug picks their default."""
    names = group_names(groups)
    allowed = profiles_for_groups(profile_set, names)
    offer = _offer(allowed)
    if slug in (None, ""):
        if not allowed:
            raise ProfileForbidden(
                "No server profile is open to your groups; ask a platform admin to add you "
                "to a team."
            )
        profile = next((p for p in allowed if p.default), allowed[0])
    else:
        if not isinstance(slug, str) or not SLUG_PATTERN.match(slug):
            raise SpawnRequestError(
                f"{slug!r} is not a valid profile slug (lowercase letters, digits and '-'); "
                f"choose one of: {offer}."
            )
        profile = profile_set.get(slug)
        if profile is None:
            raise SpawnRequestError(f"There is no profile {slug!r}; choose one of: {offer}.")
        if profile not in allowed:
            raise ProfileForbidden(
                f"Profile {slug!r} is for {', '.join(profile.groups)} and you are not a "
                f"member; choose one of your profiles: {offer}."
            )
    gpu_count, gpu_type = _gpu(profile, dict(options or {}))
    env = dict(profile.environment)
    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(gpu_count))
    return ResolvedProfile(profile, gpu_count, gpu_type, env)


def _offer(profiles: list[Profile]) -> str:
    return ", ".join(p.slug for p in profiles) or "none (ask a platform admin to add you to a team)"


def _gpu(profile: Profile, options: dict[str, Any]) -> tuple[int, GpuType | None]:
    slug = profile.slug
    unknown = sorted(set(options) - set(OPTION_KEYS))
    if unknown:
        raise SpawnRequestError(
            f"Unknown spawn option(s) {', '.join(map(repr, unknown))}; use only "
            f"{', '.join(OPTION_KEYS)}."
        )
    if options.get("profile") not in (None, "", slug):
        raise SpawnRequestError(
            f"The options name profile {options['profile']!r} but the request is for {slug!r}; "
            "give the profile once."
        )
    choices = profile.gpu_options()
    keys = ", ".join(c.key for c in choices) or NO_GPU
    if options.get("gpu") not in (None, ""):
        if "gpu_count" in options or "gpu_type" in options:
            raise SpawnRequestError("Give either gpu or gpu_count/gpu_type, not both.")
        choice = next((c for c in choices if c.key == options["gpu"]), None)
        if choice is None and options["gpu"] != NO_GPU:
            raise SpawnRequestError(
                f"{options['gpu']!r} is not a GPU choice of profile {slug!r}; choose one of: "
                f"{keys}."
            )
        return (choice.count, choice.type) if choice else (0, None)
    raw = options.get("gpu_count")
    text = str(raw).strip()
    type_name = options.get("gpu_type") or None
    if raw in (None, ""):
        count = (1 if type_name else profile.gpu_default_count) if profile.gpu_max_count else 0
    elif isinstance(raw, bool) or not (text.isascii() and text.isdigit()):
        raise SpawnRequestError(
            f"gpu_count must be a whole number from 0 to {profile.gpu_max_count} "
            f"(got {raw!r}); choose one of: {keys}."
        )
    else:
        count = int(text)
    if count > profile.gpu_max_count:
        raise SpawnRequestError(
            f"Profile {slug!r} allows at most {profile.gpu_max_count} GPU(s) (got {count}); "
            f"choose one of: {keys}."
        )
    if count == 0:
        return 0, None
    types = {t.name: t for t in profile.gpu_types}
    if type_name is None:
        return count, profile.gpu_types[0]
    if type_name not in types:
        raise SpawnRequestError(
            f"{type_name!r} is not a GPU type of profile {slug!r}; choose one of: "
            f"{', '.join(types)} (choices: {keys})."
        )
    return count, types[type_name]
