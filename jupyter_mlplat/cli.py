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
