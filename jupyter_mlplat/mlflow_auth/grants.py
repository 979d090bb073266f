"""Permissions from hub groups, written into MLflow's own auth store (its RBAC roles).

- each team T has the role ``mlplat-team-T``: EDIT on every experiment named ``T/…``
  (granted when the experiment is created, and by the periodic :func:`reconcile`), READ on
  every registered model whose versions the platform registered for T (``mlplat.team``
  version tag, which only the platform can write);
- the role ``mlplat-readers`` (reviewers and admins): READ on all experiments and models;
- a user holds exactly the roles of their current groups, re-synced each time the Hub is
  asked about their token (so at most ``hub_cache_seconds`` after a group change).

Nobody but the platform has MANAGE: no user can grant another access.
"""

from __future__ import annotations

import logging
import secrets
import threading

from mlflow.exceptions import MlflowException

from .hub_identity import HubUser

log = logging.getLogger(__name__)

ROLE_PREFIX = "mlplat-"
READERS_ROLE = "mlplat-readers"
TEAM_TAG = "mlplat.team"
WORKSPACE = "default"  # MLflow's workspace when workspaces are off: where grants live


def team_role(team: str) -> str:
    return f"{ROLE_PREFIX}team-{team}"


def team_of_experiment(name: str) -> str:
    """The team an experiment belongs to: the part of its name before the first ``/``."""
    team, slash, rest = (name or "").partition("/")
    return team if slash and team and rest else ""


class Grants:
    """Keeps MLflow's roles and grants in line with hub groups and experiment names."""

    def __init__(self, store):
        self.store = store
        self._lock = threading.Lock()
        self._roles: dict[str, int] = {}

    def role_id(self, name: str) -> int:
        cached = self._roles.get(name)
        if cached is not None:
            return cached
        with self._lock:
            try:
                role = self.store.get_role_by_name(WORKSPACE, name)
            except MlflowException:
                try:
                    role = self.store.create_role(
                        name, WORKSPACE, description="Managed by jupyter-mlplat from hub groups"
                    )
                except MlflowException:  # created meanwhile by another worker
                    role = self.store.get_role_by_name(WORKSPACE, name)
                if name == READERS_ROLE:
                    for resource_type in ("experiment", "registered_model"):
                        self._add(role.id, resource_type, "*", "READ")
            self._roles[name] = role.id
            return role.id

    def _add(self, role_id: int, resource_type: str, pattern: str, permission: str) -> None:
        try:
            self.store.add_role_permission(role_id, resource_type, pattern, permission)
        except MlflowException as exc:
            if "already exists" not in str(exc):
                raise

    def sync_user(self, user: HubUser) -> None:
        """Make the MLflow user ``user.name`` hold exactly the roles of their groups."""
        if user.platform:
            return
        if not self.store.has_user(user.name):
            try:
                # Never used to log in: the authorization function accepts hub tokens only.
                self.store.create_user(user.name, secrets.token_urlsafe(32), is_admin=False)
            except MlflowException:
                if not self.store.has_user(user.name):
                    raise
        account = self.store.get_user(user.name)
        wanted = {team_role(team) for team in user.teams}
        if user.reader:
            wanted.add(READERS_ROLE)
        held = {
            role.name: role.id
            for role in self.store.list_user_roles(account.id)
            if role.name.startswith(ROLE_PREFIX)
        }
        for name in wanted - held.keys():
            try:
                self.store.assign_role_to_user(account.id, self.role_id(name))
            except MlflowException as exc:
                if "already" not in str(exc):
                    raise
        for name in held.keys() - wanted:
            self.store.unassign_role_from_user(account.id, held[name])

    def grant_experiment(self, experiment_id: str, name: str) -> None:
        team = team_of_experiment(name)
        if team:
            self._add(self.role_id(team_role(team)), "experiment", str(experiment_id), "EDIT")

    def grant_model(self, model_name: str, team: str) -> None:
        if team and model_name:
            self._add(self.role_id(team_role(team)), "registered_model", model_name, "READ")

    def reconcile(self, tracking_store, registry_store) -> None:
        """Grant every team its experiments and registered models (at start and periodically:
        covers anything created before this process or by another worker)."""
        from mlflow.entities import ViewType

        token = None
        while True:
            page = tracking_store.search_experiments(
                view_type=ViewType.ALL, max_results=1000, page_token=token
            )
            for experiment in page:
                self.grant_experiment(experiment.experiment_id, experiment.name)
            token = page.token
            if not token:
                break
        token = None
        while True:
            page = registry_store.search_model_versions(
                filter_string=None, max_results=10_000, page_token=token
            )
            for version in page:
                self.grant_model(version.name, (version.tags or {}).get(TEAM_TAG, ""))
            token = page.token
            if not token:
                break
