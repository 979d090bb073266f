"""The serving environment: the venv MLServer runs from, found and checked.

MLServer 1.7 cannot share the project venv (it caps fastapi below 0.116 and pulls starlette
back), so it lives in a venv of its own, built by ``make install`` with this venv's mlflow,
scikit-learn, pandas and numpy versions. By default it sits beside the running venv:
``<sys.prefix>-serving`` (``.venv`` → ``.venv-serving`` in a checkout; a wheel installed in
``/opt/mlplat/venv`` looks for ``/opt/mlplat/venv-serving``). Any other place is passed in.
"""

from __future__ import annotations

import importlib.metadata
import json
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import ServiceUnavailable

MLSERVER_VERSION = "1.7.1"
# uvloop after 0.21.0 breaks MLServer 1.7's start-up (MLServer#2286).
UVLOOP_VERSION = "0.21.0"
# Pinned to this venv's versions so a model saved here loads there the same way.
MATCHED_PACKAGES = ("mlflow", "scikit-learn", "pandas", "numpy")

# Run with the serving Python: imports what MLServer needs and prints the versions.
_PROBE = """
import importlib.metadata as m, json
import mlserver, mlserver_mlflow
names = ("mlserver", "mlserver-mlflow") + tuple(json.loads(__import__("sys").argv[1]))
print(json.dumps({n: m.version(n) for n in names}))
"""


@dataclass(frozen=True)
class ServingEnvironment:
    """A checked serving venv: its Python, its ``mlserver`` script and package versions."""

    python: Path
    versions: dict[str, str]

    @property
    def mlserver(self) -> Path:
        return self.python.parent / "mlserver"


def default_serving_python() -> Path:
    """``<sys.prefix>-serving/bin/python``: the serving venv beside the running one."""
    return Path(f"{sys.prefix}-serving") / "bin" / "python"


def build_command(python: Path | None = None) -> str:
    """The shell commands that build the serving venv for ``python`` with the right pins."""
    python = Path(python or default_serving_python())
    venv = python.parent.parent
    pins = [
        f"mlserver=={MLSERVER_VERSION}",
        f"mlserver-mlflow=={MLSERVER_VERSION}",
        f"uvloop=={UVLOOP_VERSION}",
    ] + [f"{name}=={importlib.metadata.version(name)}" for name in MATCHED_PACKAGES]
    uv = Path(sys.executable).with_name("uv")
    return (
        f"python3 -m venv --without-pip {shlex.quote(str(venv))} && "
        f"{shlex.quote(str(uv))} pip install --python {shlex.quote(str(python))} "
        f"--compile-bytecode {' '.join(pins)}"
    )


def _how_to_build(python: Path) -> str:
    return f"build it with `make install` in the checkout, or: {build_command(python)}"


def find_serving_environment(
    python: str | Path | None = None, timeout: float = 120
) -> ServingEnvironment:
    """Check the serving venv at ``python`` (default beside this venv) and return it.

    Raises :class:`ServiceUnavailable` saying how to build it when the Python is missing,
    cannot import mlserver / mlserver_mlflow, or has other versions of the matched packages.
    """
    python = Path(python) if python else default_serving_python()
    if not python.exists():
        raise ServiceUnavailable(
            f"The serving environment is missing (no {python}); " + _how_to_build(python) + "."
        )
    try:
        done = subprocess.run(
            [str(python), "-c", _PROBE, json.dumps(MATCHED_PACKAGES)],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceUnavailable(
            f"The serving environment's Python {python} could not be run ({exc}); "
            + _how_to_build(python)
            + "."
        ) from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ServiceUnavailable(
            f"The serving environment at {python} cannot import mlserver and mlserver_mlflow "
            f"({last}); rebuild it: " + _how_to_build(python) + "."
        )
    versions = json.loads(done.stdout.strip().splitlines()[-1])
    wrong = [
        f"{name} {versions[name]} (here {ours})"
        for name in MATCHED_PACKAGES
        if versions[name] != (ours := importlib.metadata.version(name))
    ]
    if wrong:
        raise ServiceUnavailable(
            f"The serving environment at {python} has {', '.join(wrong)}, so models saved "
            "here may not load there; rebuild it: " + _how_to_build(python) + "."
        )
    return ServingEnvironment(python=python, versions=versions)
