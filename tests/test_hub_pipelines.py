"""Issue 11's "done when", through the real hub: from alice's own server, the shipped
example notebook (02_pipeline_features_train.ipynb, copied into her home at spawn) is run
under nbval (its parameters put in by papermill): it builds two notebook steps (features →
train, logging to MLflow) and runs them as a pipeline with `%mlplat pipeline submit --local --wait`. The platform service runs
it with kfp.local in its worker pool, as alice's OS account. Meanwhile the test reads the
run through the service's REST API and sees its tasks' states change; at the end the run
has both executed notebooks and both steps' MLflow runs (children of the pipeline's run,
logged as alice), and bob's token is refused. With her server gone (as after culling), a
pipeline she submits over REST still runs, as her account."""

# No `from __future__ import annotations`: KFP reads the component's annotations as types.
import asyncio
import json
import pwd
import time

import requests
from kfp import dsl

from jupyter_mlplat.pipelines.compile import compile_pipeline
from tests.hub_fixtures import TEST_ACCOUNT_PREFIX
from tests.test_notebooks import check_nbval

# nbval over the example, with the test's parameters put in by papermill (prepare only:
# nbval runs it, each cell must pass; outputs vary, so --nbval-lax).
RUN_EXAMPLE = """
import json, subprocess, sys, papermill
papermill.execute_notebook(
    "02_pipeline_features_train.ipynb", "pipeline-nbval.ipynb", prepare_only=True,
    parameters={"customers": 240, "C": 0.5},
)
done = subprocess.run(
    [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-v",
     "--color=no", "pipeline-nbval.ipynb"],
    capture_output=True, text=True, timeout=500,
)
cells = sum(c["cell_type"] == "code" for c in json.load(open("pipeline-nbval.ipynb"))["cells"])
print("RESULT=" + json.dumps({"rc": done.returncode, "stdout": done.stdout, "cells": cells,
                              "stderr": done.stderr[-3000:]}))
"""
FINAL = ("succeeded", "failed", "cancelled", "interrupted", "skipped")


@dsl.component(install_kfp_package=False)
def uid_of_task() -> int:
    import os

    return os.getuid()


@dsl.pipeline(name="whoami")
def whoami():
    uid_of_task()


def api(hub, token, path):
    return requests.get(
        f"{hub.url}/services/mlplat/{path}", headers={"Authorization": f"token {token}"},
        timeout=60,
    )  # fmt: skip


async def test_alice_runs_the_example_pipeline_of_two_notebook_steps(platform_hub, hub_tokens):
    hub, alice = platform_hub, hub_tokens["alice"]
    hub.spawn("alice")
    seen: list[tuple] = []

    async def watch():
        while True:
            answer = await asyncio.to_thread(api, hub, alice, "api/pipelines?limit=5")
            items = answer.json()["items"] if answer.status_code == 200 else []
            if items:
                run = items[0]
                seen.append((run["status"], tuple((t["name"], t["state"]) for t in run["tasks"])))
            await asyncio.sleep(0.5)

    watcher = asyncio.create_task(watch())
    try:
        out = await hub.execute("alice", RUN_EXAMPLE, token=alice, timeout=400)
    finally:
        watcher.cancel()
        hub.stop_server("alice")
    result = json.loads(next(x for x in out.splitlines() if x.startswith("RESULT="))[7:])
    # Every cell passed under nbval (the notebook asserts the run succeeded itself).
    assert result["rc"] == 0, result["stdout"][-6000:] + result["stderr"]
    check_nbval(result["stdout"], {"pipeline-nbval.ipynb": result["cells"]})

    # The tasks' states were seen changing while it ran.
    states = [tasks for status, tasks in seen if status == "running"]
    assert (("notebook-features", "succeeded"), ("notebook-train", "running")) in states, seen

    (run,) = api(hub, alice, "api/pipelines?limit=1").json()["items"]
    assert run["status"] == "succeeded" and run["owner"] == "alice"
    assert run["arguments"] == {"customers": 240, "C": 0.5}
    features, train = run["tasks"]
    assert features["outputs"]["rows"] == 240 and 0.0 <= train["outputs"]["accuracy"] <= 1.0
    printed = {}
    for task in (features, train):
        assert task["state"] == "succeeded" and task["notebook"], task
        notebook = api(hub, alice, f"api/pipelines/{run['id']}/tasks/{task['name']}/notebook")
        assert notebook.status_code == 200 and notebook.json()["notebook"]["cells"]
        printed[task["name"]] = " ".join(
            "".join(o["text"]) for c in notebook.json()["notebook"]["cells"]
            for o in c.get("outputs", []) if "text" in o
        )  # fmt: skip
        child = requests.get(
            f"{hub.url}/services/mlflow/api/2.0/mlflow/runs/get",
            params={"run_id": task["mlflow_run_id"]},
            headers={"Authorization": f"Bearer {alice}"}, timeout=60,
        ).json()["run"]  # fmt: skip
        tags = {t["key"]: t["value"] for t in child["data"]["tags"]}
        assert tags["mlflow.parentRunId"] == run["mlflow_run_id"]
        assert child["info"]["user_id"] == "alice" and child["info"]["status"] == "FINISHED"
    assert "trained on 240 rows: holdout accuracy" in printed["notebook-train"], printed
    log = api(hub, alice, f"api/pipelines/{run['id']}/logs?task=notebook-features")
    assert "wrote 240 rows to churn_table.csv" in log.json()["text"], log.text  # the task's log
    metrics = {m["key"] for m in child["data"]["metrics"]}
    assert "holdout_accuracy" in metrics  # the train notebook's own mlflow.start_run()
    assert api(hub, hub_tokens["bob"], f"api/pipelines/{run['id']}").status_code == 403
    assert requests.get(f"{hub.url}/services/mlplat/api/pipelines", timeout=30).status_code == 401

    # Her server is gone (as after culling): a pipeline she submits still runs, as her.
    assert hub.api("GET", "/users/alice").json()["servers"] == {}
    submitted = requests.post(
        f"{hub.url}/services/mlplat/api/pipelines", headers={"Authorization": f"token {alice}"},
        json={"name": "whoami", "pipeline_yaml": compile_pipeline(whoami), "arguments": {}},
        timeout=60,
    )  # fmt: skip
    assert submitted.status_code == 201, submitted.text
    deadline = time.monotonic() + 180
    while (later := api(hub, alice, f"api/pipelines/{submitted.json()['id']}").json())[
        "status"
    ] not in FINAL:
        assert time.monotonic() < deadline, later
        time.sleep(0.5)
    assert later["status"] == "succeeded", later
    uid = later["tasks"][0]["outputs"]["Output"]
    assert uid == pwd.getpwnam(f"{TEST_ACCOUNT_PREFIX}alice").pw_uid, later
