"""Who the user is and which teams they act for.

Outside JupyterHub the user comes from ``JUPYTERHUB_USER`` or the OS and the
teams from ``MLPLAT_TEAMS`` (both via :mod:`.settings`). Inside a hub the platform
service builds the identity from the Hub's user model: groups ``team-<name>`` are
teams, ``mlplat-reviewers`` / ``mlplat-admins`` give roles (see
:func:`identity_from_hub_model`). Experiments and other team-owned resources are
named ``<team>/<name>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import PermissionDenied, UsageError
from .settings import MlplatSettings

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\- ]{0,199}\Z")

ROLE_REVIEWER = "reviewer"
ROLE_ADMIN = "admin"


@dataclass(frozen=True)
class Identity:
    user: str
    teams: tuple[str, ...]
    source: str
    roles: tuple[str, ...] = ()

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def default_team(self) -> str:
        if not self.teams:
            raise PermissionDenied(
                f"User {self.user!r} belongs to no team; ask a platform admin to add you "
                "to one (or set MLPLAT_TEAMS outside JupyterHub)."
            )
        return self.teams[0]

    def check_team(self, team: str) -> str:
        if team not in self.teams:
            raise PermissionDenied(
                f"You ({self.user}) are not a member of team {team!r}; use one of your "
                f"teams: {', '.join(self.teams) or 'none'}."
            )
        return team

    def scoped_name(self, name: str, team: str | None = None) -> tuple[str, str]:
        """``(team, "<team>/<name>")`` for a name that may already carry its team."""
        if "/" in name:
            prefix, _, rest = name.partition("/")
            if team and team != prefix:
                raise UsageError(
                    f"{name!r} names team {prefix!r} but --team says {team!r}; give the team once."
                )
            team, name = prefix, rest
        team = self.check_team(team or self.default_team)
        if not _NAME.match(name):
            raise UsageError(
                f"{name!r} is not a valid name; use letters, digits, spaces, '_', '-' or '.' "
                "(up to 200 characters)."
            )
        return team, f"{team}/{name}"


def current_identity(settings: MlplatSettings) -> Identity:
    """The local identity of the settings (outside a hub: the OS or configured user)."""
    return Identity(
        user=settings.user,
        teams=tuple(settings.teams),
        source=settings.teams_source,
        roles=tuple(settings.roles),
    )


def identity_from_hub_model(model: Mapping, settings: MlplatSettings) -> Identity:
    """The identity of a JupyterHub user (or service) model, from its ``groups``.

    Groups ``<team_group_prefix><team>`` become teams (sorted); the reviewer and
    admin groups of the settings become the roles ``reviewer`` and ``admin``.
    A service model has no groups, so no teams and no roles.
    """
    groups = [g for g in model.get("groups") or () if isinstance(g, str)]
    prefix = settings.team_group_prefix
    teams = sorted({g[len(prefix) :] for g in groups if g.startswith(prefix) and g != prefix})
    roles = []
    if settings.reviewer_group in groups:
        roles.append(ROLE_REVIEWER)
    if settings.admin_group in groups:
        roles.append(ROLE_ADMIN)
    kind = model.get("kind") or "user"
    source = "JupyterHub groups" if kind == "user" else f"JupyterHub {kind} (no groups)"
    return Identity(user=str(model["name"]), teams=tuple(teams), source=source, roles=tuple(roles))
