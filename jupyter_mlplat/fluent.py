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


def deploy(model: str, version, *, target: str = "staging", canary: int | None = None,
           progress: bool = False, in_notebook: bool = False):  # fmt: skip
    """Serve an approved ``model`` ``version`` for ``target`` (all traffic, or ``canary``
    percent next to the current version); ``progress`` shows the wait for the server."""
    from .display import DeploymentView

    what = f"deploy {model} v{version} to {target}"
    call = lambda: _client().deploy(model, str(version), target, canary)  # noqa: E731
    return DeploymentView(_with_progress(what, call, progress, in_notebook))


def _with_progress(what: str, call, progress: bool, in_notebook: bool, *, poll: float = 0.5,
                   waiting: str = "starting the model server and waiting for it to be ready"):  # fmt: skip
    """``call()``'s result; with ``progress``, the wait shown meanwhile (the same display
    as a job's): the request runs in a thread, this one ticks the elapsed time."""
    if not progress:
        return call()
    import threading
    import time

    from .display import Progress

    shown = Progress(what, in_notebook)
    result, started = {}, time.monotonic()

    def target():
        try:
            result["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            result["error"] = exc

    worker = threading.Thread(target=target, name="mlplat-progress", daemon=True)
    worker.start()
    while worker.is_alive():
        shown.stage(waiting, time.monotonic() - started)
        worker.join(poll)
    elapsed = time.monotonic() - started
    if "error" in result:
        shown.stage(f"failed: {result['error']}", elapsed, "failed")
        raise result["error"]
    shown.stage("ready", elapsed, "succeeded")
    return result["value"]


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


def rollback(model: str, *, target: str = "staging", progress: bool = False,
             in_notebook: bool = False):  # fmt: skip
    """Drop the canary; without one, serve the previous version again."""
    from .display import DeploymentView

    call = lambda: _client().rollback(_deployment_name(model, target))  # noqa: E731
    return DeploymentView(_with_progress(
        f"rollback {model} on {target}", call, progress, in_notebook,
        waiting="moving the traffic (a previous version's server is started if needed)",
    ))  # fmt: skip


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
    from .errors import UsageError
    from .hub import users

    users_file = Path(get_settings().home) / "hub" / "users.yaml"
    if not users_file.is_file():
        # In a user's kernel this is their own data dir, which no hub reads.
        raise UsageError(
            f"`mlplat hub` edits the embedded hub's users file, and {users_file} does not "
            "exist: run it in a terminal of the account that runs `mlplat up`, with the "
            "hub's MLPLAT_HOME, after the hub has started once."
        )
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


# ---- production notebooks (jobs) ----

FINAL_JOB_STATES = ("succeeded", "failed", "cancelled", "interrupted", "skipped")


def _job_notebook(notebook: str):
    """``(path relative to your root, notebook)`` of the notebook you name (relative to the
    current folder), read here, as you: the platform never opens a path you give."""
    import os
    from pathlib import Path

    from .jobs import notebooks

    settings = get_settings()
    root = Path(settings.notebook_root).resolve()
    here = Path.cwd().resolve()
    if not here.is_relative_to(root):  # e.g. a terminal elsewhere: this folder is the root
        root = here
    given = os.path.relpath(here / notebook, root) if not os.path.isabs(notebook) else notebook
    if not os.path.isabs(notebook) and (given == ".." or given.startswith("../")):
        from .errors import UsageError

        raise UsageError(
            f"The notebook {notebook!r} is outside your root folder {root}; jobs run notebooks "
            "from inside it."
        )
    path = notebooks.resolve_notebook(root, given, max_bytes=settings.jobs_max_notebook_bytes)
    nb = notebooks.read_notebook(path, settings.jobs_max_notebook_bytes, root=root, shown=notebook)
    return path.relative_to(root.resolve()).as_posix(), nb


def _job_parameters(nb, parameters) -> dict:
    """``parameters`` as a dict: ``KEY=VALUE`` texts are converted by the declared types."""
    from .jobs import notebooks

    if parameters is None:
        return {}
    if isinstance(parameters, Mapping):
        return dict(parameters)
    return notebooks.parse_cli_parameters(list(parameters), notebooks.declared_parameters(nb))


def job_run(notebook: str, parameters=None, *, profile: str = "", team: str | None = None,
            wait: bool = False, in_notebook: bool = False):  # fmt: skip
    """Run ``notebook`` now through the platform, in a fresh kernel, as you: the run at once,
    or (``wait``) when it ends, with its progress shown meanwhile."""
    from .display import JobView

    path, nb = _job_notebook(notebook)
    run = _client().run_job(path, dict(nb), _job_parameters(nb, parameters), profile, team)
    if wait:
        run = wait_for_job(run.id, in_notebook=in_notebook)
    return JobView(run)


def job_rerun(run_id: int, parameters=None, *, wait: bool = False, in_notebook: bool = False):
    """Run run ``run_id``'s notebook snapshot again, as you, with ``parameters`` (a mapping,
    or ``KEY=VALUE`` texts, each value read as JSON, else as text) replacing its values; the
    platform checks them against the snapshot's parameters cell."""
    import json

    from .display import JobView
    from .errors import UsageError

    given: dict = {}
    if isinstance(parameters, Mapping):
        given = dict(parameters)
    else:
        for text in parameters or ():
            name, equals, value = str(text).partition("=")
            if not equals or not name.strip():
                raise UsageError(f"{text!r} is not KEY=VALUE; write e.g. -p x=5.")
            try:
                given[name.strip()] = json.loads(value)
            except ValueError:
                given[name.strip()] = value
    run = _client().rerun_job(run_id, given)
    if wait:
        run = wait_for_job(run.id, in_notebook=in_notebook)
    return JobView(run)


def wait_for_job(run_id: int, *, in_notebook: bool = False, poll: float = 1.0, timeout=None):
    """The run once it has ended, its cells' progress shown meanwhile (a widget in a
    notebook, lines on a terminal)."""
    import time

    from .display import Progress

    client = _client()
    progress = Progress(f"job run {run_id}", in_notebook)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        run = client.show_job(run_id)
        progress.update(run.cells_done, run.cells_total, run.status)
        if run.status in FINAL_JOB_STATES:
            return run
        if deadline is not None and time.monotonic() > deadline:
            return run
        time.sleep(poll)


def job_schedule(notebook: str, cron: str, *, timezone: str = "UTC", parameters=None,
                 name: str | None = None, missed: str = "run_once", profile: str = "",
                 team: str | None = None):  # fmt: skip
    """Run a snapshot of ``notebook`` on the cron schedule ``cron`` from the platform service,
    as you (your server may stop: the runs still happen)."""
    from pathlib import Path

    from .display import ScheduleView

    path, nb = _job_notebook(notebook)
    name = name or Path(path).stem.replace(" ", "-")
    return ScheduleView(
        _client().create_schedule(
            name,
            path,
            dict(nb),
            cron,
            timezone,
            missed,
            _job_parameters(nb, parameters),
            profile,
            team,
        )  # fmt: skip
    )


def jobs(*, schedules: bool = False, status: str | None = None):
    """Your teams' job runs, newest first (or, with ``schedules``, the schedules)."""
    from .display import JobListView, ScheduleListView

    client = _client()
    if schedules:
        return ScheduleListView(client.iterate("list_schedules", limit=1000))
    return JobListView(client.list_jobs(status=status, limit=200).items)


def job(run_id: int):
    from .display import JobView

    return JobView(_client().show_job(run_id))


def job_logs(run_id: int) -> str:
    """The run's log: papermill's and the cells' output."""
    from .display import Message

    logs = _client().job_logs(run_id)
    return Message(("[… earlier lines cut]\n" if logs.truncated else "") + logs.text)


def job_output(run_id: int) -> dict | None:
    """The executed notebook of a finished run, as nbformat JSON (None if none was kept)."""
    return _client().job_notebook(run_id).notebook


def job_cancel(run_id: int):
    from .display import JobView

    return JobView(_client().cancel_job(run_id))


def schedule_change(schedule_id: int, action: str):
    """``pause``, ``resume`` or ``delete`` schedule ``schedule_id``."""
    from .display import ScheduleView

    call = {"pause": "pause_schedule", "resume": "resume_schedule", "delete": "delete_schedule"}
    return ScheduleView(getattr(_client(), call[action])(schedule_id))


def run_notebook(notebook: str, parameters=None, *, output: str | None = None,
                 profile: str = "", kernel: str | None = None) -> int:  # fmt: skip
    """``mlplat run``: run ``notebook`` here with papermill in a fresh kernel (as you, not
    through the platform), in an MLflow run of ``<team>/jobs``; prints where the executed
    notebook and the MLflow run are; the exit code is non-zero when a cell failed."""
    import json
    import os
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from .jobs import execute, notebooks

    settings = get_settings()
    path, nb = _job_notebook(notebook)
    parameters = notebooks.check_parameters(nb, _job_parameters(nb, parameters))
    content, digest = notebooks.snapshot_content(nb)
    identity = _identity()
    team = identity.teams[0] if identity.teams else "default"
    target = Path(output) if output else Path.cwd() / f"{Path(path).stem}.executed.ipynb"
    environment = {}
    if profile:
        from .profiles import load_profiles

        chosen = load_profiles(settings.profiles_dir).get(profile)
        if chosen is None:
            from .errors import UsageError

            raise UsageError(f"There is no profile {profile!r}; `mlplat profiles list` lists them.")
        environment = dict(chosen.environment)
    with tempfile.TemporaryDirectory(prefix="mlplat-run-") as work:
        source = Path(work) / "input.ipynb"
        source.write_bytes(content)
        spec = {
            "input": str(source), "output": str(target.resolve()), "parameters": parameters,
            "kernel": kernel or settings.jobs_kernel,
            "cwd": str((Path(settings.notebook_root) / path).resolve().parent),
            "tracking_uri": settings.tracking_uri, "experiment": f"{team}/jobs",
            "run_name": Path(path).stem,
            "tags": {"mlflow.user": identity.user, "mlplat.team": team,
                     "mlplat.job.notebook": path, "mlplat.job.snapshot_sha256": digest,
                     "mlflow.source.name": path},
        }  # fmt: skip
        (Path(work) / "job.json").write_text(json.dumps(spec))
        env = {**os.environ, **environment, "MLPLAT_NOTEBOOK_PATH": path}
        done = subprocess.run(
            [sys.executable, "-m", execute.__name__, str(Path(work) / "job.json")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    run_line = next(
        (x for x in done.stdout.splitlines() if x.startswith("MLPLAT_MLFLOW_RUN_ID=")), ""
    )
    mlflow_run = run_line.partition("=")[2]
    if done.returncode != execute.OK:
        sys.stderr.write(done.stdout[-4000:])
    outcome = "succeeded" if done.returncode == execute.OK else "FAILED"
    print(f"{path}: {outcome} (snapshot sha256 {digest})")
    if target.exists():
        print(f"executed notebook: {target}")
    if mlflow_run:
        print(f"MLflow run: {mlflow_run} in experiment {team}/jobs at {settings.tracking_uri}")
    if done.returncode == execute.CELL_FAILED:
        executed = notebooks.read_notebook(target, settings.jobs_max_notebook_bytes)
        cell = notebooks.failing_cell(executed) or {}
        print(f"failing cell {cell.get('index')}: {cell.get('ename')}: {cell.get('evalue')}")
    return 0 if done.returncode == execute.OK else 1


# ---- pipelines ----


def notebook_step(notebook: str, parameters=None, *, outputs: dict | None = None,
                  image: str | None = None):  # fmt: skip
    """A KFP component running a snapshot of ``notebook`` (relative to the current folder)
    with papermill: its inputs are the notebook's declared parameters (``parameters``
    give their defaults), its outputs the executed notebook, the step's MLflow run and the
    ``outputs`` declared here (``{"rows": int}``, recorded in the notebook with
    ``mlplat.step_output("rows", n)``)."""
    from .pipelines.notebook_step import DEFAULT_IMAGE
    from .pipelines.notebook_step import notebook_step as build

    path, nb = _job_notebook(notebook)
    settings = get_settings()
    return build(
        path, nb, _job_parameters(nb, parameters), outputs=outputs,
        image=image or DEFAULT_IMAGE, max_bytes=settings.jobs_max_notebook_bytes,
    )  # fmt: skip


def step_output(name: str, value) -> None:
    """Record output ``name`` of the notebook step this notebook runs as."""
    from .pipelines.step_runtime import step_output as record

    record(name, value)


def pipeline_submit(pipeline, arguments=None, *, mode: str = "local", experiment: str = "",
                    profile: str = "", team: str | None = None, wait: bool = False,
                    in_notebook: bool = False, namespace: dict | None = None):  # fmt: skip
    """Compile the ``@dsl.pipeline`` ``pipeline`` (or its name in ``namespace``) and run it:
    ``local`` in the platform's pool with kfp.local, ``kfp`` on Kubeflow Pipelines. The
    run at once, or (``wait``) when it ends, its tasks' states shown meanwhile."""
    from .display import PipelineRunView
    from .pipelines import compile as compiling

    if isinstance(pipeline, str):
        pipeline = compiling.find_pipeline(namespace or {}, pipeline)
    else:
        compiling.find_pipeline({"pipeline": pipeline}, "pipeline")
    if isinstance(arguments, list | tuple):
        checked = compiling.parse_cli_arguments(list(arguments), pipeline)
    else:
        checked = compiling.check_arguments(pipeline, dict(arguments or {}))
    compiled = compiling.compile_pipeline(pipeline)
    run = _client().submit_pipeline(
        pipeline.name, compiled, checked, mode, experiment, profile, team
    )  # fmt: skip
    if wait:
        run = wait_for_pipeline(run.id, in_notebook=in_notebook)
    return PipelineRunView(run)


def wait_for_pipeline(run_id: int, *, in_notebook: bool = False, poll: float = 1.0, timeout=None):
    """The run once it has ended, its tasks' states shown meanwhile."""
    import time

    from .display import Progress

    client = _client()
    progress = Progress(f"pipeline run {run_id}", in_notebook)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        run = client.show_pipeline_run(run_id)
        done = sum(t.state in ("succeeded", "failed", "skipped") for t in run.tasks)
        states = ", ".join(f"{t.name} {t.state}" for t in run.tasks)
        progress.update(done, len(run.tasks), run.status, unit="tasks", detail=states)
        if run.status in FINAL_JOB_STATES:
            return run
        if deadline is not None and time.monotonic() > deadline:
            return run
        time.sleep(poll)


def pipelines(*, status: str | None = None):
    """Your teams' pipeline runs, newest first."""
    from .display import PipelineRunListView

    return PipelineRunListView(_client().list_pipeline_runs(status=status, limit=200).items)


def pipeline_status(run_id: int):
    from .display import PipelineRunView

    return PipelineRunView(_client().show_pipeline_run(run_id))


def pipeline_logs(run_id: int, task: str | None = None):
    """The run's log, or one task's."""
    from .display import Message

    logs = _client().pipeline_logs(run_id, task)
    return Message(("[… earlier lines cut]\n" if logs.truncated else "") + logs.text)


def pipeline_notebook(run_id: int, task: str) -> dict | None:
    """The executed notebook of the notebook step ``task`` (nbformat JSON, or None)."""
    return _client().pipeline_task_notebook(run_id, task).notebook


def pipeline_cancel(run_id: int):
    from .display import PipelineRunView

    return PipelineRunView(_client().cancel_pipeline_run(run_id))
