"""The one command table: every ``%mlplat X`` is ``mlplat X`` and the reverse.

Each :class:`Command` declares its words, arguments (argparse, used as they are by
both the magic and the CLI), help text and what it does (a call into the fluent API
or the client). :mod:`.magics` and :mod:`.cli` only find the command, parse with its
parser and present the value. A command that makes sense on one side only (the cell
magic ``run``, ``up`` in a terminal) still has its name on the other, answering one
sentence that says where it belongs.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import UsageError


class HelpShown(Exception):
    """``-h`` was asked for; the help is printed and nothing else happens."""


class Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` instead of exiting."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}; see `{self.prog} -h`.")

    def exit(self, status=0, message=None):
        if message:
            print(message, file=sys.stderr)
        raise HelpShown()


@dataclass(frozen=True, eq=False)
class Arg:
    """One argparse argument: ``Arg("--target", default="staging", help=...)``."""

    flags: tuple[str, ...]
    options: dict

    def __init__(self, *flags: str, **options):
        object.__setattr__(self, "flags", flags)
        object.__setattr__(self, "options", options)


@dataclass
class Env:
    """Where a command runs: the notebook's namespace (magic) or none (CLI)."""

    side: str  # "magic" or "cli"
    namespace: dict | None = None
    execute: Callable[[str], Any] | None = None  # run a cell's code (cell magics)
    cell: str | None = None

    @property
    def in_notebook(self) -> bool:
        return self.side == "magic"


@dataclass(frozen=True, eq=False)
class Command:
    words: tuple[str, ...]
    help: str
    run: Callable[[argparse.Namespace, Env], Any]
    args: tuple[Arg, ...] = ()
    usage: str = ""  # the arguments as shown in help (default: from the parser)
    magic: bool = True
    cli: bool = True
    cell: bool = False  # a cell magic (%%mlplat)
    elsewhere: str = ""  # the sentence a side without this command answers
    fast: Callable[[list[str]], argparse.Namespace | None] | None = None
    returns_code: bool = False  # run returns an exit code (CLI) instead of a value

    @property
    def name(self) -> str:
        return " ".join(self.words)

    def parser(self, prog: str) -> Parser:
        return _parser(self, prog)

    def parse(self, prog: str, args: Sequence[str]) -> argparse.Namespace:
        if self.fast is not None:
            fast = self.fast(list(args))
            if fast is not None:
                return fast
        return _parse(self, prog, tuple(args))


@functools.cache
def _parser(command: Command, prog: str) -> Parser:
    parser = Parser(prog=f"{prog} {command.name}", description=command.help, allow_abbrev=False)
    for arg in command.args:
        parser.add_argument(*arg.flags, **arg.options)
    return parser


@functools.lru_cache(maxsize=512)
def _parse(command: Command, prog: str, args: tuple[str, ...]) -> argparse.Namespace:
    """Parsed arguments; cached because the same line often runs in a loop."""
    return _parser(command, prog).parse_args(list(args))


# ---- what the commands do ----


def _fluent():
    from . import fluent

    return fluent


def _status(ns, env):
    return _fluent().status()


def _experiment(ns, env):
    return _fluent().set_experiment(ns.name, team=ns.team)


def _run_cell(ns, env):
    from .params import parse_pairs

    fluent = _fluent()
    params = parse_pairs(ns.param)
    with fluent.run(ns.name, params=params, autolog=False if ns.no_autolog else None):
        value = env.execute(env.cell)
    print(repr(fluent.last_run()))
    return value


def _log_fast(args: list[str]) -> argparse.Namespace | None:
    # Logging sits in training loops: skip argparse when there are no options.
    if any(arg.startswith("-") for arg in args):
        return None
    return argparse.Namespace(pairs=args, step=None)


def _log(ns, env):
    from .params import parse_pairs

    if not ns.pairs:
        raise UsageError("Give at least one metric, like `%mlplat log loss=0.25`.")
    return _fluent().log(parse_pairs(ns.pairs), step=ns.step)


def _table_input(ns, env, name: str, flag: str, what: str):
    """The table a command reads: a notebook variable (``-o`` checked too), else a file."""
    if not env.in_notebook:
        return _read_table(name)
    if name not in env.namespace:
        raise UsageError(
            f"There is no variable named {name!r} in this notebook; pass the name of {what} "
            f"to {flag}."
        )
    if ns.output and not ns.output.isidentifier():
        raise UsageError(f"-o needs a Python variable name, got {ns.output!r}.")
    return env.namespace[name]


def _table_output(ns, env, df, noun: str):
    """``df`` stored in the ``-o`` variable (a notebook) or file (a terminal), or returned."""
    if ns.output and env.in_notebook:
        env.namespace[ns.output] = df
    elif ns.output:
        df.to_csv(ns.output, index=False)
        from .display import Message

        return Message(f"Wrote {len(df)} {noun} to {ns.output}.")
    return df


def _features(ns, env):
    what = "a pandas DataFrame with the entity columns"
    entities = _table_input(ns, env, ns.entities, "--entities", what)
    df = _fluent().get_features(ns.features, entities, historical=ns.historical)
    return _table_output(ns, env, df, "rows")


def _read_table(path: str):
    import pandas as pd

    try:
        if path.endswith(".parquet"):
            return pd.read_parquet(path)
        return pd.read_csv(path, parse_dates=["event_timestamp"] if _has_ts(path) else False)
    except FileNotFoundError:
        raise UsageError(
            f"There is no file {path!r}; give a CSV or parquet file of entities."
        ) from None


def _has_ts(path: str) -> bool:
    with open(path, encoding="utf-8") as stream:
        return "event_timestamp" in stream.readline()


def _register(ns, env):
    if ns.run_id is None and not env.in_notebook:
        raise UsageError("Give the RUN_ID to register: `mlplat register RUN_ID --model NAME`.")
    return _fluent().register(ns.run_id, model=ns.model, artifact=ns.artifact)


def _approval(action):
    def run(ns, env):
        fluent = _fluent()
        if action == "request":
            return fluent.request_approval(ns.model, ns.version, target=ns.target, reason=ns.reason)
        if action == "list":
            return fluent.list_approvals(pending=ns.pending)
        if action == "show":
            return fluent.show_approval(ns.id)
        if action == "approve":
            return fluent.approve(ns.id, comment=ns.comment)
        return fluent.reject(ns.id, comment=ns.comment)

    return run


def _serving(action):
    def run(ns, env):
        fluent = _fluent()
        if action == "deploy":
            return fluent.deploy(
                ns.model, ns.version, target=ns.target, canary=ns.canary, progress=True,
                in_notebook=env.in_notebook,
            )  # fmt: skip
        if action == "list":
            return fluent.deployments()
        if action == "rollback":
            return fluent.rollback(
                ns.model, target=ns.target, progress=True, in_notebook=env.in_notebook
            )
        return getattr(fluent, action)(ns.model, target=ns.target)

    return run


def _predict(ns, env):
    data = _table_input(ns, env, ns.data, "--data", "a DataFrame (or list of records)")
    result = _fluent().predict(ns.model, data, target=ns.target)
    return _table_output(ns, env, result, "predictions")


def _job_run(ns, env):
    return _fluent().job_run(
        ns.notebook, ns.param, profile=ns.profile, team=ns.team, wait=ns.wait,
        in_notebook=env.in_notebook,
    )  # fmt: skip


def _run_notebook(ns, env):
    return _fluent().run_notebook(
        ns.notebook, ns.param, output=ns.output, profile=ns.profile, kernel=ns.kernel
    )


def _pipeline_namespace(ns, env) -> dict:
    """Where FUNC is: the notebook's namespace, or (CLI) the file of ``FILE.py:FUNC``."""
    if env.in_notebook:
        return env.namespace
    path, sep, name = ns.func.rpartition(":")
    if not sep or not path.endswith(".py"):
        raise UsageError(
            f"{ns.func!r} names no file; in a terminal give FILE.py:FUNC (the file that "
            "defines the @dsl.pipeline function)."
        )
    import runpy

    try:
        namespace = runpy.run_path(path, run_name="mlplat_pipeline")
    except FileNotFoundError:
        raise UsageError(f"There is no file {path}.") from None
    if name not in namespace:
        raise UsageError(f"{path} defines no {name}; give FILE.py:FUNC of its pipeline function.")
    ns.func = name
    return namespace


def _pipeline_submit(ns, env):
    namespace = _pipeline_namespace(ns, env)
    return _fluent().pipeline_submit(
        ns.func, ns.arg, mode="kfp" if ns.kfp else "local", experiment=ns.experiment or "",
        profile=ns.profile, team=ns.team, wait=ns.wait, in_notebook=env.in_notebook,
        namespace=namespace,
    )  # fmt: skip


def _pipeline(action):
    def run(ns, env):
        fluent = _fluent()
        if action == "list":
            return fluent.pipelines(status=ns.status)
        if action == "status":
            if ns.notebook:
                import json

                from .display import Message

                notebook = fluent.pipeline_notebook(ns.id, ns.notebook)
                if notebook is None:
                    raise UsageError(f"Task {ns.notebook} of run {ns.id} kept no notebook.")
                return Message(json.dumps(notebook, indent=1))
            return fluent.pipeline_status(ns.id)
        if action == "logs":
            return fluent.pipeline_logs(ns.id, ns.task)
        return fluent.pipeline_cancel(ns.id)

    return run


def _job_schedule(ns, env):
    return _fluent().job_schedule(
        ns.notebook, ns.cron, timezone=ns.timezone, parameters=ns.param, name=ns.name,
        missed=ns.missed, profile=ns.profile, team=ns.team,
    )  # fmt: skip


def _job_list(ns, env):
    return _fluent().jobs(schedules=ns.schedules, status=ns.status)


def _job_show(ns, env):
    if ns.notebook:
        import json

        from .display import Message

        output = _fluent().job_output(ns.id)
        return Message(json.dumps(output, indent=1) if output else "No executed notebook kept.")
    return _fluent().job(ns.id)


def _job_logs(ns, env):
    return _fluent().job_logs(ns.id)


def _job_rerun(ns, env):
    return _fluent().job_rerun(ns.id, ns.param, wait=ns.wait, in_notebook=env.in_notebook)


def _job_cancel(ns, env):
    return _fluent().job_cancel(ns.id)


def _schedule(action):
    def run(ns, env):
        return _fluent().schedule_change(ns.id, action)

    return run


def _audit_verify(ns, env):
    return _fluent().audit_verify()


def _audit_export(ns, env):
    return _fluent().audit_export(ns.format, ns.output)


def _profiles(action):
    def run(ns, env):
        from .profiles import cli

        return cli.cmd_validate(ns) if action == "validate" else cli.cmd_render(ns)

    return run


def _demo_features(ns, env):
    return _fluent().create_demo_features(ns.path)


def _hub_users(action):
    def run(ns, env):
        return _fluent().manage_hub_user(action, ns)

    return run


def _up(ns, env):
    from .embedded import up
    from .settings import get_settings

    return up(get_settings(), config_file=ns.config)


_TARGET = Arg("--target", default="staging", choices=("staging", "production"))
_FOLDER = Arg(
    "--folder", metavar="DIR", default=None,
    help="profiles folder (default: c.MlplatHub.profiles_dir, else the shipped profiles)",
)  # fmt: skip
_ID = Arg("id", type=int, metavar="ID")
_PARAM = Arg("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
             help="a parameter declared in the notebook's parameters cell")  # fmt: skip
_PROFILE = Arg("--profile", default="", metavar="SLUG", help="default: your team's default")
_TEAM = Arg("--team", default=None, help="default: your only team")

COMMANDS: tuple[Command, ...] = (
    Command(("status",), "who am I, teams, mode, backends, URLs", _status),
    Command(
        ("experiment",),
        "set the active experiment (team-scoped: <team>/NAME)",
        _experiment,
        (Arg("name", metavar="NAME"), Arg("--team")),
    ),  # fmt: skip
    Command(
        ("run",),
        "run the cell inside an MLflow run",
        _run_cell,
        (
            Arg("name", nargs="?", metavar="NAME"),
            Arg("-p", "--param", action="append", default=[], metavar="KEY=VALUE"),
            Arg("--no-autolog", action="store_true"),
        ),
        cli=False,
        cell=True,
        elsewhere="`run` is the cell magic `%%mlplat run`: it runs a notebook cell inside an "
        "MLflow run; use it on the first line of a notebook cell.",
    ),  # fmt: skip
    Command(
        ("log",),
        "log metrics to the active / last run",
        _log,
        (Arg("pairs", nargs="*", metavar="KEY=VALUE"), Arg("--step", type=int)),
        cli=False,
        fast=_log_fast,
        elsewhere="`log` sends metrics to the notebook's active run; use `%mlplat log` in the "
        "notebook (or mlflow's own client from a script).",
    ),  # fmt: skip
    Command(
        ("features",),
        "Feast features as a DataFrame (online unless --historical)",
        _features,
        (
            Arg("features", metavar="VIEW:FEATURE[,...]"),
            Arg(
                "--entities",
                required=True,
                metavar="VAR",
                help="a DataFrame variable (notebook) or a CSV/parquet file (CLI)",
            ),
            Arg("--historical", action="store_true"),
            Arg(
                "-o",
                "--output",
                metavar="VAR",
                help="store the result in this variable (notebook) or CSV file (CLI)",
            ),
        ),
    ),  # fmt: skip
    Command(
        ("register",),
        "register a run's model (default: the last run) as a new version",
        _register,
        (
            Arg("run_id", nargs="?", metavar="RUN_ID"),
            Arg("--model", required=True),
            Arg("--artifact", help="the logged model's name, id (m-...) or artifact path"),
        ),
    ),  # fmt: skip
    Command(
        ("approval", "request"),
        "ask for a version to be approved (checks run at once)",
        _approval("request"),
        (
            Arg("model", metavar="MODEL"),
            Arg("version", metavar="VERSION"),
            _TARGET,
            Arg("--reason"),
        ),
    ),  # fmt: skip
    Command(
        ("approval", "list"),
        "approval requests you may see",
        _approval("list"),
        (Arg("--pending", action="store_true"),),
    ),  # fmt: skip
    Command(("approval", "show"), "one request with its checks", _approval("show"), (_ID,)),
    Command(
        ("approval", "approve"),
        "approve a request (reviewers or the model's owner)",
        _approval("approve"),
        (_ID, Arg("--comment")),
    ),  # fmt: skip
    Command(
        ("approval", "reject"),
        "reject a request (a comment is required)",
        _approval("reject"),
        (_ID, Arg("--comment")),
    ),  # fmt: skip
    Command(("audit", "verify"), "re-compute the audit chain (reviewers, admins)", _audit_verify),
    Command(
        ("audit", "export"),
        "write the audit log as JSON lines or CSV (reviewers, admins)",
        _audit_export,
        (
            Arg("--format", choices=("jsonl", "csv"), default="jsonl"),
            Arg("--output", "-o", help="file (default: standard output)"),
        ),
    ),  # fmt: skip
    Command(
        ("profiles", "validate"),
        "check every team profile file",
        _profiles("validate"),
        (_FOLDER,),
        returns_code=True,
    ),  # fmt: skip
    Command(
        ("profiles", "render"),
        "print the KubeSpawner profile_list or Helm values",
        _profiles("render"),
        (
            Arg("--format", choices=["kubespawner", "helm-values"], required=True),
            Arg(
                "--group",
                action="append",
                default=None,
                metavar="G",
                help="only the profiles of these JupyterHub groups (kubespawner; repeatable)",
            ),
            Arg("--output", choices=["yaml", "json"], default="yaml"),
            _FOLDER,
        ),
        returns_code=True,
    ),  # fmt: skip
    Command(
        ("demo", "features"),
        "create, apply and materialize the demo Feast repo",
        _demo_features,
        (Arg("path", nargs="?", help="default: the configured feature repo"),),
    ),  # fmt: skip
    Command(
        ("deploy",),
        "serve an approved version (all traffic, or --canary PERCENT next to the current)",
        _serving("deploy"),
        (
            Arg("model", metavar="MODEL"),
            Arg("version", metavar="VERSION"),
            _TARGET,
            Arg("--canary", type=int, metavar="PERCENT", help="1-99: share of the traffic"),
        ),
    ),  # fmt: skip
    Command(("deployments",), "deployments you may see", _serving("list"), ()),
    Command(
        ("promote",),
        "give the canary all the traffic",
        _serving("promote"),
        (Arg("model", metavar="MODEL"), _TARGET),
    ),  # fmt: skip
    Command(
        ("rollback",),
        "drop the canary, or go back to the previous version",
        _serving("rollback"),
        (Arg("model", metavar="MODEL"), _TARGET),
    ),  # fmt: skip
    Command(
        ("undeploy",),
        "stop serving a model for a target",
        _serving("undeploy"),
        (Arg("model", metavar="MODEL"), _TARGET),
    ),  # fmt: skip
    Command(
        ("predict",),
        "predictions of a deployment (a DataFrame back)",
        _predict,
        (
            Arg("model", metavar="MODEL"),
            Arg(
                "--data",
                required=True,
                metavar="VAR",
                help="a DataFrame variable (in a terminal: a CSV or parquet file)",
            ),
            _TARGET,
            Arg("-o", "--output", metavar="VAR", help="store the result (terminal: a file)"),
        ),
    ),  # fmt: skip
    Command(
        ("run",),
        "run a notebook here with papermill in a fresh kernel (exit code 1 if a cell fails)",
        _run_notebook,
        (
            Arg("notebook", metavar="NOTEBOOK"),
            _PARAM,
            _PROFILE,
            Arg("--output", metavar="PATH", help="executed notebook (default NAME.executed.ipynb)"),
            Arg("--kernel", metavar="NAME", help="Jupyter kernel (default: jobs_kernel)"),
        ),
        magic=False,
        returns_code=True,
        elsewhere="`mlplat run NOTEBOOK` runs a notebook from a terminal; in a notebook use "
        "`%mlplat job run NOTEBOOK`.",
    ),  # fmt: skip
    Command(
        ("job", "run"),
        "run a notebook now through the platform, as you (--wait shows its progress)",
        _job_run,
        (
            Arg("notebook", metavar="NOTEBOOK"),
            _PARAM,
            _PROFILE,
            _TEAM,
            Arg("--wait", action="store_true", help="wait for the end, showing progress"),
        ),
    ),  # fmt: skip
    Command(
        ("job", "schedule"),
        "run a notebook snapshot on a cron schedule from the platform service",
        _job_schedule,
        (
            Arg("notebook", metavar="NOTEBOOK"),
            Arg("--cron", required=True, metavar="EXPR", help="five fields, e.g. '0 6 * * *'"),
            Arg("--timezone", default="UTC", metavar="TZ", help="IANA name (default UTC)"),
            _PARAM,
            Arg("--name", metavar="NAME", help="default: the notebook's name"),
            Arg(
                "--missed",
                choices=("run_once", "skip"),
                default="run_once",
                help="firings missed while the platform was down",
            ),
            _PROFILE,
            _TEAM,
        ),
    ),  # fmt: skip
    Command(
        ("job", "list"),
        "your teams' job runs (or --schedules)",
        _job_list,
        (Arg("--schedules", action="store_true"), Arg("--status", metavar="STATUS")),
    ),  # fmt: skip
    Command(
        ("job", "show"),
        "one run: status, progress, failing cell, MLflow run",
        _job_show,
        (_ID, Arg("--notebook", action="store_true", help="the executed notebook's JSON")),
    ),  # fmt: skip
    Command(("job", "logs"), "the log of a run", _job_logs, (_ID,)),
    Command(
        ("job", "rerun"),
        "run a run's notebook snapshot again, as you, with -p KEY=VALUE changed",
        _job_rerun,
        (
            _ID,
            _PARAM,
            Arg("--wait", action="store_true", help="wait for the end, showing progress"),
        ),
    ),  # fmt: skip
    Command(("job", "cancel"), "cancel a queued or running run", _job_cancel, (_ID,)),
    Command(("job", "pause"), "pause a schedule", _schedule("pause"), (_ID,)),
    Command(("job", "resume"), "resume a schedule", _schedule("resume"), (_ID,)),
    Command(
        ("job", "unschedule"), "delete a schedule (its runs stay)", _schedule("delete"), (_ID,)
    ),
    Command(
        ("pipeline", "submit"),
        "compile a @dsl.pipeline function and run it: locally (kfp.local) or on Kubeflow",
        _pipeline_submit,
        (
            Arg("func", metavar="FUNC", help="its name in the notebook (CLI: FILE.py:FUNC)"),
            Arg(
                "-a",
                "--arg",
                action="append",
                default=[],
                metavar="KEY=VALUE",
                help="an argument the pipeline declares",
            ),
            Arg(
                "--local", action="store_true", help="run with kfp.local in the platform (default)"
            ),
            Arg("--kfp", action="store_true", help="run on the Kubeflow Pipelines API"),
            Arg("--experiment", metavar="NAME", help="MLflow/KFP experiment (<team>/NAME)"),
            _PROFILE,
            _TEAM,
            Arg("--wait", action="store_true", help="wait for the end, showing the tasks"),
        ),
    ),  # fmt: skip
    Command(
        ("pipeline", "list"),
        "your teams' pipeline runs, newest first",
        _pipeline("list"),
        (Arg("--status", default=None, help="only runs of this status"),),
    ),  # fmt: skip
    Command(
        ("pipeline", "status"),
        "one pipeline run: its tasks' states, notebooks and MLflow runs",
        _pipeline("status"),
        (_ID, Arg("--notebook", metavar="TASK", help="the executed notebook of a step")),
    ),  # fmt: skip
    Command(
        ("pipeline", "logs"),
        "the log of a pipeline run, or of one task",
        _pipeline("logs"),
        (_ID, Arg("--task", metavar="TASK", help="one task's log")),
    ),  # fmt: skip
    Command(
        ("pipeline", "cancel"),
        "cancel a queued or running pipeline run",
        _pipeline("cancel"),
        (_ID,),
    ),  # fmt: skip
    Command(
        ("hub", "add-user"),
        "add a user to the embedded hub's users file (prints the password)",
        _hub_users("add"),
        (
            Arg("name", metavar="NAME"),
            Arg("--group", action="append", default=[], metavar="G"),
            Arg("--password", help="default: a generated one"),
        ),
    ),  # fmt: skip
    Command(
        ("hub", "remove-user"),
        "remove a user from the embedded hub's users file",
        _hub_users("remove"),
        (Arg("name", metavar="NAME"),),
    ),  # fmt: skip
    Command(
        ("hub", "set-groups"),
        "replace a user's groups in the users file (the hub applies it to the next request)",
        _hub_users("set-groups"),
        (Arg("name", metavar="NAME"), Arg("--group", action="append", default=[], metavar="G")),
    ),  # fmt: skip
    Command(
        ("hub", "set-password"),
        "set (or generate) a user's password in the users file",
        _hub_users("set-password"),
        (Arg("name", metavar="NAME"), Arg("--password", help="default: a generated one")),
    ),  # fmt: skip
    Command(
        ("up",),
        "start the embedded platform (JupyterHub, service, MLflow, culler)",
        _up,
        (Arg("--config", default=None, help="JupyterHub config file (default: the shipped one)"),),
        magic=False,
        returns_code=True,
        elsewhere="`up` starts the whole platform in the foreground; run `mlplat up` (or "
        "`make up`) in a terminal, not in a notebook.",
    ),  # fmt: skip
)

# Named in the design and built by later releases.
PLANNED: tuple[str, ...] = ()
ALIASES = {"approvals": "approval"}

# `run` is two commands: the cell magic (%%mlplat run) and the CLI's notebook runner.
BY_SIDE: dict[tuple[str, tuple[str, ...]], Command] = {
    (side, c.words): c for c in COMMANDS for side in ("magic", "cli")
    if (c.magic if side == "magic" else c.cli)
}  # fmt: skip
BY_WORDS: dict[tuple[str, ...], Command] = {c.words: c for c in COMMANDS}
GROUPS = {c.words[0] for c in COMMANDS if len(c.words) > 1}


def find(words: Sequence[str], side: str) -> tuple[Command, list[str]]:
    """The command the words name and the remaining arguments, for ``side``."""
    prefix = "%mlplat" if side == "magic" else "mlplat"
    if not words:
        raise UsageError(f"Give a command; `{prefix} help` lists them.")
    first = ALIASES.get(words[0], words[0])
    if first in GROUPS:
        if len(words) < 2 or (first, words[1]) not in BY_WORDS:
            actions = " | ".join(c.words[1] for c in COMMANDS if c.words[0] == first)
            raise UsageError(f"`{prefix} {first}` needs one of: {actions}.")
        words_ = (first, words[1])
        command = BY_SIDE.get((side, words_), BY_WORDS[words_])
        rest = list(words[2:])
    elif (first,) in BY_WORDS:
        command, rest = BY_SIDE.get((side, (first,)), BY_WORDS[(first,)]), list(words[1:])
    elif first in PLANNED:
        raise UsageError(
            f"`{prefix} {first}` is not available in this version yet; see `{prefix} help` "
            "for what is."
        )
    else:
        names = sorted({c.words[0] for c in COMMANDS})
        raise UsageError(
            f"Unknown command {words[0]!r}; use one of: {', '.join(names)} "
            f"(`{prefix} help` explains each)."
        )
    available = command.magic if side == "magic" else command.cli
    if not available:
        raise UsageError(command.elsewhere)
    return command, rest


def _usage(arg: Arg) -> str:
    options = arg.options
    name = options.get("metavar") or arg.flags[-1].lstrip("-").upper().replace("-", "_")
    if "choices" in options and "metavar" not in options:
        name = "|".join(options["choices"])
    if arg.flags[0].startswith("-"):
        flag = arg.flags[-1] if arg.flags[-1].startswith("--") else arg.flags[0]
        text = flag if options.get("action") == "store_true" else f"{flag} {name}"
        if options.get("action") == "append":
            text += " ..."
        return text if options.get("required") else f"[{text}]"
    if options.get("nargs") == "?":
        return f"[{name}]"
    if options.get("nargs") == "*":
        return f"[{name} ...]"
    return name


def usage(command: Command, side: str) -> str:
    """``%mlplat approval request MODEL VERSION [--target staging|production] ...``"""
    start = "%%mlplat" if command.cell else ("%mlplat" if side == "magic" else "mlplat")
    return " ".join([start, command.name, *(_usage(a) for a in command.args)])


def help_text(side: str) -> str:
    """Every command with its arguments and what it does, from the table (the same text
    for the magic and the CLI)."""
    lines = []
    for command in COMMANDS:
        if command.magic if side == "magic" else command.cli:
            lines += [usage(command, side), f"    {command.help}"]
    if PLANNED:
        lines.append(f"Coming in later releases: {', '.join(PLANNED)}.")
    return "\n".join(lines)


__all__ = ["COMMANDS", "Arg", "Command", "Env", "HelpShown", "Parser", "find", "help_text"]
