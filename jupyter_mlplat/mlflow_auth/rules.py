"""What users may not do in MLflow even where a grant would allow it.

- The model registry is the platform's record: registering models and versions, aliases,
  tags, stage transitions, renames and deletes go through the platform service
  (``%mlplat approval …``), never straight to MLflow.
- Experiments are named ``<team>/<name>``; a user creates and renames experiments only
  within their own teams, so an experiment's name says which team it belongs to.

Each rule returns ``None`` (no objection) or the sentence a 403 carries.
"""

from __future__ import annotations

import re

from .grants import team_of_experiment
from .hub_identity import HubUser

_API = re.compile(r"/(?:ajax-)?api/[0-9.]+/mlflow/(?P<rest>.*)\Z")
_REGISTRY = ("registered-models/", "model-versions/")
_REGISTRY_READS_BY_POST = ("registered-models/get-latest-versions",)


def api_route(path: str) -> str | None:
    """``experiments/create`` for ``…/api/2.0/mlflow/experiments/create``; None if not API."""
    match = _API.search(path)
    return match["rest"] if match else None


def objection(
    user: HubUser, method: str, path: str, body: dict | None, current_name=lambda _id: ""
) -> str | None:
    """``current_name(experiment_id)`` gives an experiment's name (for renames)."""
    if user.platform:
        return None
    route = api_route(path)
    if route is None:
        return None
    if route.startswith(_REGISTRY):
        if method in ("GET", "HEAD") or route in _REGISTRY_READS_BY_POST:
            return None
        return (
            "Only the platform writes the model registry; register and promote a model "
            "with `%mlplat approval request` (or the platform service), not MLflow directly."
        )
    body = body if isinstance(body, dict) else {}
    if route == "experiments/create" and method == "POST":
        return _name_objection(user, str(body.get("name") or ""))
    if route == "experiments/update" and method == "POST" and body.get("new_name"):
        new_name = str(body["new_name"])
        old_team = team_of_experiment(current_name(str(body.get("experiment_id") or "")))
        if old_team and team_of_experiment(new_name) != old_team:
            return (
                f"An experiment stays with its team: rename it to {old_team}/<name>, "
                f"not {new_name!r}."
            )
        return _name_objection(user, new_name)
    return None


def _name_objection(user: HubUser, name: str) -> str | None:
    team = team_of_experiment(name)
    if team and team in user.teams:
        return None
    mine = ", ".join(user.teams) or "none"
    return (
        f"Experiment {name!r} must be named <team>/<name> with one of your teams "
        f"({mine}); for example {(user.teams or ('<team>',))[0]}/{name.rpartition('/')[2] or 'demo'}."
    )
