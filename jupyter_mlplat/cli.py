"""The ``mlplat`` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import MlplatError


def _cmd_status(args) -> int:
    from . import fluent

    print(repr(fluent.status()))
    return 0


def _cmd_demo_features(args) -> int:
    from .features import create_demo_repo
    from .settings import get_settings

    path = args.path or get_settings().feature_repo
    repo = create_demo_repo(path)
    print(f"Demo feature repo ready at {repo}")
    return 0


def _cmd_up(args) -> int:
    from .embedded import up
    from .settings import get_settings

    return up(get_settings(), config_file=Path(args.config).resolve(), url=args.url)


def _cmd_approvals(args) -> int:
    from . import fluent

    if args.action == "list":
        print(repr(fluent.list_approvals(pending=args.pending)))
    elif args.action == "show":
        print(repr(fluent.show_approval(args.id)))
    elif args.action == "approve":
        print(repr(fluent.approve(args.id, comment=args.comment)))
    else:
        print(repr(fluent.reject(args.id, comment=args.comment)))
    return 0


def _cmd_audit(args) -> int:
    from .client import PlatformClient

    client = PlatformClient()
    if args.action == "verify":
        result = client.audit_verify()
        if result.ok:
            print(f"Audit log intact: {result.events} events verified.")
            return 0
        print(f"Audit log BROKEN at event {result.first_broken_seq}: {result.reason}")
        return 1
    return _export_audit(client, args.format, args.output)


def _export_audit(client, fmt: str, output: str | None) -> int:
    from .governance.audit import iso, write_records

    records = ({**e.model_dump(), "time": iso(e.time)} for e in client.iter_audit_events())
    count = write_records(records, fmt, output or sys.stdout)
    print(f"Exported {count} events.", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlplat", description="jupyter-mlplat command line")
    sub = parser.add_subparsers(dest="command", required=True)

    status = sub.add_parser("status", help="who am I, teams, backends")
    status.set_defaults(func=_cmd_status)

    demo = sub.add_parser("demo", help="demo content")
    demo_sub = demo.add_subparsers(dest="what", required=True)
    features = demo_sub.add_parser("features", help="create, apply and materialize the demo repo")
    features.add_argument("path", nargs="?", help="where (default: the configured feature repo)")
    features.set_defaults(func=_cmd_demo_features)

    from .profiles.cli import add_profiles_commands

    add_profiles_commands(sub)

    approvals = sub.add_parser("approvals", help="list, show, approve or reject requests")
    actions = approvals.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list")
    listing.add_argument("--pending", action="store_true")
    for name in ("show", "approve", "reject"):
        action = actions.add_parser(name)
        action.add_argument("id", type=int)
        if name != "show":
            action.add_argument("--comment")
    approvals.set_defaults(func=_cmd_approvals)

    audit = sub.add_parser("audit", help="verify or export the audit log (reviewers, admins)")
    audit_actions = audit.add_subparsers(dest="action", required=True)
    audit_actions.add_parser("verify")
    export = audit_actions.add_parser("export")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--output", "-o", help="file (default: standard output)")
    audit.set_defaults(func=_cmd_audit)

    up = sub.add_parser("up", help="start the embedded platform (JupyterHub, service, MLflow)")
    up.add_argument(
        "--config", default="hub_config/jupyterhub_config.py", help="JupyterHub config file"
    )
    up.add_argument("--url", default="http://127.0.0.1:8000", help="the hub's public URL")
    up.set_defaults(func=_cmd_up)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MlplatError as exc:
        print(f"mlplat: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
