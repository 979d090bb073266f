"""The example notebooks that need the platform service, run with nbval the way CI runs every
example: in alice's own server on the real hub, from the copies the spawn put in her home.
03 trains, registers, gets its staging approval, deploys, predicts and undeploys (no model
server is left); 04, the scheduled report, then runs as it is meant to, as a platform job of
hers against 03's experiment (which has runs), and the schedule command its first cell
documents is accepted as written.

Elsewhere: 01 and 04 run with nbval without a platform service (tests/test_notebooks.py, where
04 also meets an experiment with no runs). 02 is left to tests/test_hub_pipelines.py, which
runs it in alice's server under nbval too, while it watches the pipeline through the REST API
(running it here as well would run its pipeline a second time).
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import requests

from jupyter_mlplat.client import PlatformClient
from jupyter_mlplat.resources import example_notebooks_dir
from jupyter_mlplat.settings import MlplatSettings
from tests.hub_fixtures import TEST_ACCOUNT_PREFIX, isolation_root
from tests.test_notebooks import check_nbval, code_cells

WITH_SERVICE = ("03_approve_deploy_predict.ipynb", "04_scheduled_report.ipynb")
DEPLOYMENT = "churn-deploy-model-staging"  # 03's defaults: experiment churn-deploy
PARIS = ZoneInfo("Europe/Paris")

NBVAL = """
import hashlib, json, os, shutil, subprocess, sys
names = NAMES
folder = os.path.abspath("nbval-examples")
shutil.rmtree(folder, ignore_errors=True)
os.makedirs(folder)
for name in names:
    shutil.copy(name, folder)  # the copies the spawn made in her home
# JupyterLab tells a kernel its notebook (JPY_SESSION_NAME), nbval does not: 03's run records
# its notebook's hash from this, part of the lineage the staging approval checks.
env = dict(os.environ, MLPLAT_NOTEBOOK_PATH=os.path.join(folder, names[0]))
done = subprocess.run(
    [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-v", "--color=no",
     *names],
    cwd=folder, env=env, capture_output=True, text=True, timeout=540,
)
print("RESULT=" + json.dumps({
    "home": os.getcwd(), "rc": done.returncode, "stdout": done.stdout,
    "stderr": done.stderr[-3000:],
    "sha256": {n: hashlib.sha256(open(n, "rb").read()).hexdigest() for n in names},
}))
"""

REPORT = r"""
import json, time, papermill
import jupyter_mlplat as mlplat

def printed(notebook):
    return "".join("".join(o.get("text", "")) for c in notebook["cells"]
                   for o in c.get("outputs", []))

# The schedule command of the notebook's first cell, as written; then gone again.
first = json.load(open("04_scheduled_report.ipynb"))["cells"][0]
command = next(line for line in "".join(first["source"]).splitlines()
               if line.startswith("%mlplat job schedule "))
schedule = get_ipython().run_line_magic("mlplat", command[len("%mlplat "):])
scheduled = {"cron": schedule.cron, "timezone": schedule.timezone,
             "parameters": schedule.parameters, "next": schedule.next_fire_at.isoformat()}
%mlplat job unschedule {schedule.id}

# In her server: the platform service answers with her identity.
started = time.monotonic()
papermill.execute_notebook(
    "nbval-examples/04_scheduled_report.ipynb", "nbval-examples/report-out.ipynb",
    parameters={"experiment": "churn-deploy", "top": 3}, cwd="nbval-examples",
    progress_bar=False,
)
here = {"seconds": time.monotonic() - started,
        "text": printed(json.load(open("nbval-examples/report-out.ipynb")))}

# As a job of hers, run by the platform service in a fresh kernel and folder.
run = %mlplat job run 04_scheduled_report.ipynb -p experiment=churn-deploy -p top=3 --wait
job = {"status": run.status, "reason": run.reason, "parameters": run.parameters,
       "seconds": (run.finished_at - run.started_at).total_seconds(),
       "text": printed(mlplat.job_output(run.id) or {"cells": []}), "logs": repr(mlplat.job_logs(run.id))[-3000:]}
print("RESULT=" + json.dumps({"scheduled": scheduled, "here": here, "job": job}))
"""


def result_of(out: str) -> dict:
    return json.loads(next(x for x in out.splitlines() if x.startswith("RESULT="))[7:])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_servers(name: str) -> list[int]:
    """Pids of this session's MLServer processes serving deployment ``name`` (their served
    copies are in the session's folder: another hub on the machine may serve the same name)."""
    found, ours = [], str(isolation_root()).encode()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            serves = f"MLSERVER_MODEL_NAME={name}".encode() in environ.read_bytes().split(b"\0")
            if serves and ours in (environ.parent / "cmdline").read_bytes():
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


def best_runs(text: str, experiment: str) -> list[list[str]]:
    """The rows (run name, metric, user) under ``experiment``'s heading of a report."""
    block = text.split(f"{experiment}: the best ", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    return [line.split()[:3] for line in block if re.match(r"^\s*\S+\s+[0-9.]+\s", line)]


async def test_examples_needing_the_platform_pass_nbval_in_alices_server(platform_hub, hub_tokens):
    hub, alice = platform_hub, hub_tokens["alice"]
    service = f"{hub.url}/services/mlplat/"
    hub.spawn("alice")
    try:
        nbval = result_of(
            await hub.execute("alice", NBVAL.replace("NAMES", repr(WITH_SERVICE)), token=alice,
                              timeout=600)
        )  # fmt: skip
        report = result_of(await hub.execute("alice", REPORT, token=alice, timeout=300))
    finally:
        hub.stop_server("alice")
        shown = requests.get(
            f"{service}api/deployments/{DEPLOYMENT}",
            headers={"Authorization": f"token {alice}"}, timeout=60,
        )  # fmt: skip
        if shown.status_code == 200 and shown.json()["status"] != "undeployed":
            # 03 failed before its last cell: leave no model server to the session's hub.
            PlatformClient(
                MlplatSettings(client_transport="http", service_url=service), token=alice,
                retry_seconds=10,
            ).undeploy(DEPLOYMENT)  # fmt: skip

    # The spawn copied the shipped notebooks into her home, byte for byte.
    shipped = example_notebooks_dir()
    assert nbval["sha256"] == {n: sha256(shipped / n) for n in WITH_SERVICE}, nbval["sha256"]
    # Every cell of each notebook ran and passed.
    assert nbval["rc"] == 0, nbval["stdout"][-6000:] + nbval["stderr"]
    check_nbval(nbval["stdout"], {n: code_cells(shipped / n) for n in WITH_SERVICE})

    # 03 deployed (its cells assert the prediction) and undeployed: no model server is left.
    assert shown.status_code == 200, shown.text
    assert shown.json()["status"] == "undeployed", shown.json()
    assert model_servers(DEPLOYMENT) == []

    # The documented schedule: weekdays at 07:00 in Paris, with the report's parameters.
    scheduled = report["scheduled"]
    assert scheduled["cron"] == "0 7 * * 1-5" and scheduled["timezone"] == "Europe/Paris"
    assert scheduled["parameters"] == {"experiment": "churn-quickstart", "top": 5}, scheduled
    fires = datetime.fromisoformat(scheduled["next"])
    fires = (fires if fires.tzinfo else fires.replace(tzinfo=UTC)).astimezone(PARIS)
    assert (fires.hour, fires.minute, fires.weekday() < 5) == (7, 0, True), fires

    # 04 on an experiment with runs (03's), in her server and as a job: well under 30 s each.
    here, job = report["here"], report["job"]
    for text in (here["text"], job["text"]):
        assert "churn/churn-deploy: the best " in text, text
        rows = best_runs(text, "churn/churn-deploy")
        assert rows and all(r[0] == "deploy-baseline" and r[2] == "alice" for r in rows), text
    assert here["seconds"] < 30 and job["seconds"] < 30, (here["seconds"], job["seconds"])
    assert "Deployments serving now:" in here["text"], here["text"]
    assert "Approval requests waiting for a reviewer:" in here["text"], here["text"]
    assert job["status"] == "succeeded", job
    assert job["parameters"] == {"experiment": "churn-deploy", "top": 3}, job
    # A job reaches the platform service as its owner too: the same two lists, no fallback.
    assert "Deployments serving now:" in job["text"], job["text"]
    assert "Approval requests waiting for a reviewer:" in job["text"], job["text"]
    assert "not shown" not in job["text"], job["text"]
    # Nothing in her home but what the test put there: no platform store of the report's.
    homes = {Path(nbval["home"]), Path(pwd.getpwnam(f"{TEST_ACCOUNT_PREFIX}alice").pw_dir)}
    assert not [h for h in homes if (h / ".mlplat" / "platform.db").exists()], homes
    # ... and nothing beside the notebooks in their folder but papermill's output.
    made = set(os.listdir(Path(nbval["home"]) / "nbval-examples"))
    assert made == {*WITH_SERVICE, "report-out.ipynb"}, made
