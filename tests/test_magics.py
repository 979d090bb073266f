"""The %mlplat magics driven through a real IPython shell."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from IPython.utils.capture import capture_output

import jupyter_mlplat as mlplat
from jupyter_mlplat.errors import PermissionDenied, UsageError


def run_cell(shell, source):
    with capture_output() as captured:
        result = shell.run_cell(source, store_history=False)
    return result, captured


def assert_one_line_error(result, captured, error_type, fragment):
    assert isinstance(result.error_in_exec, error_type), result.error_in_exec
    assert fragment in str(result.error_in_exec)
    shown = captured.stdout + captured.stderr
    assert "Traceback" not in shown
    assert fragment in shown


@pytest.fixture
def shell(ipython_shell, configure, sqlite_tracking_uri):
    configure(tracking_uri=sqlite_tracking_uri)
    return ipython_shell


def test_status_returns_a_value(shell):
    result, _ = run_cell(shell, "s = %mlplat status")
    assert result.success
    status = shell.user_ns["s"]
    assert status.user == "alice" and status.teams == ["churn", "fraud"]
    assert "churn" in status._repr_html_()


def test_experiment_and_run_cell_with_params(shell):
    from mlflow import MlflowClient

    result, _ = run_cell(shell, "%mlplat experiment magic-demo")
    assert result.success and result.result.name == "churn/magic-demo"
    cell = (
        "%%mlplat run baseline -p lr=0.1 -p n=3 -p note=hello --no-autolog\n"
        "total = 0\n"
        "for i in range(4):\n"
        "    %mlplat log loss={1.0 / (i + 1)}\n"
        "    total += i\n"
        "total * 10\n"
    )
    result, captured = run_cell(shell, cell)
    assert result.success, result.error_in_exec
    assert result.result == 60  # the cell's last expression is its value
    run_info = mlplat.last_run()
    assert f"Run {run_info.run_id}" in captured.stdout
    run = MlflowClient(tracking_uri=mlplat.status().tracking_uri).get_run(run_info.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "baseline"
    assert run.data.params == {"lr": "0.1", "n": "3", "note": "hello"}
    assert run.data.tags["mlplat.autolog"] == "false"
    history = MlflowClient(tracking_uri=mlplat.status().tracking_uri).get_metric_history(
        run_info.run_id, "loss"
    )
    assert [m.value for m in history] == [1.0, 0.5, 1.0 / 3, 0.25]


def test_autolog_records_a_sklearn_fit(shell):
    from mlflow import MlflowClient

    cell = (
        "%%mlplat run autologged\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "import numpy as np\n"
        "X = np.random.RandomState(0).rand(60, 3)\n"
        "y = (X[:, 0] > 0.5).astype(int)\n"
        "model = LogisticRegression(C=0.5).fit(X, y)\n"
    )
    result, _ = run_cell(shell, cell)
    assert result.success, result.error_in_exec
    run = MlflowClient(tracking_uri=mlplat.status().tracking_uri).get_run(mlplat.last_run().run_id)
    assert run.data.params["C"] == "0.5"
    assert "training_accuracy_score" in run.data.metrics


def test_a_failing_cell_ends_the_run_failed_and_the_error_reaches_the_user(shell):
    from mlflow import MlflowClient

    result, captured = run_cell(
        shell, "%%mlplat run doomed --no-autolog\nraise ValueError('bad data')\n"
    )
    assert isinstance(result.error_in_exec, ValueError)
    assert "bad data" in captured.stdout + captured.stderr
    run = MlflowClient(tracking_uri=mlplat.status().tracking_uri).get_run(mlplat.last_run().run_id)
    assert run.info.status == "FAILED"
    assert mlplat.active_run() is None


@pytest.mark.parametrize(
    ("source", "error_type", "fragment"),
    [
        ("%mlplat log acc=high", UsageError, "'acc' must be a number"),
        ("%mlplat log lr", UsageError, "Could not read 'lr' as key=value"),
        ("%%mlplat run -p lr\npass", UsageError, "Could not read 'lr' as key=value"),
        ("%mlplat log", UsageError, "Give at least one metric"),
        ("%mlplat frobnicate", UsageError, "Unknown command 'frobnicate'"),
        ("%mlplat pipeline submit x.ipynb", UsageError, "'x.ipynb' is not a Python name"),
        ("%mlplat pipeline submit nope", UsageError, "nope is not defined in this notebook"),
        ("%mlplat pipeline submit --kfp", UsageError, "required: FUNC"),
        ("%mlplat job run ../x.ipynb", UsageError, "outside your root folder"),
        ("%mlplat predict m --data nothing_here", UsageError, "no variable named 'nothing_here'"),
        ("%mlplat deploy m 1 --canary x", UsageError, "--canary"),
        ("%mlplat run x", UsageError, "cell magic"),
        ("%mlplat experiment", UsageError, "required: NAME"),
        ("%mlplat experiment payments/x", PermissionDenied, "not a member of team 'payments'"),
        ("%mlplat experiment 'unclosed", UsageError, "check your quotes"),
        ("%mlplat features v:f --entities nope", UsageError, "no variable named 'nope'"),
    ],
)
def test_user_mistakes_are_one_line(shell, source, error_type, fragment):
    result, captured = run_cell(shell, source)
    assert_one_line_error(result, captured, error_type, fragment)


def test_log_outside_any_run_names_the_fix(shell):
    result, captured = run_cell(shell, "%mlplat log loss=1")
    assert_one_line_error(result, captured, UsageError, "%%mlplat run")


def test_help_lists_commands(shell):
    result, captured = run_cell(shell, "%mlplat help")
    assert result.success
    for command in ("status", "experiment", "run", "log", "features"):
        assert f"%mlplat {command}" in captured.stdout


def test_load_ext_imports_no_heavy_sdk():
    code = (
        "import sys, json\n"
        "from IPython.testing.globalipapp import start_ipython\n"
        "shell = start_ipython()\n"
        "shell.run_line_magic('load_ext', 'jupyter_mlplat')\n"
        "print(json.dumps({m: m in sys.modules for m in "
        "['feast', 'kfp', 'kserve', 'mlflow', 'pandas']}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == {
        "feast": False,
        "kfp": False,
        "kserve": False,
        "mlflow": False,
        "pandas": False,
    }


def test_magic_lines_expand_variables_of_the_calling_scope(shell):
    cell = (
        "def pick(suffix):\n"
        "    return get_ipython().run_line_magic('mlplat', 'experiment local-{suffix}')\n"
        "chosen = pick('x1')\n"
    )
    result, _ = run_cell(shell, cell)
    assert result.success, result.error_in_exec
    assert shell.user_ns["chosen"].name == "churn/local-x1"


def test_a_trailing_comment_is_not_an_argument(shell):
    from jupyter_mlplat.magics import _split

    assert _split("status  # who am I") == ["status"]
    assert _split("log name=a#b acc=1 # note") == ["log", "name=a#b", "acc=1"]
    assert _split("approval reject 3 --comment 'see # 12' # why") == [
        "approval", "reject", "3", "--comment", "see # 12",
    ]  # fmt: skip
    result, _ = run_cell(shell, "%mlplat help  # list them")
    assert result.success, result.error_in_exec
