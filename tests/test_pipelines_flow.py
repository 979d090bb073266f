"""Kubeflow pipelines run locally through the platform (issue 11), in-process: real kfp
(compile, kfp.local), papermill, kernels, the platform store and an MLflow server, the
jobs' worker pool; as root each pipeline runs as its owner's OS account.
"""

# No `from __future__ import annotations`: KFP reads components' annotations as types.
import json
import time
from pathlib import Path

import nbformat
import pytest
from kfp import dsl
from mlflow import MlflowClient

from jupyter_mlplat.errors import NotFoundError, PermissionDenied, UsageError
from jupyter_mlplat.pipelines.compile import compile_pipeline
from jupyter_mlplat.pipelines.notebook_step import notebook_step
from tests.test_jobs_flow import ALICE, BOB, ROOT, jobs  # noqa: F401 - the fixture

FINAL = ("succeeded", "failed", "cancelled", "interrupted", "skipped")


def nb(parameters: str, *cells: str):
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    notebook.cells = [cell] + [nbformat.v4.new_code_cell(c) for c in cells]
    notebook.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3", "language": "python"
    }  # fmt: skip
    return nbformat.from_dict(json.loads(nbformat.writes(notebook)))


FEATURES = nb(
    "rows = 10",
    "import jupyter_mlplat as mlplat, os\nmlplat.step_output('rows', rows * 2)\n"
    "print('features uid', os.getuid(), 'rows', rows)",
)
TRAIN = nb(
    "rows = 1",
    "import mlflow, time\nmlflow.start_run()\nmlflow.log_metric('rows', rows)\ntime.sleep(1.5)\n"
    "print('train on', rows)",
)


def two_steps():
    features = notebook_step("work/features.ipynb", FEATURES, outputs={"rows": int})
    train = notebook_step("work/train.ipynb", TRAIN)

    @dsl.pipeline(name="features-train")
    def features_train(n: int = 5):
        made = features(rows=n)
        train(rows=made.outputs["rows"])

    return features_train


@dsl.component(install_kfp_package=False)
def explode(x: int) -> int:
    raise ValueError(f"no good value: {x}")


@dsl.pipeline(name="exploding")
def exploding(x: int = 3):
    explode(x=x)


@dsl.container_component
def shell():
    return dsl.ContainerSpec(image="alpine", command=["echo", "hi"])


@dsl.pipeline(name="containers")
def containers():
    shell()


def wait_final(client, run_id, timeout=240, seen=None):
    deadline = time.monotonic() + timeout
    while True:
        run = client.show_pipeline_run(run_id)
        if seen is not None:
            seen.append((run.status, tuple((t.name, t.state) for t in run.tasks)))
        if run.status in FINAL:
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.3)


def submit(client, pipeline, arguments=None, mode="local", experiment=""):
    return client.submit_pipeline(
        pipeline.name, compile_pipeline(pipeline), arguments or {}, mode, experiment, "", None
    )


def test_two_notebook_steps_run_as_the_owner_with_their_notebooks_and_mlflow_runs(jobs):  # noqa: F811
    alice = jobs(ALICE)
    pipeline = two_steps()
    run = submit(alice, pipeline, {"n": 7}, experiment="pipes")
    assert run.status == "queued" and run.mode == "local" and run.experiment == "churn/pipes"
    assert [t.name for t in run.tasks] == ["notebook-features", "notebook-train"]
    seen = []
    done = wait_final(alice, run.id, seen=seen)
    assert done.status == "succeeded", (done, alice.pipeline_logs(run.id, None).text[-3000:])
    # Its tasks' states were seen while it ran: the first done, the second under way.
    assert ("running", (("notebook-features", "succeeded"), ("notebook-train", "running"))) in seen
    features, train = done.tasks
    assert (features.state, train.state) == ("succeeded", "succeeded")
    assert features.outputs["rows"] == 14 and features.notebook and train.notebook
    executed = alice.pipeline_task_notebook(run.id, "notebook-train").notebook
    printed = "".join("".join(o.get("text", "")) for c in executed["cells"]
                      for o in c.get("outputs", []))  # fmt: skip
    assert "train on 14" in printed
    features_out = json.dumps(alice.pipeline_task_notebook(run.id, "notebook-features").notebook)
    if ROOT:
        uid = int(features_out.split("features uid ")[1].split()[0])
        assert uid == jobs.accounts["alice"].pw_uid
    # MLflow: the pipeline's run keeps the compiled YAML; each step's run is its child, as
    # alice, with the executed notebook; the train notebook's metric is in its step's run.
    mlflow = MlflowClient(jobs.mlflow.uri)
    parent = mlflow.get_run(done.mlflow_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["mlflow.user"] == "alice"
    assert [a.path for a in mlflow.list_artifacts(parent.info.run_id, "pipeline")] == [
        "pipeline/pipeline.yaml"
    ]
    for task in (features, train):
        child = mlflow.get_run(task.mlflow_run_id)
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["mlflow.user"] == "alice" and child.info.status == "FINISHED"
        assert mlflow.get_experiment(child.info.experiment_id).name == "churn/pipes"
        names = [a.path for a in mlflow.list_artifacts(child.info.run_id, "notebook")]
        assert names == [f"notebook/{task.name.removeprefix('notebook-')}.ipynb"]
    assert mlflow.get_run(train.mlflow_run_id).data.metrics["rows"] == 14
    # One task's log, and the run in the list; not among the jobs.
    assert "train on 14" in alice.pipeline_logs(run.id, "notebook-train").text
    assert "features uid" not in alice.pipeline_logs(run.id, "notebook-train").text
    assert run.id in [r.id for r in alice.list_pipeline_runs().items]
    assert run.id not in [r.id for r in alice.list_jobs().items]
    with pytest.raises(NotFoundError, match="pipeline"):
        alice.show_job(run.id)


def test_a_component_that_raises_fails_the_run_naming_the_task_and_its_log(jobs):  # noqa: F811
    alice = jobs(ALICE)
    run = submit(alice, exploding, {"x": 4})
    done = wait_final(alice, run.id)
    assert done.status == "failed", done
    assert "the task explode failed" in done.reason
    assert [(t.name, t.state) for t in done.tasks] == [("explode", "failed")]
    assert "ValueError: no good value: 4" in alice.pipeline_logs(run.id, "explode").text
    with pytest.raises(NotFoundError, match="its tasks: explode"):
        alice.pipeline_logs(run.id, "nothing")


def test_bad_arguments_and_bad_pipelines_are_refused_before_anything_runs(jobs):  # noqa: F811
    alice = jobs(ALICE)
    before = len(alice.list_pipeline_runs().items)
    yaml_text = compile_pipeline(exploding)
    cases = [
        ({"y": 1}, "exploding has no argument 'y'; its arguments: x"),
        ({"x": "3"}, "x of exploding is integer, not str"),
        ({"x": True}, "x of exploding is integer, not bool"),
    ]
    for arguments, message in cases:  # the service checks again what the kernel checked
        with pytest.raises(UsageError, match=message):
            alice.submit_pipeline("exploding", yaml_text, arguments, "local", "", "", None)
    with pytest.raises(UsageError, match="not a compiled KFP pipeline"):
        alice.submit_pipeline("x", "a: 1\n", {}, "local", "", "", None)
    with pytest.raises(UsageError, match="shell is a container component"):
        submit(alice, containers)
    assert len(alice.list_pipeline_runs().items) == before


def test_kfp_without_an_api_names_the_setting(jobs):  # noqa: F811
    alice = jobs(ALICE)
    before = len(alice.list_pipeline_runs().items)
    with pytest.raises(UsageError, match="No Kubeflow Pipelines API is configured"):
        submit(alice, exploding, mode="kfp")
    assert len(alice.list_pipeline_runs().items) == before  # nothing half-written


def test_another_teams_pipeline_run_is_forbidden(jobs):  # noqa: F811
    alice, bob = jobs(ALICE), jobs(BOB)
    run = submit(alice, exploding, {"x": 1})
    wait_final(alice, run.id)
    for call in (
        lambda: bob.show_pipeline_run(run.id),
        lambda: bob.pipeline_logs(run.id, None),
        lambda: bob.pipeline_task_notebook(run.id, "explode"),
        lambda: bob.cancel_pipeline_run(run.id),
    ):
        with pytest.raises(PermissionDenied):
            call()
    assert run.id not in [r.id for r in bob.list_pipeline_runs().items]


def test_cancelling_a_running_pipeline_stops_it(jobs):  # noqa: F811
    alice = jobs(ALICE)
    slow = notebook_step("work/slow.ipynb", nb("x = 1", "import time\ntime.sleep(120)"))

    @dsl.pipeline(name="slow")
    def slow_pipeline():
        slow()

    run = submit(alice, slow_pipeline)
    deadline = time.monotonic() + 120
    while alice.show_pipeline_run(run.id).tasks[0].state != "running":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    alice.cancel_pipeline_run(run.id)
    done = wait_final(alice, run.id, timeout=60)
    assert done.status == "cancelled" and done.tasks[0].state == "cancelled", done


def test_a_link_in_the_owners_folders_never_leads_the_platforms_copy_out_of_them(tmp_path):
    """tasks.json and every folder under the run's working folder are the owner's: a task
    naming a notebook through a link to a folder of the platform's (another team's executed
    notebooks) gets nothing copied, where a real file is kept."""
    from jupyter_mlplat.jobs.runner import JobRunner

    secret = tmp_path / "platform-only"
    secret.mkdir(mode=0o700)
    (secret / "other-team.ipynb").write_text(json.dumps({"cells": [], "secret": "fraud data"}))
    workdir = tmp_path / "work" / "5"
    (workdir / "real").mkdir(parents=True)
    (workdir / "real" / "ok.ipynb").write_text(json.dumps({"cells": [], "mine": True}))
    (workdir / "evil").symlink_to(secret)
    (workdir / "tasks.json").write_text(json.dumps([
        {"name": "steal", "state": "succeeded", "notebook": "evil/other-team.ipynb"},
        {"name": "dots", "state": "succeeded", "notebook": "real/../evil/other-team.ipynb"},
        {"name": "mine", "state": "succeeded", "notebook": "real/ok.ipynb"},
    ]))  # fmt: skip
    runner = JobRunner(store_root=tmp_path / "store", work_root=tmp_path / "work",
                       account_prefix="mlplat-test-job-", warm=False)  # fmt: skip
    run_dir = runner._private(runner.run_dir(5))
    outcome = runner._pipeline_outcome(
        0, "", workdir / "tasks.json", workdir, run_dir, run_dir / "log"
    )
    assert [(t["name"], t.get("notebook")) for t in outcome.tasks] == [
        ("steal", False), ("dots", None), ("mine", True),
    ]  # fmt: skip  # (a path with '..' is dropped when tasks.json is read)
    assert not runner.task_notebook_of(5, "steal").exists()
    assert json.loads(runner.task_notebook_of(5, "mine").read_text())["mine"] is True


@dsl.component(install_kfp_package=False)
def square(x: int) -> int:
    """Fails if another iteration runs meanwhile (kfp.local would run two in threads)."""
    import glob
    import os
    import time

    mark = f"running-square-{os.getpid()}"
    open(mark, "w").close()
    time.sleep(0.3)
    others = [path for path in glob.glob("running-square-*") if not path.endswith(mark)]
    os.remove(mark)
    assert not others, f"another iteration ran at the same time: {others}"
    return x * x


@dsl.component(install_kfp_package=False)
def total(values: list) -> str:
    return repr(values)


@dsl.component(install_kfp_package=False)
def write_text(text: str, out: dsl.Output[dsl.Artifact]):
    with open(out.path, "w") as file:
        file.write(text)


@dsl.component(install_kfp_package=False)
def read_text(data: dsl.Input[dsl.Artifact]) -> str:
    with open(data.path) as file:
        return file.read().upper()


@dsl.component(install_kfp_package=False)
def say(text: str):
    print("SAY", text)


@dsl.pipeline(name="kfp-local-features")
def local_features(n: int = 3, flag: bool = True):
    with dsl.ExitHandler(say(text="exit handler ran")):
        wrote = write_text(text="between tasks")
        read_text(data=wrote.outputs["out"])
        with dsl.ParallelFor([1, 2, 3]) as item:
            squared = square(x=item)
        total(values=dsl.Collected(squared.output))
        with dsl.If(flag == True):  # noqa: E712 - KFP's condition syntax
            say(text="if branch")
        with dsl.Else():
            say(text="else branch")


def test_what_kfp_local_runs_runs_through_the_platform_with_tasks_forked(jobs):  # noqa: F811
    """The kfp.local (2.17) features this platform relies on, through its path (the job
    process, tasks forked from it): artifacts between tasks, ParallelFor with Collected
    (ints come back as floats; one iteration at a time), If/Else (the other branch never starts), an ExitHandler,
    and an importer of a plain path (a file:// URI is passed through literally: the task
    finds no such file)."""
    import os

    from tests.hub_fixtures import isolation_root

    alice = jobs(ALICE)
    run = submit(alice, local_features, {"flag": True})
    shared = Path(isolation_root()) / f"imported-{os.getpid()}.txt"
    shared.write_text("imported text")
    os.chmod(shared, 0o644)

    @dsl.pipeline(name="imports")
    def imports(uri: str = str(shared)):
        imported = dsl.importer(artifact_uri=uri, artifact_class=dsl.Artifact)
        read_text(data=imported.output)

    plain = submit(alice, imports)
    literal = submit(alice, imports, {"uri": f"file://{shared}"})
    imported, refused = wait_final(alice, plain.id), wait_final(alice, literal.id)
    assert imported.status == "succeeded", alice.pipeline_logs(plain.id, None).text[-2000:]
    assert {t.name: t.outputs for t in imported.tasks}["read-text"]["Output"] == "IMPORTED TEXT"
    assert refused.status == "failed" and "read-text" in refused.reason, refused
    assert (
        "No such file or directory: 'file://" in alice.pipeline_logs(literal.id, "read-text").text
    )
    done = wait_final(alice, run.id)
    log = alice.pipeline_logs(run.id, None).text
    assert done.status == "succeeded", f"{done.reason}\n{log[-3000:]}"
    states = {t.name: t.state for t in done.tasks}
    outputs = {t.name: t.outputs for t in done.tasks}
    assert outputs["read-text"]["Output"] == "BETWEEN TASKS"
    assert outputs["total"]["Output"] in ("[1.0, 4.0, 9.0]", "[1, 4, 9]")
    assert "SAY if branch" in log and "SAY else branch" not in log
    assert "SAY exit handler ran" in log
    assert all(state in ("succeeded", "skipped") for state in states.values()), states
