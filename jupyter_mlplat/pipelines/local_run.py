"""Run a compiled pipeline (IR YAML) with ``kfp.local``, inside a job process.

Called by :mod:`..jobs.execute` for a run of kind ``pipeline``, as the run's owner, in the
run's working folder. ``kfp.local``'s ``SubprocessRunner(use_venv=False)`` runs each task
in this Python (a fresh venv per task costs ~7 s); a lightweight component's task is a fork
of this process rather than a fresh interpreter (:func:`_forked_tasks`). Every task
kfp.local starts goes through :func:`_watched`, which

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
import threading
import time
from pathlib import Path

from . import ir

OK, TASK_FAILED, BROKEN = 0, 1, 3
MAX_OUTPUT_TEXT = 500
# kfp.local (2.17) runs a ParallelFor's iterations in two threads. Here they run one at a
# time: a task is a fork of this process, and a fork taken while another thread is inside
# a print or a file write inherits that thread's locks held; the log's task markers and
# tasks.json stay whole too.
_ONE_TASK = threading.RLock()


class _Tasks:
    def __init__(self, path: Path, planned: list[str]):
        self.path = path
        self.states: dict[str, dict] = {
            name: {"name": name, "state": "pending"} for name in planned
        }
        self.save()

    def update(self, name: str, **facts) -> None:
        with _ONE_TASK:
            self.states.setdefault(name, {"name": name}).update(facts)
            self.save()

    def save(self) -> None:
        with _ONE_TASK:
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
        with _ONE_TASK:
            return one_task(*args, **kwargs)

    def one_task(*args, **kwargs):
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


def _is_lightweight(command: list[str]) -> bool:
    """The command kfp.local runs for a lightweight Python component without a pip step:
    ``sh -ec '<write $0 to a module; python -m kfp.dsl.executor_main ...> "$@"' SOURCE ARGS``."""
    return (
        len(command) >= 4 and command[0] == "sh" and command[1] == "-ec"
        and "kfp.dsl.executor_main" in command[2] and "ephemeral_component.py" in command[2]
        and "pip install" not in command[2]
    )  # fmt: skip


def _forget_active_mlflow_run() -> None:
    """In a forked task: the job's MLflow run is not the task's active run (a component's
    ``mlflow.start_run()`` starts or joins what ``MLFLOW_RUN_ID`` names, as in a fresh
    Python)."""
    with contextlib.suppress(Exception):
        from mlflow.tracking import fluent

        fluent._active_run_stack.set([])
        fluent._last_active_run_id.set(None)


def _forked_tasks(original):
    """kfp.local's ``run_local_subprocess``, forking this process (which has kfp, mlflow and
    papermill imported) for a lightweight component instead of a fresh Python per task
    (~80 ms of interpreter and imports, ~3 s for a notebook step). The child runs what the
    command's shell would: the component's source as a module, then
    ``python -m kfp.dsl.executor_main`` with its arguments; its output is printed as
    kfp.local prints a subprocess's. Anything else goes to kfp.local's own subprocess."""

    def run_local_subprocess(full_command: list[str], env_vars: dict | None = None) -> int:
        if not _is_lightweight(full_command):
            return original(full_command, env_vars=env_vars) if env_vars else original(full_command)
        import runpy
        import shutil
        import sys
        import tempfile
        import traceback

        folder = Path(tempfile.mkdtemp(prefix="kfp-task-"))
        module = folder / "ephemeral_component.py"
        module.write_text(full_command[3])
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the task
            code = 1
            try:
                os.close(read_end)
                os.dup2(write_end, 1)
                os.dup2(write_end, 2)
                os.close(write_end)
                os.environ.update(env_vars or {})  # (a task's dsl env vars, kfp >= 2.17)
                os.environ["_KFP_RUNTIME"] = "true"
                _forget_active_mlflow_run()
                sys.argv = ["executor_main", "--component_module_path", str(module),
                            *full_command[4:]]  # fmt: skip
                try:
                    runpy.run_module("kfp.dsl.executor_main", run_name="__main__", alter_sys=True)
                    code = 0
                except SystemExit as stop:
                    code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
            except BaseException:  # noqa: BLE001 - the task's failure, in its log
                traceback.print_exc()
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end, "r", errors="replace") as output:
            for line in output:
                print(line, end="")
        print("\n")
        _, status = os.waitpid(pid, 0)
        shutil.rmtree(folder, ignore_errors=True)
        return os.waitstatus_to_exitcode(status)

    return run_local_subprocess


def run_pipeline(spec: dict) -> int:
    """Run ``spec["input"]`` (IR YAML) with ``spec["parameters"]``; the exit code. Tasks
    are forks of this process: no other thread may run in it meanwhile."""
    import yaml

    workdir = Path(spec["workdir"])
    try:
        from kfp import local
        from kfp.components import load_component_from_file
        from kfp.local import subprocess_task_handler, task_dispatcher
    except ImportError as exc:
        print(f"mlplat: kfp is not installed in the jobs' Python ({exc})", flush=True)
        return BROKEN
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(spec["input"], encoding="utf-8") as file:
        documents = [d for d in yaml.load_all(file, Loader=loader) if d]  # noqa: S506 - safe
    # The root DAG's tasks are known now; nested DAGs' (a ParallelFor's) appear as they start.
    tasks = _Tasks(Path(spec["tasks_file"]), ir.planned_tasks(documents[0]) if documents else [])
    task_dispatcher.run_single_task_implementation = _watched(
        task_dispatcher.run_single_task_implementation, tasks, workdir
    )
    subprocess_task_handler.run_local_subprocess = _forked_tasks(
        subprocess_task_handler.run_local_subprocess
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
