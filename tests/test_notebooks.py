"""Example notebooks executed end to end in real kernels (papermill and nbval)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

EXAMPLES = REPO_ROOT / "example_notebooks"
NOTEBOOK = EXAMPLES / "01_track_and_features.ipynb"
REPORT = EXAMPLES / "04_scheduled_report.ipynb"
# What runs where. Here, without a platform service: 01 (MLflow, Feast, the in-process
# platform) and 04 (MLflow and the in-process platform's lists). In the real hub, from
# alice's server: 03 and 04 with nbval (tests/test_hub_examples.py), 02 with nbval too
# (tests/test_hub_pipelines.py).
LOCAL = ("01_track_and_features.ipynb", "04_scheduled_report.ipynb")
# ... and 02's two step notebooks, by hand (they are 02's pipeline's steps in the hub).
STEPS = ("pipeline_steps/features.ipynb", "pipeline_steps/train.ipynb")
NOT_HERE = {
    # The pipeline example needs the platform service's workers, running as the owner's
    # account: tests/test_hub_pipelines.py runs it in the real hub; its steps run here, by hand.
    "02_pipeline_features_train.ipynb": "tests/test_hub_pipelines.py",
    # Deploying starts a model server, which the platform service runs as a serving account
    # of the team: tests/test_hub_examples.py runs it in alice's server on the real hub.
    "03_approve_deploy_predict.ipynb": "tests/test_hub_examples.py",
}

# nbval's items read `examples/pipeline_steps/train::ipynb::Cell 0 PASSED` under -v.
_ITEM = re.compile(r"^(?P<path>\S+?)(?:::ipynb|\.ipynb)::Cell \d+ (?P<outcome>[A-Z]+)\b", re.M)
_SUMMARY = re.compile(r"^=+ (?P<counts>[^=]*?) in [0-9.]+s(?: \([^)]*\))? =+$", re.M)


def code_cells(notebook: Path) -> int:
    """How many items nbval makes of ``notebook``: one per code cell."""
    return sum(c["cell_type"] == "code" for c in json.loads(notebook.read_text())["cells"])


def check_nbval(output: str, expected: dict[str, int]) -> dict[str, int]:
    """``pytest -v --nbval-lax`` output: every cell of every notebook in ``expected`` (path
    relative to the folder run → code cells) passed and nothing else ran; the summary line's
    counts agree."""

    def which(path: str) -> str:
        for name in expected:
            stem = name.removesuffix(".ipynb")
            if path == stem or path.endswith("/" + stem):
                return name
        return path

    output = re.sub(r"\x1b\[[0-9;]*m", "", output)  # pytest colours what a terminal might show
    outcomes: dict[str, list[str]] = {}
    for item in _ITEM.finditer(output):
        outcomes.setdefault(which(item["path"]), []).append(item["outcome"])
    seen = {name: len(found) for name, found in outcomes.items()}
    assert seen == expected, f"cells run per notebook {seen}, expected {expected}:\n{output}"
    failed = {n: o for n, o in outcomes.items() if set(o) != {"PASSED"}}
    assert not failed, f"cells not passed: {failed}\n{output}"
    (summary,) = _SUMMARY.findall(output) or [""]
    counts = {w: int(n) for n, w in re.findall(r"(\d+) (\w+)", summary) if "warning" not in w}
    assert counts == {"passed": sum(expected.values())}, f"summary {summary!r}:\n{output}"
    return counts


@pytest.fixture
def platform_env(monkeypatch, tmp_path, mlflow_server, demo_feature_repo):
    """The environment a kernel of the embedded platform gets."""
    env = {
        "MLPLAT_HOME": str(tmp_path / "home"),
        "MLPLAT_TRACKING_URI": mlflow_server.uri,
        "MLPLAT_FEATURE_REPO": str(demo_feature_repo),
        "MLPLAT_TEAMS": "churn",
        "JUPYTERHUB_USER": "nbuser",
        # What a runner sets (Jupyter Server sets JPY_SESSION_NAME in a Lab): the notebook's
        # hash is part of the lineage the staging approval checks.
        "MLPLAT_NOTEBOOK_PATH": str(NOTEBOOK),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_example_notebook_runs_under_papermill_and_records_its_run(platform_env, tmp_path):
    import papermill
    from mlflow import MlflowClient

    output = tmp_path / "out.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(output),
        parameters={"experiment": "pm-e2e", "C": 0.5},
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
    )
    client = MlflowClient(tracking_uri=platform_env["MLPLAT_TRACKING_URI"])
    experiment = client.get_experiment_by_name("churn/pm-e2e")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["C"] == "0.5"
    assert run.data.tags["mlplat.user"] == "nbuser"
    assert run.data.tags["mlplat.features.views"] == "customer_activity,customer_stats"
    history = client.get_metric_history(run.info.run_id, "holdout_accuracy")
    assert [m.step for m in history] == [0, 1, 2, 3, 4]
    # The documented path reaches staging auto-approval (the notebook asserts it too).
    (version,) = client.search_model_versions(f"run_id = '{run.info.run_id}'")
    assert version.tags["mlplat.approval.staging"] == "approved"


def test_a_failing_notebook_fails_under_papermill(platform_env, tmp_path):
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("%load_ext jupyter_mlplat"),
        nbformat.v4.new_code_cell("%mlplat log accuracy=high"),
        nbformat.v4.new_code_cell("print('never reached')"),
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    source = tmp_path / "bad.ipynb"
    nbformat.write(notebook, source)
    with pytest.raises(PapermillExecutionError) as caught:
        papermill.execute_notebook(
            str(source), str(tmp_path / "bad-out.ipynb"), kernel_name="python3", progress_bar=False
        )
    assert caught.value.ename == "UsageError"
    assert "'accuracy' must be a number" in caught.value.evalue


def test_example_notebooks_pass_nbval(platform_env, tmp_path):
    # A copy: the notebooks write files next to themselves (the pipeline steps' table).
    examples = tmp_path / "examples"
    shutil.copytree(EXAMPLES, examples)
    shipped = {p.name for p in EXAMPLES.glob("*.ipynb")}
    assert shipped == set(LOCAL) | set(NOT_HERE), f"say where {shipped} are run"
    assert {str(p.relative_to(EXAMPLES)) for p in EXAMPLES.glob("*/*.ipynb")} == set(STEPS)
    command = [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider"]
    command += ["-v", "--color=no"]
    for name in NOT_HERE:
        command += ["--ignore", str(examples / name)]
    # 01 runs before 04 (pytest sorts them), so the report finds 01's run in churn-quickstart.
    completed = subprocess.run(
        [*command, str(examples)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    check_nbval(completed.stdout, {name: code_cells(EXAMPLES / name) for name in LOCAL + STEPS})


def _report(output: Path) -> str:
    """The text the executed report printed."""
    cells = json.loads(output.read_text())["cells"]
    return "".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []))


def _files(root: Path, skip: tuple[Path, ...]) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and not any(p.is_relative_to(s) for s in skip)
    }


def _run_report(tmp_path: Path, parameters: dict) -> tuple[str, float]:
    import papermill

    folder, out = tmp_path / "report", tmp_path / "out"
    for made in (folder, out):
        made.mkdir(exist_ok=True)
    notebook = folder / REPORT.name
    if not notebook.exists():
        shutil.copy(REPORT, notebook)
    # The in-process platform keeps its store in MLPLAT_HOME (the platform's, not the report's).
    skip = (tmp_path / "home", out)
    before = _files(tmp_path, skip)
    output = out / f"report-{len(list(out.iterdir()))}.ipynb"
    started = time.monotonic()
    papermill.execute_notebook(
        str(notebook), str(output), parameters=parameters, kernel_name="python3",
        cwd=str(folder), progress_bar=False,
    )  # fmt: skip
    took = time.monotonic() - started
    assert _files(tmp_path, skip) == before  # the report wrote nothing, in its folder or beside
    return _report(output), took


def test_the_report_ranks_the_best_runs_and_says_plainly_when_there_are_none(
    platform_env, tmp_path
):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=platform_env["MLPLAT_TRACKING_URI"])
    seeded = client.create_experiment("churn/report-seeded")
    for name, accuracy, status in (
        ("a", 0.71, "FINISHED"), ("b", 0.93, "FINISHED"), ("c", None, "FINISHED"),
        ("d", 0.88, "FINISHED"), ("e", 0.99, "FAILED"), ("f", 0.80, "FINISHED"),
    ):  # fmt: skip
        run = client.create_run(seeded, run_name=name)
        if accuracy is not None:
            client.log_metric(run.info.run_id, "accuracy", accuracy)
        client.set_terminated(run.info.run_id, status)
    client.create_experiment("churn/report-empty")

    shown, took = _run_report(tmp_path, {"experiment": "report-seeded", "top": 3})
    assert took < 30, f"the report took {took:.1f} s"
    assert "churn/report-seeded: the best 3 finished run(s) by accuracy" in shown, shown
    ranked = [line.split()[:2] for line in shown.splitlines() if re.match(r"^ *[a-f] +0\.", line)]
    assert ranked == [["b", "0.93"], ["d", "0.88"], ["f", "0.80"]], shown  # not the failed e
    assert "Deployments serving now: none" in shown and "waiting for a reviewer: none" in shown

    shown, _ = _run_report(tmp_path, {"experiment": "churn/report-empty"})
    assert "churn/report-empty: no runs yet." in shown, shown
    shown, _ = _run_report(tmp_path, {"experiment": "never-made"})
    assert "No runs yet: there is no experiment 'never-made' of your teams" in shown, shown


def test_the_nbval_check_refuses_a_failed_a_missing_or_an_extra_cell():
    ran = "\n".join(
        [
            "examples/01_track_and_features::ipynb::Cell 0 PASSED          [ 33%]",
            "examples/01_track_and_features::ipynb::Cell 1 PASSED          [ 66%]",
            "examples/pipeline_steps/train::ipynb::Cell 0 PASSED           [100%]",
            "======================== 3 passed, 2 warnings in 12.31s ========================",
        ]
    )
    expected = {"01_track_and_features.ipynb": 2, "pipeline_steps/train.ipynb": 1}
    assert check_nbval(ran, expected) == {"passed": 3}
    for broken, why in (
        (ran.replace("Cell 1 PASSED", "Cell 1 FAILED"), "cells not passed"),
        (ran.replace("3 passed", "2 passed, 1 failed"), "summary"),
        (ran.replace("pipeline_steps/train", "pipeline_steps/features"), "cells run per"),
        (ran.split("\n", 1)[1], "cells run per notebook"),
        (ran.rsplit("\n", 1)[0], "summary"),
    ):
        with pytest.raises(AssertionError, match=why):
            check_nbval(broken, expected)
