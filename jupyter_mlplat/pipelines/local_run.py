"""Run a compiled pipeline (IR YAML) with ``kfp.local``, inside a job process.

Called by :mod:`..jobs.execute` for a run of kind ``pipeline``, as the run's owner, in the
run's working folder. ``kfp.local``'s ``SubprocessRunner(use_venv=False)`` runs each task
as a subprocess of this Python (a fresh venv per task costs ~7 s). Every task kfp.local
starts goes through :func:`_watched`, which

* writes the tasks' states to ``tasks.json`` (replaced whole, so a reader never sees half),
  read by the platform while the run goes on: name, state (``running``, ``succeeded``,
  ``failed``), start and end times, its output parameters, and for a notebook step the
  executed notebook's path (relative to the working folder) and its MLflow run;
* prints ``MLPLAT_TASK_BEGIN <name>`` and ``MLPLAT_TASK_END <name> <state>`` lines around
  the task's output in the run's log, so the platform can show one task's log.

The exit code is the outcome as for a notebook (:mod:`..jobs.execute`): 0 every task
succeeded, 1 a task failed (named in the log and the states), 3 anything else.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from . import ir

OK, TASK_FAILED, BROKEN = 0, 1, 3
MAX_OUTPUT_TEXT = 500


class _Tasks:
    def __init__(self, path: Path, planned: list[str]):
        self.path = path
        self.states: dict[str, dict] = {
            name: {"name": name, "state": "pending"} for name in planned
        }
        self.save()

    def update(self, name: str, **facts) -> None:
        self.states.setdefault(name, {"name": name}).update(facts)
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(list(self.states.values())))
        os.replace(tmp, self.path)


def _summary(value) -> object:
    """An output as the platform keeps it: plain values as they are (text cut short),
    artifacts by their URI."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, str):
        return value[:MAX_OUTPUT_TEXT]
    uri = getattr(value, "uri", None)
    if uri:
        return {"artifact": str(uri)[:MAX_OUTPUT_TEXT]}
    return str(value)[:MAX_OUTPUT_TEXT]


def _watched(original, tasks: _Tasks, workdir: Path):
    from kfp.local import executor_input_utils, status

    def run_single_task_implementation(*args, **kwargs):
        component_name = kwargs.get("component_name") or args[1]
        name = executor_input_utils.get_local_task_resource_name(component_name)
        tasks.update(name, state="running", started=time.time())
        print(f"MLPLAT_TASK_BEGIN {name}", flush=True)
        state = "failed"
        try:
            outputs, task_status = original(*args, **kwargs)
            state = "succeeded" if task_status == status.Status.SUCCESS else "failed"
            return outputs, task_status
        finally:
            facts = {"state": state, "ended": time.time()}
            if state == "succeeded":
                facts.update(_outputs_facts(locals().get("outputs") or {}, workdir))
            tasks.update(name, **facts)
            print(f"\nMLPLAT_TASK_END {name} {state}", flush=True)

    return run_single_task_implementation


def _outputs_facts(outputs: dict, workdir: Path) -> dict:
    facts: dict = {"outputs": {k: _summary(v) for k, v in outputs.items()}}
    notebook = outputs.get("executed_notebook")
    path = getattr(notebook, "path", None)
    if path:
        with contextlib.suppress(ValueError):
            facts["notebook"] = Path(path).resolve().relative_to(workdir.resolve()).as_posix()
    run_id = outputs.get("mlflow_run_id")
    if isinstance(run_id, str) and run_id.isalnum():
        facts["mlflow_run_id"] = run_id
    return facts


def run_pipeline(spec: dict) -> int:
    """Run ``spec["input"]`` (IR YAML) with ``spec["parameters"]``; the exit code."""
    import yaml

    workdir = Path(spec["workdir"])
    try:
        from kfp import local
        from kfp.components import load_component_from_file
        from kfp.local import task_dispatcher
    except ImportError as exc:
        print(f"mlplat: kfp is not installed in the jobs' Python ({exc})", flush=True)
        return BROKEN
    with open(spec["input"], encoding="utf-8") as file:
        documents = [d for d in yaml.safe_load_all(file) if d]
    # The root DAG's tasks are known now; nested DAGs' (a ParallelFor's) appear as they start.
    tasks = _Tasks(Path(spec["tasks_file"]), ir.planned_tasks(documents[0]) if documents else [])
    task_dispatcher.run_single_task_implementation = _watched(
        task_dispatcher.run_single_task_implementation, tasks, workdir
    )
    local.init(
        runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(workdir / "root"),
        raise_on_error=True,
    )  # fmt: skip
    try:
        pipeline = load_component_from_file(spec["input"])
        pipeline(**spec["parameters"])
    except RuntimeError as exc:
        failed = [t["name"] for t in tasks.states.values() if t.get("state") == "failed"]
        if failed:
            print(f"mlplat: task {failed[0]} failed: {str(exc).splitlines()[0]}", flush=True)
            return TASK_FAILED
        print(f"mlplat: the pipeline stopped: {exc}", flush=True)
        return BROKEN
    except Exception as exc:  # noqa: BLE001 - the log says what; the exit code is the outcome
        import traceback

        traceback.print_exc()
        print(f"mlplat: the pipeline stopped: {type(exc).__name__}: {exc}", flush=True)
        return BROKEN
    for state in tasks.states.values():  # what never started (an If's other branch)
        if state.get("state") == "pending":
            state["state"] = "skipped"
    tasks.save()
    return OK
