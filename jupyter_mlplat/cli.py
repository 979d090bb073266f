"""The ``mlplat`` command."""

from __future__ import annotations

import argparse
import sys

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

    return up(
        get_settings(),
        host=args.host,
        mlflow_port=args.mlflow_port,
        lab_port=args.lab_port,
        notebook_dir=args.notebook_dir,
    )


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

    up = sub.add_parser("up", help="start the embedded platform (MLflow + JupyterLab)")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--mlflow-port", type=int, default=5000)
    up.add_argument("--lab-port", type=int, default=8888)
    up.add_argument("--notebook-dir", default=".")
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
