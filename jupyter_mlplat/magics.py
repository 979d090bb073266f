"""``%mlplat`` / ``%%mlplat``: parse the arguments, call the fluent API, return its value.

Errors from the layers below are :class:`MlplatError`; the extension shows them
as one line (see :func:`show_mlplat_error`) instead of a traceback.
"""

from __future__ import annotations

import argparse
import ast
import functools
import shlex

from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand

from . import fluent
from .errors import UsageError

COMMANDS = {
    "status": "who am I, teams, mode, backends, URLs",
    "experiment": "NAME [--team T] — set the active experiment",
    "run": "(cell magic) [NAME] [-p key=value ...] [--no-autolog] — run the cell in an MLflow run",
    "log": "key=value ... [--step N] — log metrics to the active / last run",
    "features": "VIEW:FEATURE[,...] --entities VAR [--historical] [-o VAR] — Feast features",
    "register": "[RUN_ID] --model NAME [--artifact PATH] — register a run's model",
    "approval": "request MODEL VERSION [--target T] [--reason TEXT] | list [--pending] | show ID"
    " | approve ID [--comment TEXT] | reject ID --comment TEXT",
}
# Named in the design and built by later releases.
PLANNED = ("pipeline", "deploy", "deployments", "undeploy", "rollback", "predict", "job")


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` instead of exiting."""

    def error(self, message):
        raise UsageError(f"%mlplat {self.prog}: {message}; see `%mlplat help`.")

    def exit(self, status=0, message=None):
        raise _HelpShown()


class _HelpShown(Exception):
    pass


@functools.lru_cache(maxsize=256)
def _parse(parser: _Parser, args: tuple[str, ...]) -> argparse.Namespace:
    """Parsed arguments; cached because the same line often runs in a loop."""
    return parser.parse_args(list(args))


def _parser(prog: str, **kwargs) -> _Parser:
    return _Parser(prog=prog, add_help=True, allow_abbrev=False, **kwargs)


def _split(line: str) -> list[str]:
    if not any(ch in line for ch in "'\"\\"):
        return line.split()  # the common case, several times faster than shlex
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"Could not split the arguments ({exc}); check your quotes.") from None


_EXPERIMENT = _parser("experiment")
_EXPERIMENT.add_argument("name")
_EXPERIMENT.add_argument("--team")

_RUN = _parser("run")
_RUN.add_argument("name", nargs="?")
_RUN.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
_RUN.add_argument("--no-autolog", action="store_true")

_LOG = _parser("log")
_LOG.add_argument("pairs", nargs="*", metavar="KEY=VALUE")
_LOG.add_argument("--step", type=int)

_REGISTER = _parser("register")
_REGISTER.add_argument("run_id", nargs="?", metavar="RUN_ID")
_REGISTER.add_argument("--model", required=True)
_REGISTER.add_argument("--artifact")

_APPROVAL = _parser("approval")
_APPROVAL_SUB = _APPROVAL.add_subparsers(dest="action", required=True, parser_class=_Parser)
_REQ = _APPROVAL_SUB.add_parser("request")
_REQ.add_argument("model")
_REQ.add_argument("version")
_REQ.add_argument("--target", default="staging", choices=("staging", "production"))
_REQ.add_argument("--reason")
_LIST = _APPROVAL_SUB.add_parser("list")
_LIST.add_argument("--pending", action="store_true")
_SHOW = _APPROVAL_SUB.add_parser("show")
_SHOW.add_argument("id", type=int)
_APPROVE = _APPROVAL_SUB.add_parser("approve")
_APPROVE.add_argument("id", type=int)
_APPROVE.add_argument("--comment")
_REJECT = _APPROVAL_SUB.add_parser("reject")
_REJECT.add_argument("id", type=int)
_REJECT.add_argument("--comment")

_FEATURES = _parser("features")
_FEATURES.add_argument("features", metavar="VIEW:FEATURE[,...]")
_FEATURES.add_argument("--entities", required=True, metavar="VAR")
_FEATURES.add_argument("--historical", action="store_true")
_FEATURES.add_argument("-o", "--output", metavar="VAR")


@magics_class
class MlplatMagics(Magics):
    @no_var_expand
    @line_cell_magic
    def mlplat(self, line: str, cell: str | None = None):
        if "{" in line or "$" in line:
            # IPython's own expansion parses every line, even plain ones, and costs more
            # than a buffered `log`; expand only when there is something to expand.
            # Depth 2 is the frame that called run_line_magic / run_cell_magic.
            line = self.shell.var_expand(line, depth=2)
        words = _split(line)
        if not words or words[0] in ("help", "-h", "--help"):
            return self._help()
        command, rest = words[0], words[1:]
        handler = getattr(self, f"_cmd_{command}", None)
        if handler is None:
            if command in PLANNED:
                raise UsageError(
                    f"`%mlplat {command}` is not available in this version yet; "
                    "see `%mlplat help` for what is."
                )
            raise UsageError(
                f"Unknown command {command!r}; use one of: {', '.join(COMMANDS)} "
                "(`%mlplat help` explains each)."
            )
        if command == "run" and cell is None:
            raise UsageError(
                "`run` is a cell magic: put `%%mlplat run` on the first line of a cell."
            )
        if command != "run" and cell is not None:
            raise UsageError(f"`{command}` is a line magic: use `%mlplat {command}` (one %).")
        try:
            return handler(rest, cell) if command == "run" else handler(rest)
        except _HelpShown:
            return None

    # -- commands -------------------------------------------------------------------------
    def _help(self):
        width = max(map(len, COMMANDS))
        print("\n".join(f"%mlplat {name:<{width}}  {text}" for name, text in COMMANDS.items()))

    def _cmd_status(self, args):
        if args:
            raise UsageError("`%mlplat status` takes no arguments.")
        return fluent.status()

    def _cmd_experiment(self, args):
        ns = _parse(_EXPERIMENT, tuple(args))
        return fluent.set_experiment(ns.name, team=ns.team)

    def _cmd_log(self, args):
        from .params import parse_pairs

        # Logging sits in training loops: skip argparse when there are no options.
        if any(arg.startswith("-") for arg in args):
            ns = _parse(_LOG, tuple(args))
            pairs, step = ns.pairs, ns.step
        else:
            pairs, step = args, None
        if not pairs:
            raise UsageError("Give at least one metric, like `%mlplat log loss=0.25`.")
        return fluent.log(parse_pairs(pairs), step=step)

    def _cmd_features(self, args):
        ns = _parse(_FEATURES, tuple(args))
        if ns.entities not in self.shell.user_ns:
            raise UsageError(
                f"There is no variable named {ns.entities!r} in this notebook; create a pandas "
                "DataFrame with the entity columns and pass its name to --entities."
            )
        if ns.output and not ns.output.isidentifier():
            raise UsageError(f"-o needs a Python variable name, got {ns.output!r}.")
        df = fluent.get_features(
            ns.features, self.shell.user_ns[ns.entities], historical=ns.historical
        )
        if ns.output:
            self.shell.user_ns[ns.output] = df
        return df

    def _cmd_register(self, args):
        ns = _parse(_REGISTER, tuple(args))
        return fluent.register(ns.run_id, model=ns.model, artifact=ns.artifact)

    def _cmd_approval(self, args):
        ns = _parse(_APPROVAL, tuple(args))
        if ns.action == "request":
            return fluent.request_approval(ns.model, ns.version, target=ns.target, reason=ns.reason)
        if ns.action == "list":
            return fluent.list_approvals(pending=ns.pending)
        if ns.action == "show":
            return fluent.show_approval(ns.id)
        if ns.action == "approve":
            return fluent.approve(ns.id, comment=ns.comment)
        return fluent.reject(ns.id, comment=ns.comment)

    def _cmd_run(self, args, cell):
        from .params import parse_pairs

        ns = _parse(_RUN, tuple(args))
        params = parse_pairs(ns.param)
        with fluent.run(ns.name, params=params, autolog=False if ns.no_autolog else None):
            value = self._execute(cell)
        print(repr(fluent.last_run()))
        return value

    def _execute(self, cell: str):
        """Run ``cell`` in the user namespace; the value of a trailing expression is returned."""
        source = self.shell.transform_cell(cell)
        tree = ast.parse(source)
        tail = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            tail = ast.Expression(tree.body.pop().value)
        # Registering the source lets tracebacks show the user's lines.
        filename = self.shell.compile.cache(source)
        namespace = self.shell.user_ns
        exec(compile(tree, filename, "exec"), namespace)
        if tail is not None:
            return eval(compile(tail, filename, "eval"), namespace)
        return None
