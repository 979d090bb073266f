"""The job process: papermill runs one snapshot in a fresh kernel, inside an MLflow run.

Started by :mod:`.runner` as the job's owner (their OS account when the platform is root),
``python -m jupyter_mlplat.jobs.execute <spec.json>``; never imported by the platform. The
exit code is the outcome, and the runner reads nothing else for the status:

* 0: every cell ran;
* 1: a cell raised (papermill's ``PapermillExecutionError``);
* 2: the kernel died or could not start;
* 3: anything else went wrong before or around the run (the log says what).

A run of kind ``pipeline`` runs its IR YAML with ``kfp.local`` instead
(:mod:`..pipelines.local_run`: 1 means a task failed), inside an MLflow run that keeps the
YAML as the artifact ``pipeline/pipeline.yaml``; its notebook steps' runs are its children.

The MLflow run is in the team's experiment ``<team>/jobs`` with the owner as user, the
parameters as params, the snapshot's digest and the run's ids as tags, and the executed
notebook as the artifact ``notebook/output.ipynb`` (failed runs included). The kernel
inherits ``MLFLOW_RUN_ID``, so ``mlflow.start_run()`` in the notebook logs to the same run.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

OK, CELL_FAILED, KERNEL_DIED, BROKEN = 0, 1, 2, 3


def main(spec_path: str) -> int:
    with open(spec_path, encoding="utf-8") as file:
        spec = json.load(file)
    mlflow, run, recording = None, None, None
    if spec.get("tracking_uri"):  # (mlflow is slow to import: only when it is used)
        try:
            import mlflow

            from ..tracking.plugins import defer_feast_header_provider

            # MLflow's first request would import all of Feast (3 s) for a header plugin.
            defer_feast_header_provider()
        except ImportError:
            print("mlplat: mlflow is not installed here; running without an MLflow run")
    if mlflow is not None:
        try:
            mlflow.set_tracking_uri(spec["tracking_uri"])
            mlflow.set_experiment(spec["experiment"])
            run = mlflow.start_run(run_name=spec["run_name"], tags=spec["tags"])
            os.environ["MLFLOW_RUN_ID"] = run.info.run_id
            print(f"MLPLAT_MLFLOW_RUN_ID={run.info.run_id}", flush=True)
            # Only the run's id has to exist before the kernel does: a notebook's parameters
            # are recorded while its kernel starts. A pipeline's tasks are forks of this
            # process (no thread may run then): its parameters and YAML go at its end.
            if spec.get("kind") != "pipeline":
                recording = _record_start(mlflow, run.info.run_id, spec)
        except Exception:  # noqa: BLE001 - the notebook still runs; the log says why
            traceback.print_exc()
            print("mlplat: could not start the MLflow run; running without it", flush=True)
            run = None
    if spec.get("kind") == "pipeline":
        from ..pipelines.local_run import run_pipeline

        code = run_pipeline(spec)
    else:
        code = _execute(spec)
    if recording is not None:
        recording.join()
    if run is not None:
        try:
            client, run_id = mlflow.MlflowClient(), run.info.run_id
            exit_tag = [mlflow.entities.RunTag("mlplat.job.exit_code", str(code))]
            if spec.get("kind") == "pipeline":  # the compiled pipeline, kept with its run
                client.log_batch(run_id, params=_params(mlflow, spec), tags=exit_tag)
                client.log_artifact(run_id, spec["input"], artifact_path="pipeline")
            else:
                if os.path.isfile(spec["output"]):
                    client.log_artifact(run_id, spec["output"], artifact_path="notebook")
                client.log_batch(run_id, tags=exit_tag)
            mlflow.end_run(status="FINISHED" if code == OK else "FAILED")
        except Exception:  # noqa: BLE001
            traceback.print_exc()
            print("mlplat: could not record the notebook in MLflow", flush=True)
    return code


def _params(mlflow, spec: dict) -> list:
    return [mlflow.entities.Param(k, str(v)[:500]) for k, v in spec["parameters"].items()]


def _record_start(mlflow, run_id: str, spec: dict):
    """A thread logging the run's parameters (started)."""
    import threading

    def record() -> None:
        try:
            client = mlflow.MlflowClient()
            params = [mlflow.entities.Param(k, str(v)[:500]) for k, v in spec["parameters"].items()]
            if params:
                client.log_batch(run_id, params=params)
            if spec.get("kind") == "pipeline":  # the compiled pipeline, kept with its run
                client.log_artifact(run_id, spec["input"], artifact_path="pipeline")
        except Exception:  # noqa: BLE001 - the run goes on; the log says why
            traceback.print_exc()
            print("mlplat: could not record the parameters in MLflow", flush=True)

    thread = threading.Thread(target=record, name="mlplat-record-start")
    thread.start()
    return thread


def _execute(spec: dict) -> int:
    try:
        import papermill
        from papermill.exceptions import PapermillExecutionError
    except ImportError:
        traceback.print_exc()
        return BROKEN
    extra = {}
    if spec.get("kernel_ipc"):
        from traitlets.config import Config

        # The kernel's sockets as files in the run's 0700 folder: on TCP ports any account
        # on the machine could subscribe to its outputs (messages are signed, not secret).
        extra["config"] = Config({"KernelManager": {"transport": "ipc", "ip": spec["kernel_ipc"]}})
    try:
        papermill.execute_notebook(
            spec["input"], spec["output"], parameters=spec["parameters"],
            kernel_name=spec["kernel"], cwd=spec["cwd"], progress_bar=False, log_output=True,
            request_save_on_cell_execute=True, **extra,
        )  # fmt: skip
    except PapermillExecutionError as exc:
        print(f"mlplat: cell {exc.cell_index} raised {exc.ename}: {exc.evalue}", flush=True)
        return CELL_FAILED
    except Exception as exc:  # noqa: BLE001 - the kernel died, or did not start
        traceback.print_exc()
        name = type(exc).__name__
        died = "DeadKernel" in name or "kernel" in str(exc).lower() or "Kernel" in name
        print(f"mlplat: the run stopped: {name}: {exc}", flush=True)
        return KERNEL_DIED if died else BROKEN
    return OK


if __name__ == "__main__":
    outcome = main(sys.argv[1])
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is recorded (the MLflow run ended above): skip the interpreter's teardown of
    # mlflow, papermill and their imports, most of a second per job.
    os._exit(outcome)
