"""A notebook's ``@dsl.pipeline`` function: found, its arguments checked, compiled to IR YAML.

Runs where the function is defined (the user's kernel, as the user); what leaves for the
platform is the compiled pipeline (IR YAML) and the checked arguments. Every refusal is one
sentence naming what was wrong and what to do, not KFP's traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError

# KFP's parameter types (as the IR names them) and the Python values they accept.
_TYPES: dict[str, tuple[type, ...]] = {
    "Integer": (int,),
    "Float": (float, int),
    "String": (str,),
    "Boolean": (bool,),
    "List": (list,),
    "Dict": (dict,),
}


@dataclass(frozen=True)
class Input:
    name: str
    type: str  # one of _TYPES, or "Artifact" (not a pipeline argument this tool takes)
    default: Any
    required: bool


def find_pipeline(namespace: dict, name: str):
    """The pipeline called ``name`` in ``namespace`` (the notebook's), or a clear refusal."""
    if not name.isidentifier():
        raise UsageError(f"{name!r} is not a Python name; give the pipeline function's name.")
    if name not in namespace:
        raise UsageError(
            f"{name} is not defined in this notebook; run the cell that defines it first."
        )
    candidate = namespace[name]
    try:
        from kfp.dsl.graph_component import GraphComponent
    except ImportError:  # pragma: no cover - kfp is a dependency
        raise UsageError("kfp is not installed here; pipelines need it.") from None
    if not isinstance(candidate, GraphComponent):
        what = "a component, not a pipeline" if hasattr(candidate, "component_spec") else (
            f"a {type(candidate).__name__}"
        )  # fmt: skip
        raise UsageError(f"{name} is {what}; decorate a function with @dsl.pipeline.")
    return candidate


def _type_name(raw: str) -> str:
    raw = str(raw)
    for known in _TYPES:
        if raw == known or raw.lower() == known.lower():
            return known
    if raw.startswith(("typing.List", "List", "list")):
        return "List"
    if raw.startswith(("typing.Dict", "Dict", "dict")):
        return "Dict"
    return "Artifact"


def declared_inputs(pipeline) -> dict[str, Input]:
    """The pipeline's inputs by name, with their types and defaults."""
    inputs = pipeline.component_spec.inputs or {}
    return {
        name: Input(name, _type_name(spec.type), spec.default, not spec.optional)
        for name, spec in inputs.items()
    }


def check_arguments(pipeline, arguments: dict) -> dict:
    """``arguments`` if the pipeline declares each with that type and none required is
    missing; otherwise a refusal naming the argument."""
    declared = declared_inputs(pipeline)
    name = pipeline.name
    for key, value in arguments.items():
        if key not in declared:
            names = ", ".join(sorted(declared)) or "none"
            raise UsageError(f"{name} has no argument {key!r}; its arguments: {names}.")
        spec = declared[key]
        if spec.type == "Artifact":
            raise UsageError(f"{key} is an artifact input of {name}; pass it from a task.")
        allowed = _TYPES[spec.type]
        wrong = not isinstance(value, allowed) or (
            spec.type != "Boolean" and isinstance(value, bool)
        )
        if wrong:
            raise UsageError(
                f"{key} of {name} is {spec.type}, not {type(value).__name__} ({value!r})."
            )
    missing = sorted(k for k, s in declared.items() if s.required and k not in arguments)
    if missing:
        raise UsageError(f"{name} needs {', '.join(missing)}; pass -a {missing[0]}=VALUE.")
    return {k: float(v) if declared[k].type == "Float" else v for k, v in arguments.items()}


def parse_cli_arguments(pairs: list[str], pipeline) -> dict:
    """``-a key=value`` strings converted by the declared types."""
    declared = declared_inputs(pipeline)
    parsed: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"{pair!r} is not key=value; write -a epochs=10.")
        spec = declared.get(key)
        if spec is None:
            names = ", ".join(sorted(declared)) or "none"
            raise UsageError(f"{pipeline.name} has no argument {key!r}; its arguments: {names}.")
        parsed[key] = _convert(key, text, spec.type)
    return check_arguments(pipeline, parsed)


def _convert(key: str, text: str, kind: str):
    try:
        if kind == "Integer":
            return int(text)
        if kind == "Float":
            return float(text)
        if kind == "Boolean":
            lowered = text.strip().lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
            raise ValueError(text)
        if kind in ("List", "Dict"):
            value = json.loads(text)
            if not isinstance(value, list if kind == "List" else dict):
                raise ValueError(text)
            return value
    except ValueError:
        raise UsageError(f"{key} is {kind}; {text!r} is not one.") from None
    return text


def compile_pipeline(pipeline) -> str:
    """The pipeline's IR YAML; a compile error as one sentence."""
    import tempfile
    from pathlib import Path

    from kfp import compiler

    with tempfile.TemporaryDirectory(prefix="mlplat-compile-") as folder:
        target = Path(folder) / "pipeline.yaml"
        try:
            compiler.Compiler().compile(pipeline, str(target))
        except Exception as exc:  # noqa: BLE001 - KFP raises many kinds; one sentence out
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"{pipeline.name} does not compile: {first}") from None
        return target.read_text()
