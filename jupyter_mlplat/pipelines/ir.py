"""A compiled pipeline (KFP IR YAML) as the platform service sees it: parsed, its declared
parameters, arguments checked against them, and what ``kfp.local`` can run.

The service checks again what the user's kernel checked (:mod:`.compile`): what it
receives is the user's word, and a decision rests on what the service reads itself.
"""

from __future__ import annotations

from typing import Any

from ..errors import TooLarge, UsageError

# IR parameter types and the JSON values they take.
_TYPES: dict[str, tuple[type, ...]] = {
    "NUMBER_INTEGER": (int,),
    "NUMBER_DOUBLE": (float, int),
    "STRING": (str,),
    "BOOLEAN": (bool,),
    "LIST": (list,),
    "STRUCT": (dict,),
}
EXECUTOR_MODULE = "kfp.dsl.executor_main"


def parse(text: str, max_bytes: int) -> dict:
    """The pipeline spec in ``text``; a clear refusal if it is not a compiled pipeline."""
    import yaml

    if len(text.encode("utf-8")) > max_bytes:
        raise TooLarge(f"The compiled pipeline is more than {max_bytes} bytes; make it smaller.")
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise UsageError(f"The pipeline is not YAML: {str(exc).splitlines()[0]}") from None
    spec = documents[0] if documents else None
    if not isinstance(spec, dict) or not all(
        isinstance(spec.get(key), dict) for key in ("pipelineInfo", "root", "components")
    ):
        raise UsageError(
            "This is not a compiled KFP pipeline (no pipelineInfo, root and components); "
            "submit a @dsl.pipeline function."
        )
    return spec


def declared(spec: dict) -> dict[str, dict]:
    """The pipeline's parameters by name: ``{"type", "default", "optional"}``."""
    parameters = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {}) or {}
    return {
        name: {
            "type": str(p.get("parameterType", "")),
            "default": p.get("defaultValue"),
            "optional": bool(p.get("isOptional")) or "defaultValue" in p,
        }
        for name, p in parameters.items()
        if isinstance(p, dict)
    }


def check_arguments(spec: dict, arguments: dict[str, Any]) -> dict[str, Any]:
    """``arguments`` if each is a declared parameter of its type and none required is
    missing; otherwise one sentence naming the argument."""
    params = declared(spec)
    name = spec.get("pipelineInfo", {}).get("name", "the pipeline")
    for key, value in arguments.items():
        if key not in params:
            names = ", ".join(sorted(params)) or "none"
            raise UsageError(f"{name} has no argument {key!r}; its arguments: {names}.")
        kind = params[key]["type"]
        allowed = _TYPES.get(kind)
        if allowed is None:
            continue  # a type this version does not know: KFP checks it
        if not isinstance(value, allowed) or (kind != "BOOLEAN" and isinstance(value, bool)):
            shown = kind.replace("NUMBER_", "").lower()
            raise UsageError(f"{key} of {name} is {shown}, not {type(value).__name__} ({value!r}).")
    missing = sorted(k for k, p in params.items() if not p["optional"] and k not in arguments)
    if missing:
        raise UsageError(f"{name} needs {', '.join(missing)}; pass -a {missing[0]}=VALUE.")
    return dict(arguments)


def check_local(spec: dict) -> None:
    """Refuse what ``kfp.local`` cannot run, before anything is queued: container
    components (it runs lightweight Python components and importers only)."""
    executors = spec.get("deploymentSpec", {}).get("executors", {}) or {}
    for label, executor in executors.items():
        if "importer" in executor:
            continue
        container = executor.get("container") or {}
        words = [str(w) for w in (container.get("command") or []) + (container.get("args") or [])]
        if not any(EXECUTOR_MODULE in word for word in words):
            raise UsageError(
                f"{label.removeprefix('exec-')} is a container component; the local runner "
                "(kfp.local) runs lightweight Python components only: use --kfp, or make it "
                "a @dsl.component."
            )


def planned_tasks(spec: dict) -> list[str]:
    return list(spec.get("root", {}).get("dag", {}).get("tasks", {}) or {})
