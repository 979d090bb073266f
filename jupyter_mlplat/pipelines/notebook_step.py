"""``notebook_step``: a KFP component that runs a snapshotted notebook with papermill.

The notebook is read where the step is made (the user's kernel, as them), stripped of its
outputs and embedded in the component as a constant with its SHA-256: the task runs that
snapshot, nothing is fetched at run time. The component's inputs are the notebook's
declared parameters (names and types from its ``parameters`` cell, defaults from it or from
``parameters``), so upstream tasks' outputs can feed them; its outputs are the executed
notebook (an artifact), the MLflow run the step logged to, and the values the notebook
declared with ``outputs`` and recorded with ``mlplat.step_output(name, value)``.

It is a lightweight Python component (``install_kfp_package=False``, the profile's image
as its base image): ``kfp.local``'s SubprocessRunner runs only those, and on a cluster the
same component runs in the image, which must have papermill and this package installed.
KFP reads a lightweight component's code with ``inspect.getsource``, so the function is
generated as source text registered in ``linecache`` under a name of its own.
"""

from __future__ import annotations

import hashlib
import json
import keyword
import linecache
import re
from pathlib import PurePosixPath

from ..errors import UsageError
from ..jobs import notebooks

_KINDS = {"int": "int", "float": "float", "str": "str", "bool": "bool", "list": "list",
          "dict": "dict"}  # fmt: skip
_OUTPUT_TYPES = {int: "int", float: "float", str: "str", bool: "bool"}
DEFAULT_IMAGE = "python:3.11"


def _function_name(path: str) -> str:
    stem = re.sub(r"\W+", "_", PurePosixPath(path).stem).strip("_").lower() or "step"
    name = f"notebook_{stem}"[:60]
    return name if name.isidentifier() and not keyword.iskeyword(name) else "notebook_step"


def _declared_inputs(nb, parameters: dict) -> list[tuple[str, str, object]]:
    declared = notebooks.declared_parameters(nb)
    given = notebooks.check_parameters(nb, parameters) if parameters else {}
    inputs = []
    for name, spec in declared.items():
        kind = _KINDS.get(getattr(spec, "kind", ""))
        if kind is None:
            continue  # a value of a type KFP has no parameter for: the notebook's own default
        inputs.append((name, kind, given.get(name, spec.default)))
    return inputs


def build_source(
    path: str, nb, digest: str, content: bytes, parameters: dict, outputs: dict
) -> tuple[str, str]:
    """The component function's name and source text."""
    name = _function_name(path)
    inputs = _declared_inputs(nb, parameters)
    for key, kind in outputs.items():
        if not (isinstance(key, str) and key.isidentifier()) or key in ("mlflow_run_id",):
            raise UsageError(f"{key!r} cannot be a step output; use a Python name.")
        if kind not in _OUTPUT_TYPES:
            raise UsageError(f"The output {key} has type {kind!r}; use int, float, str or bool.")
    args = [f"{n}: {kind} = {default!r}" for n, kind, default in inputs]
    args.append("executed_notebook: dsl.Output[dsl.Artifact] = None")
    fields = [("mlflow_run_id", "str")] + [(k, _OUTPUT_TYPES[t]) for k, t in outputs.items()]
    returns = "NamedTuple('Outputs', [" + ", ".join(f"({k!r}, {t})" for k, t in fields) + "])"
    passed = "{" + ", ".join(f"{n!r}: {n}" for n, _, _ in inputs) + "}"
    source = (
        f"def {name}({', '.join(args)}) -> {returns}:\n"
        f'    """Runs the notebook {path} (snapshot sha256 {digest}) with papermill."""\n'
        "    from collections import namedtuple\n"
        "    from jupyter_mlplat.pipelines.step_runtime import run_notebook_step\n"
        f"    values = run_notebook_step({content.decode('utf-8')!r}, {path!r}, {digest!r},\n"
        f"                               {passed}, executed_notebook.path,\n"
        f"                               {list(outputs)!r})\n"
        f"    return namedtuple('Outputs', {[k for k, _ in fields]!r})(**values)\n"
    )
    return name, source


def notebook_step(path: str, nb, parameters: dict | None = None, *, outputs: dict | None = None,
                  image: str = DEFAULT_IMAGE, max_bytes: int = 20 * 1024 * 1024):  # fmt: skip
    """A component running the notebook ``nb`` (read from ``path``, relative to the user's
    root) with ``parameters`` as its inputs' defaults."""
    from typing import NamedTuple

    from kfp import dsl

    content, digest = notebooks.snapshot_content(nb)
    if len(content) > max_bytes:
        raise UsageError(
            f"{path} is {len(content)} bytes without outputs; the limit is {max_bytes}."
        )
    json.loads(content)  # (it is JSON: embedded as a string constant)
    name, source = build_source(
        path, nb, digest, content, dict(parameters or {}), dict(outputs or {})
    )
    filename = f"<mlplat-notebook-step-{hashlib.sha256(source.encode()).hexdigest()[:16]}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"dsl": dsl, "NamedTuple": NamedTuple, "__name__": "mlplat_notebook_step"}
    # (dont_inherit: this module's `from __future__ import annotations` would make the
    # annotations strings, which KFP reads as artifact types)
    exec(compile(source, filename, "exec", dont_inherit=True), namespace)  # noqa: S102
    return dsl.component(namespace[name], base_image=image, install_kfp_package=False)
