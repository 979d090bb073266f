"""The functions users call: ``import jupyter_mlplat as mlplat; mlplat.log(loss=0.1)``.

Each ``%mlplat`` command has its twin here with the same arguments. This layer
holds the process's current state (one :class:`Tracker`) and calls the domain
modules; it has no parsing or display logic.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from .identity import current_identity
from .settings import get_settings

_tracker = None


def _identity(retry_seconds: float | None = None):
    """Inside JupyterHub the platform service says who we are; elsewhere the settings do."""
    from .client import PlatformClient

    settings = get_settings()
    client = PlatformClient(settings, retry_seconds=retry_seconds)
    if client.transport == "http":
        return client.identity()
    return current_identity(settings)


def _get_tracker():
    global _tracker
    if _tracker is None:
        from .tracking import Tracker

        _tracker = Tracker(get_settings(), identity=_identity())
    return _tracker


def reset() -> None:
    """Forget the active experiment and run state (after changing settings; tests)."""
    global _tracker
    if _tracker is not None:
        _tracker._flush_quietly()
    _tracker = None


@dataclass
class Status:
    user: str
    teams: list[str]
    teams_source: str
    mode: str
    tracking_uri: str
    tracking_reachable: bool | None
    feature_repo: str
    feature_repo_ready: bool
    experiment: str | None
    active_run: str | None
    last_run: str | None
    data_dir: str
    problems: list[str] = field(default_factory=list)

    def rows(self) -> list[tuple[str, str]]:
        reach = {True: "reachable", False: "UNREACHABLE", None: "local store"}
        return [
            ("user", self.user),
            ("teams", f"{', '.join(self.teams) or 'none'} (from {self.teams_source})"),
            ("mode", self.mode),
            ("tracking", f"{self.tracking_uri} ({reach[self.tracking_reachable]})"),
            (
                "features",
                f"{self.feature_repo} ({'ready' if self.feature_repo_ready else 'not found'})",
            ),
            ("experiment", self.experiment or "none yet (set with %mlplat experiment NAME)"),
            ("active run", self.active_run or "none"),
            ("last run", self.last_run or "none"),
            ("data dir", self.data_dir),
        ]

    def __repr__(self) -> str:
        width = max(len(k) for k, _ in self.rows())
        lines = [f"{k:<{width}}  {v}" for k, v in self.rows()]
        lines += [f"! {p}" for p in self.problems]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in self.rows()
        )
        notes = "".join(f"<p>⚠ {html.escape(p)}</p>" for p in self.problems)
        return f"<table>{body}</table>{notes}"


def status() -> Status:
    """Who you are, your teams, the mode, the backends and what is active."""
    from pathlib import Path

    from .errors import ServiceUnavailable
    from .tracking import check_reachable

    settings = get_settings()
    tracker = _tracker
    problems: list[str] = []
    try:
        # Status must answer quickly even while the service is down.
        identity = tracker.identity if tracker else _identity(retry_seconds=2.0)
    except ServiceUnavailable as exc:
        problems.append(str(exc))
        identity = current_identity(settings)
    reachable: bool | None = None
    if settings.tracking_uri.startswith(("http://", "https://")):
        try:
            check_reachable(settings.tracking_uri, min(2.0, settings.tracking_retry_seconds))
            reachable = True
        except ServiceUnavailable as exc:
            reachable = False
            problems.append(str(exc))
    repo_ready = (Path(settings.feature_repo) / "feature_store.yaml").is_file()
    if not repo_ready:
        problems.append(
            f"No Feast repo at {settings.feature_repo}; run `mlplat demo features` or set "
            "MLPLAT_FEATURE_REPO."
        )
    return Status(
        user=identity.user,
        teams=list(identity.teams),
        teams_source=identity.source,
        mode=settings.mode,
        tracking_uri=settings.tracking_uri,
        tracking_reachable=reachable,
        feature_repo=settings.feature_repo,
        feature_repo_ready=repo_ready,
        experiment=tracker.experiment.name if tracker and tracker.experiment else None,
        active_run=tracker.active_run.run_id if tracker and tracker.active_run else None,
        last_run=tracker.last_run.run_id if tracker and tracker.last_run else None,
        data_dir=settings.home,
        problems=problems,
    )


def set_experiment(name: str, team: str | None = None):
    """Make ``<team>/<name>`` the active experiment (created if missing)."""
    return _get_tracker().set_experiment(name, team)


def start_run(
    name: str | None = None, params: Mapping[str, object] | None = None, autolog: bool | None = None
):
    """Start a run in the active experiment; end it with :func:`end_run`."""
    return _get_tracker().start_run(name, params, autolog)


def end_run(status: str = "FINISHED"):
    """End the active run, sending its buffered metrics first."""
    return _get_tracker().end_run(status)


@contextlib.contextmanager
def run(
    name: str | None = None, params: Mapping[str, object] | None = None, autolog: bool | None = None
) -> Iterator:
    """``with mlplat.run("baseline", params={"lr": 0.1}):`` — twin of ``%%mlplat run``."""
    with _get_tracker().run(name, params, autolog) as info:
        yield info


def log(metrics: Mapping[str, object] | None = None, /, *, step: int | None = None, **kwargs):
    """Log metrics to the active run (or the last one): ``mlplat.log(loss=0.2, acc=0.9)``.

    Metrics are buffered and sent in batches; names that are not Python
    identifiers go in the dict: ``mlplat.log({"val/loss": 0.3})``.
    """
    values = dict(metrics or {})
    values.update(kwargs)
    return _get_tracker().log_metrics(values, step)


def flush() -> int:
    """Send buffered metrics now; returns how many were sent."""
    return _get_tracker().flush() if _tracker is not None else 0


def active_run():
    return _tracker.active_run if _tracker else None


def last_run():
    """The active run, or the last one that ended, or ``None``."""
    if _tracker is None:
        return None
    return _tracker.active_run or _tracker.last_run


def get_features(features: str | Sequence[str], entities, *, historical: bool = False):
    """Feast features for ``entities`` as a pandas DataFrame (online unless ``historical``).

    With a run active, the feature references, views, row count and time range
    are logged to it as lineage.
    """
    from .features import get_features as retrieve

    result = retrieve(features, entities, historical=historical, repo=get_settings().feature_repo)
    tracker = _tracker
    if tracker is not None and tracker.active_run is not None:
        tracker.log_feature_lineage(result.lineage)
    return result.df


_clients: dict[int, object] = {}


def _client():
    """One client per settings object (the in-process one holds the store and MLflow)."""
    from .client import PlatformClient

    settings = get_settings()
    client = _clients.get(id(settings))
    if client is None or client.settings is not settings:
        _clients.clear()
        client = _clients[id(settings)] = PlatformClient(settings)
    return client


def register(run_id: str | None = None, *, model: str, artifact: str | None = None):
    """Register a run's model (default: the last run) as a new version of ``model``.

    The first team to register a model name owns it; other teams are refused.
    """
    if run_id is None:
        run = last_run()
        if run is None:
            from .errors import UsageError

            raise UsageError("There is no run to register; pass a RUN_ID or train in a run first.")
        run_id = run.run_id
    return _client().register_model(model, run_id, artifact)


def request_approval(model: str, version, *, target: str = "staging", reason: str | None = None):
    """Ask for ``model`` ``version`` to be approved for ``target``; checks run at once."""
    from .display import ApprovalView

    return ApprovalView(_client().request_approval(model, str(version), target, reason))


def list_approvals(*, pending: bool = False):
    """Approval requests you may see (your teams', or all for reviewers and admins)."""
    from .display import ApprovalListView

    return ApprovalListView(_client().iterate("list_approvals", pending=pending, limit=1000))


def show_approval(request_id: int):
    from .display import ApprovalView

    return ApprovalView(_client().show_approval(request_id))


def approve(request_id: int, *, comment: str | None = None):
    """Approve a request (reviewers or the model's owner; never the requester)."""
    from .display import ApprovalView

    return ApprovalView(_client().approve(request_id, comment))


def reject(request_id: int, *, comment: str | None = None):
    """Reject a request; a comment saying why is required."""
    from .display import ApprovalView

    return ApprovalView(_client().reject(request_id, comment))


def deploy(model: str, version, *, target: str = "staging", canary: int | None = None):
    """Serve an approved ``model`` ``version`` for ``target`` (all traffic, or ``canary``
    percent next to the current version)."""
    from .display import DeploymentView

    return DeploymentView(_client().deploy(model, str(version), target, canary))


def deployments():
    """The deployments you may see: traffic split, servers and provenance."""
    from .display import DeploymentListView

    return DeploymentListView(_client().iterate("list_deployments", limit=1000))


def _deployment_name(model: str, target: str) -> str:
    return f"{model}-{target}"


def promote(model: str, *, target: str = "staging"):
    """Give the canary of ``model``'s ``target`` deployment all the traffic."""
    from .display import DeploymentView

    return DeploymentView(_client().promote(_deployment_name(model, target)))


def rollback(model: str, *, target: str = "staging"):
    """Drop the canary; without one, serve the previous version again."""
    from .display import DeploymentView

    return DeploymentView(_client().rollback(_deployment_name(model, target)))


def undeploy(model: str, *, target: str = "staging"):
    """Stop serving ``model`` for ``target``."""
    from .display import DeploymentView

    return DeploymentView(_client().undeploy(_deployment_name(model, target)))


def predict(model: str, data, *, target: str = "staging"):
    """Predictions of the deployment of ``model`` for ``target`` on ``data`` (a DataFrame, a
    list of records or a dict of columns), as a DataFrame (one column per model output)."""
    import pandas as pd

    from .serving.v2 import frame_of

    frame = frame_of(data)
    records = frame.to_dict(orient="records")
    answer = _client().predict(_deployment_name(model, target), records, None)
    result = pd.DataFrame(answer.outputs)
    result.attrs.update(deployment=answer.deployment, version=answer.version)
    return result


def audit_verify():
    """Re-compute the audit chain; names the first broken event (reviewers and admins)."""
    from .display import AuditVerifyView

    return AuditVerifyView(_client().audit_verify())


def audit_export(fmt: str = "jsonl", output: str | None = None):
    """Write every audit event as ``jsonl`` or ``csv`` to ``output`` (default: stdout)."""
    import sys

    from .display import Message
    from .governance.export import iso, write_records

    records = ({**e.model_dump(), "time": iso(e.time)} for e in _client().iter_audit_events())
    count = write_records(records, fmt, output or sys.stdout)
    return Message(f"Exported {count} events" + (f" to {output}." if output else "."))


def create_demo_features(path: str | None = None):
    """Generate, apply and materialize the demo Feast repo (default: the configured one)."""
    from .display import Message
    from .features import create_demo_repo

    repo = create_demo_repo(path or get_settings().feature_repo)
    return Message(f"Demo feature repo ready at {repo}")


def manage_hub_user(action: str, args):
    """``mlplat hub add-user | remove-user | set-groups | set-password`` on the embedded hub's
    users file."""
    from pathlib import Path

    from .display import Message
    from .hub import users

    users_file = Path(get_settings().home) / "hub" / "users.yaml"
    if action == "add":
        password = users.add_user(users_file, args.name, args.group, password=args.password)
        groups = ", ".join(args.group) or "no groups"
        return Message(f"Added {args.name} ({groups}); password: {password}")
    bound = get_settings().hub_cache_seconds
    if action == "remove":
        users.remove_user(users_file, args.name)
        return Message(
            f"Removed {args.name}: the hub refuses their logins and tokens from the next "
            f"request, the platform service and MLflow within {bound:g} s; a running server "
            "keeps running until it is stopped."
        )
    if action == "set-groups":
        groups = users.set_groups(users_file, args.name, args.group)
        return Message(
            f"{args.name} is now in {', '.join(groups) or 'no groups'}: the hub applies it to "
            f"their next request, the platform service and MLflow within {bound:g} s."
        )
    password = users.set_password(users_file, args.name, password=args.password)
    return Message(f"New password of {args.name}: {password}")
