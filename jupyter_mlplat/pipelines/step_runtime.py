"""Inside a notebook step's task: papermill on the embedded snapshot, in its own MLflow run.

Imported by the code :mod:`.notebook_step` generates, in the task's process (a subprocess
of the pipeline's job process under ``kfp.local``, as the run's owner; a pod on a cluster).
The step's MLflow run is a child of the pipeline's run (``MLFLOW_RUN_ID`` in the task's
environment) in the same experiment, with the parameters, the snapshot's SHA-256 and the
executed notebook as the artifact ``notebook/<name>.ipynb``; the kernel gets the step's run
as ``MLFLOW_RUN_ID`` and a file to record declared outputs in (``MLPLAT_STEP_OUTPUTS``,
written by ``mlplat.step_output``). A cell that raises fails the task (papermill's error).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path, PurePosixPath

OUTPUTS_ENV = "MLPLAT_STEP_OUTPUTS"


def _mlflow_child(name: str, path: str, digest: str, parameters: dict):
    """The step's MLflow run (or None without a tracking server)."""
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    import mlflow

    from ..tracking.plugins import defer_feast_header_provider

    defer_feast_header_provider()
    parent = os.environ.pop("MLFLOW_RUN_ID", "")
    experiment = os.environ.get("MLPLAT_PIPELINE_EXPERIMENT")
    if experiment:
        mlflow.set_experiment(experiment)
    tags = {
        "mlplat.pipeline.step": name, "mlplat.job.notebook": path,
        "mlplat.job.snapshot_sha256": digest, "mlflow.source.name": path,
    }  # fmt: skip
    if os.environ.get("USER"):
        tags["mlflow.user"] = os.environ["USER"]
    run = mlflow.start_run(run_name=name, parent_run_id=parent or None, tags=tags)
    if parameters:
        mlflow.log_params({k: str(v)[:500] for k, v in parameters.items()})
    return run


def run_notebook_step(
    content: str, path: str, digest: str, parameters: dict, executed_path: str,
    outputs: list[str],
) -> dict:  # fmt: skip
    """Run the snapshot ``content``; the step's outputs (its MLflow run and ``outputs``)."""
    import papermill

    name = PurePosixPath(path).stem
    folder = Path(tempfile.mkdtemp(prefix="mlplat-step-"))
    source = folder / "input.ipynb"
    source.write_text(content, encoding="utf-8")
    recorded = folder / "outputs.json"
    os.environ[OUTPUTS_ENV] = str(recorded)
    home = Path(os.environ.get("HOME") or Path.cwd())
    cwd = (home / path).parent if (home / path).parent.is_dir() else Path.cwd()
    run = _mlflow_child(name, path, digest, parameters)
    if run is not None:
        os.environ["MLFLOW_RUN_ID"] = run.info.run_id
        print(f"MLPLAT_STEP_MLFLOW_RUN_ID={run.info.run_id}", flush=True)
    extra = {}
    ipc = os.environ.get("MLPLAT_KERNEL_IPC_DIR")
    if ipc and len(ipc) < 80:
        from traitlets.config import Config

        prefix = str(Path(ipc) / f"kernel-{folder.name[-8:]}")
        extra["config"] = Config({"KernelManager": {"transport": "ipc", "ip": prefix}})
    failed = True
    try:
        papermill.execute_notebook(
            str(source), executed_path, parameters=parameters, kernel_name="python3",
            cwd=str(cwd), progress_bar=False, log_output=True, **extra,
        )  # fmt: skip
        failed = False
    finally:
        if run is not None:
            import mlflow

            if os.path.isfile(executed_path):
                named = folder / f"{name}.ipynb"
                named.write_bytes(Path(executed_path).read_bytes())
                mlflow.log_artifact(str(named), artifact_path="notebook")
            mlflow.end_run(status="FAILED" if failed else "FINISHED")
    values = json.loads(recorded.read_text()) if recorded.is_file() else {}
    missing = [key for key in outputs if key not in values]
    if missing:
        raise RuntimeError(
            f"The notebook {path} did not record {', '.join(missing)}; call "
            f"mlplat.step_output({missing[0]!r}, value) in it."
        )
    result = {key: values[key] for key in outputs}
    result["mlflow_run_id"] = run.info.run_id if run is not None else ""
    return result


def step_output(name: str, value) -> None:
    """Record a declared output of the notebook step this kernel runs in. Outside a
    pipeline step (the notebook run by hand) nothing is recorded, and it says so."""
    target = os.environ.get(OUTPUTS_ENV)
    if not target:
        print(f"(not running as a pipeline step: the step output {name} = {value!r} is not "
              "recorded)")  # fmt: skip
        return
    path = Path(target)
    values = json.loads(path.read_text()) if path.is_file() else {}
    values[str(name)] = value
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(values))
    os.replace(tmp, path)
