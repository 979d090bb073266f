"""``mlplat profiles validate|render``: check the profile files and print what they render to.

The arguments are declared in the command table (:mod:`jupyter_mlplat.commands`); each
function takes the parsed arguments and returns the exit code (1 when invalid).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

from .loader import default_profiles_dir, load_profiles
from .model import ProfileError, ProfileSet, display_path


def _load(args: argparse.Namespace) -> ProfileSet | None:
    try:
        return load_profiles(args.folder or default_profiles_dir())
    except ProfileError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def cmd_validate(args: argparse.Namespace) -> int:
    profile_set = _load(args)
    if profile_set is None:
        return 1
    print(
        f"{len(profile_set.profiles)} profiles in {len(profile_set.files)} files valid "
        f"({display_path(profile_set.folder)})"
    )
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from .render import helm_values, kubespawner_profile_list

    if args.group is not None and args.format != "kubespawner":
        print(
            "mlplat: --group applies to --format kubespawner only; helm values hold every "
            "profile and the hub filters them per user.",
            file=sys.stderr,
        )
        return 1
    profile_set = _load(args)
    if profile_set is None:
        return 1
    if args.format == "kubespawner":
        data: Any = kubespawner_profile_list(profile_set, groups=args.group)
    else:
        data = helm_values(profile_set)
    print(dump(data, args.output), end="")
    return 0


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (the hub's extraConfig code stays readable)."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(data: Any, output: str = "yaml") -> str:
    """``data`` as YAML (readable block strings) or indented JSON, ending with a newline."""
    if output == "json":
        return json.dumps(data, indent=2) + "\n"
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
