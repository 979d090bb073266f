"""Pipelines benchmark: a 3-step pipeline through the platform vs kfp.local directly, and a
2-notebook-step pipeline vs the two notebooks run with papermill in sequence.

Run with ``.venv/bin/python benchmarks/bench_pipelines.py`` (about 3-4 minutes on 2 cores;
as root, so that runs are the owner's account's as in production). One run starts an
``mlflow server`` (tests/servers.py's ``MlflowServer``) and an in-process platform (SQLite
store, ``jobs_workers=2``, warm job starters), as ``bench_jobs.py`` does, and measures,
interleaved and after one warm-up each, ``REPEATS`` times:

1. **3 steps** (three lightweight components, each adding to the last one's output):
   compile + ``submit_pipeline(mode="local")`` → final status seen (``show_pipeline_run``
   polled every 10 ms): the worker pool, the owner's job process forked by its warm
   starter, an MLflow run, kfp.local's ``SubprocessRunner(use_venv=False)``; against
   ``kfp.local`` run directly in this process (``local.init`` with the same runner, the
   pipeline function called). Target: ours ≤ 1.2x.
2. **2 notebook steps** (``notebook_step``: a parameters cell and one cell each, the second
   fed the first's output): the same path; against ``papermill.execute_notebook`` on the two
   notebooks one after the other in this (warm) process. No target: each step is a kfp.local
   task (a subprocess importing kfp's executor and papermill) with an MLflow run of its own.

Figures are noisy on a shared machine; each side is measured in the same run.
"""

# No `from __future__ import annotations`: KFP reads components' annotations as types.
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from bench_jobs import OWNER, make_account, med, pct  # noqa: E402

REPEATS = 5
POLL = 0.01  # the status is read every 10 ms: the 3-step pipeline itself takes ~0.2 s
FINAL = ("succeeded", "failed", "cancelled", "interrupted", "skipped")


def three_steps():
    from kfp import dsl

    @dsl.component(install_kfp_package=False)
    def add_one(x: int) -> int:
        return x + 1

    @dsl.pipeline(name="three-steps")
    def three(x: int = 1) -> int:
        return add_one(x=add_one(x=add_one(x=x).output).output).output

    return three


def step_notebooks(folder: Path):
    import nbformat

    def make(name: str, parameters: str, cell: str) -> Path:
        nb = nbformat.v4.new_notebook()
        params = nbformat.v4.new_code_cell(parameters)
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params, nbformat.v4.new_code_cell(cell)]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}  # fmt: skip
        path = folder / f"{name}.ipynb"
        nbformat.write(nb, path)
        return path

    first = make(
        "first", "rows = 10", "import jupyter_mlplat as m\nm.step_output('rows', rows * 2)"
    )
    second = make("second", "rows = 1", "print('rows', rows)")
    return first, second


def two_notebook_steps(first: Path, second: Path):
    import nbformat
    from kfp import dsl

    from jupyter_mlplat.pipelines.notebook_step import notebook_step

    a = notebook_step("first.ipynb", nbformat.read(first, 4), outputs={"rows": int})
    b = notebook_step("second.ipynb", nbformat.read(second, 4))

    @dsl.pipeline(name="two-notebooks")
    def two(rows: int = 3):
        b(rows=a(rows=rows).outputs["rows"])

    return two


SEGMENTS = (
    ("compile in the kernel", "start", "compiled"),
    ("submit call (parse, check, snapshot, insert)", "compiled", "returned"),
    ("wake + claim by a worker", "returned", "claimed"),
    ("fork by the warm starter, the MLflow run, the YAML artifact", "claimed", "mlflow_start"),
    ("kfp.local: load and start (to the first task)", "mlflow_start", "first_task"),
    ("the tasks", "first_task", "last_task"),
    ("end the MLflow run, exit, finish the row", "last_task", "finished"),
    ("final status seen (10 ms poll)", "finished", "seen"),
)


def ours(client, pipeline, arguments: dict, marks: list | None = None) -> float:
    from jupyter_mlplat.pipelines.compile import compile_pipeline

    t = {"start": time.time()}
    started = time.perf_counter()
    compiled = compile_pipeline(pipeline)
    t["compiled"] = time.time()
    run = client.submit_pipeline(pipeline.name, compiled, arguments, "local", "bench", "", None)
    t["returned"] = time.time()
    while True:
        run = client.show_pipeline_run(run.id)
        if run.status in FINAL:
            break
        time.sleep(POLL)
    took = time.perf_counter() - started
    t["seen"] = time.time()
    if run.status != "succeeded":
        raise RuntimeError(f"run {run.id} {run.status}: {run.reason}")
    if marks is not None:
        t["claimed"], t["finished"] = run.started_at.timestamp(), run.finished_at.timestamp()
        t["first_task"] = min(task.started for task in run.tasks)
        t["last_task"] = max(task.ended for task in run.tasks)
        info = marks_client[0].get_run(run.mlflow_run_id).info
        t["mlflow_start"] = info.start_time / 1000
        marks.append(t)
    return took


marks_client: list = []


def bare_kfp_local(pipeline, arguments: dict, root: Path) -> float:
    from kfp import local

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    started = time.perf_counter()
    pipeline(**arguments)
    return time.perf_counter() - started


def bare_papermill(first: Path, second: Path, out: Path) -> float:
    import papermill

    # (what a step's kernel gets: a file to record the first notebook's output in)
    os.environ["MLPLAT_STEP_OUTPUTS"] = str(out / "outputs.json")
    started = time.perf_counter()
    for path, parameters in ((first, {"rows": 3}), (second, {"rows": 6})):
        papermill.execute_notebook(
            str(path), str(out / f"{path.stem}-out.ipynb"), parameters=parameters,
            kernel_name="python3", progress_bar=False,
        )  # fmt: skip
    took = time.perf_counter() - started
    del os.environ["MLPLAT_STEP_OUTPUTS"]
    return took


def main() -> int:
    import logging

    from jupyter_mlplat import fluent
    from jupyter_mlplat.client import PlatformClient
    from jupyter_mlplat.identity import Identity
    from jupyter_mlplat.settings import MlplatSettings, reset_settings
    from tests import hub_fixtures
    from tests.servers import MlflowServer

    logging.getLogger().setLevel(logging.WARNING)  # kfp.local logs every task at INFO
    root = os.geteuid() == 0
    accounts_before = {e.pw_name for e in pwd.getpwall()}
    tmp = Path(tempfile.mkdtemp(prefix="mlplat-bench-pipelines-"))
    shared = hub_fixtures.isolation_root() if root else tmp
    homes = shared / f"job-homes-{uuid.uuid4().hex[:6]}"
    homes.mkdir(mode=0o711)
    server = MlflowServer(tmp / "mlflow")
    client = None
    results: dict[str, list[float]] = {k: [] for k in ("ours3", "bare3", "oursnb", "barenb")}
    marks: list[dict] = []
    try:
        print("starting mlflow server ...", flush=True)
        server.start()
        make_account(homes)
        settings = MlplatSettings(
            home=str(tmp / "home"), user=OWNER, teams=["churn"], teams_source="test",
            tracking_uri=server.uri, store_url=f"sqlite:///{tmp / 'platform.db'}",
            jobs_work_dir=str(shared / f"job-work-{uuid.uuid4().hex[:6]}"),
            jobs_account_prefix=hub_fixtures.TEST_ACCOUNT_PREFIX,
            jobs_python=hub_fixtures.user_python() if root else sys.executable, jobs_workers=2,
        )  # fmt: skip
        fluent.reset()
        reset_settings(settings)
        client = PlatformClient(
            settings, transport="inprocess", identity=Identity(OWNER, ("churn",), "test")
        )
        three = three_steps()
        notebooks = tmp / "notebooks"
        notebooks.mkdir()
        first, second = step_notebooks(notebooks)
        two = two_notebook_steps(first, second)
        from mlflow import MlflowClient

        marks_client.append(MlflowClient(server.uri))
        for index in range(REPEATS + 1):  # the first of each is the warm-up
            print(f"  round {index}/{REPEATS} ...", flush=True)
            timings = {
                "ours3": ours(client, three, {"x": 1}, marks if index else None),
                "bare3": bare_kfp_local(three, {"x": 1}, tmp / f"kfp-{index}"),
                "oursnb": ours(client, two, {"rows": 3}),
                "barenb": bare_papermill(first, second, notebooks),
            }
            if index:
                for key, value in timings.items():
                    results[key].append(value)
    finally:
        if client is not None:
            client._transport.platform.resources.close()
        reset_settings(None)
        fluent.reset()
        server.stop()
        for entry in pwd.getpwall():
            if entry.pw_name.startswith(hub_fixtures.TEST_ACCOUNT_PREFIX) and (
                entry.pw_name not in accounts_before
            ):
                subprocess.run(["userdel", entry.pw_name], capture_output=True)
        if hub_fixtures._ROOT:
            shutil.rmtree(hub_fixtures._ROOT.pop(), ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, root, marks)
    return 0


def report(results: dict[str, list[float]], root: bool, marks: list[dict]) -> None:
    import kfp

    who = "as the owner's OS account" if root else "as this user"
    print(f"\nkfp {kfp.__version__}, 2 cores, runs {who}; median and p90 of {REPEATS}")
    print(f"{'path':56} {'median s':>9} {'p90 s':>7} {'ratio':>7}")
    for label, key, base in (
        ("3 steps: %mlplat pipeline submit --local (to final)", "ours3", "bare3"),
        ("3 steps: kfp.local directly, in this process", "bare3", "bare3"),
        ("2 notebook steps: through the platform", "oursnb", "barenb"),
        ("2 notebooks: papermill.execute_notebook in sequence", "barenb", "barenb"),
    ):
        values = results[key]
        ratio = med(values) / med(results[base])
        print(f"{label:56} {med(values):9.2f} {pct(values, 0.9):7.2f} {ratio:6.2f}x")
    print(f"   target: 3 steps through the platform <= 1.20x kfp.local; now "
          f"{med(results['ours3']) / med(results['bare3']):.2f}x")  # fmt: skip
    print("   each run: " + json.dumps({k: [round(v, 2) for v in vs] for k, vs in results.items()}))
    print("\n   where the 3-step run's time goes through the platform (medians)")
    for label, start, end in SEGMENTS:
        print(f"   {label:62} {med([m[end] - m[start] for m in marks]) * 1000:6.0f} ms")


if __name__ == "__main__":
    sys.exit(main())
