"""Production notebooks through the real hub (issue 10's "done when"): alice schedules a
parameterised notebook from her own server and runs one now with --wait; her server is then
stopped (as the idle culler does), and the schedule's runs still happen, as her OS account,
each with its executed notebook and an MLflow run logged as her through MLflow's
authenticated path (with a token the platform got from the hub for that job). The platform
service is then killed in the middle of a run: the hub starts it again, the run in flight
becomes interrupted, nothing runs twice, the schedules are intact and fire again.

Time passing is stood for by moving a schedule's recorded next firing into the past in the
platform store (the test is root, as the platform is); the scheduler itself is the
service's. Those schedules' own times are once a year, so no real firing falls in the test;
at the end one hourly schedule at the coming minute fires for real.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import requests

from jupyter_mlplat.store.db import Store
from jupyter_mlplat.store.models import JobRun, JobSchedule, utcnow

SCHEDULE = r"""
import json, nbformat
nb = nbformat.v4.new_notebook()
p = nbformat.v4.new_code_cell("n = 1")
p.metadata["tags"] = ["parameters"]
nb.cells = [p, nbformat.v4.new_code_cell(
    "import mlflow, os\nmlflow.start_run()\nmlflow.log_metric('n', n)\n"
    "print('job uid', os.getuid(), 'n =', n, 'cwd', os.getcwd())")]
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nbformat.write(nb, "nightly.ipynb")
s = %mlplat job schedule nightly.ipynb --cron "0 3 1 1 *" -p n=4 --name nightly
print("SCHEDULED=" + json.dumps({"id": s.id, "team": s.team}))
r = %mlplat job run nightly.ipynb -p n=2 --wait
print("RAN=" + json.dumps({"id": r.id, "status": r.status, "mlflow": r.mlflow_run_id}))
"""
FINAL = ("succeeded", "failed", "cancelled", "interrupted", "skipped")


def api(hub, token, method, path, **kwargs):
    return requests.request(
        method, f"{hub.url}/services/mlplat/{path}",
        headers={"Authorization": f"token {token}"}, timeout=60, **kwargs,
    )  # fmt: skip


def store_of(hub) -> Store:
    return Store(f"sqlite:///{Path(hub.env['MLPLAT_HOME']) / 'platform.db'}")


def fire_now(hub, schedule_id: int) -> None:
    """Time passes: the schedule's next firing is now due."""
    store = store_of(hub)
    with store.transaction() as session:
        session.get(JobSchedule, schedule_id).next_fire_at = utcnow() - timedelta(seconds=5)
    store.dispose()


def runs_of(hub, token, schedule_id: int) -> list[dict]:
    answer = api(hub, token, "GET", f"api/jobs?schedule_id={schedule_id}&limit=100")
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def wait_run(hub, token, schedule_id, count: int, status=FINAL, timeout=180) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        runs = runs_of(hub, token, schedule_id)
        if len(runs) >= count and all(r["status"] in status for r in runs[:count]):
            return runs
        assert time.monotonic() < deadline, (runs, hub.log_tail())
        time.sleep(0.5)


def mlflow_run(hub, token, run_id) -> dict:
    answer = requests.get(
        f"{hub.url}/services/mlflow/api/2.0/mlflow/runs/get", params={"run_id": run_id},
        headers={"Authorization": f"Bearer {token}"}, timeout=60,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer.json()["run"]


def service_process(hub) -> int:
    home = f"MLPLAT_HOME={hub.env['MLPLAT_HOME']}".encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
            environ = (cmdline.parent / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"jupyter_mlplat.service" in argv and home in environ:
            return int(cmdline.parent.name)
    raise AssertionError("no platform service process")


async def test_schedules_run_as_their_owner_after_her_server_is_gone_and_survive_a_restart(
    platform_hub, hub_tokens
):
    hub, alice = platform_hub, hub_tokens["alice"]
    hub.spawn("alice")
    try:
        out = await hub.execute("alice", SCHEDULE, token=alice, timeout=240)
    finally:
        hub.stop_server("alice")  # as the idle culler does
    lines = dict(x.split("=", 1) for x in out.splitlines() if x[:1].isupper() and "=" in x)
    scheduled, ran = json.loads(lines["SCHEDULED"]), json.loads(lines["RAN"])
    assert ran["status"] == "succeeded", api(hub, alice, "GET", f"api/jobs/{ran['id']}").text
    assert mlflow_run(hub, alice, ran["mlflow"])["data"]["params"] == [{"key": "n", "value": "2"}]
    assert hub.api("GET", "/users/alice").json()["servers"] == {}  # no server from here on

    schedule_id = scheduled["id"]
    fire_now(hub, schedule_id)
    (run,) = wait_run(hub, alice, schedule_id, 1)
    assert run["status"] == "succeeded", api(hub, alice, "GET", f"api/jobs/{run['id']}/logs").text
    assert run["owner"] == "alice" and run["parameters"] == {"n": 4} and run["fire_time"]
    executed = api(hub, alice, "GET", f"api/jobs/{run['id']}/notebook").json()["notebook"]
    printed = "".join("".join(o.get("text", "")) for c in executed["cells"]
                      for o in c.get("outputs", []))  # fmt: skip
    assert "n = 4" in printed
    uid = int(printed.split("job uid ")[1].split()[0])
    assert uid != 0 and uid == Path(printed.split("cwd ")[1].split()[0]).stat().st_uid
    logged = mlflow_run(hub, alice, run["mlflow_run_id"])
    tags = {t["key"]: t["value"] for t in logged["data"]["tags"]}
    assert tags["mlflow.user"] == "alice" and logged["info"]["user_id"] == "alice"
    assert {"key": "n", "value": 4.0} in [
        {"key": m["key"], "value": m["value"]} for m in logged["data"]["metrics"]
    ]
    assert tags["mlplat.job.snapshot_sha256"] == run["snapshot_digest"]
    bob = api(hub, hub_tokens["bob"], "GET", f"api/jobs/{run['id']}")
    assert bob.status_code == 403  # another team's run
    anonymous = requests.get(f"{hub.url}/services/mlplat/api/jobs/{run['id']}", timeout=30)
    assert anonymous.status_code == 401

    # A slow run is under way when the platform service is killed.
    slow = nbformat.v4.new_notebook()
    slow.cells = [nbformat.v4.new_code_cell("import time\ntime.sleep(300)")]
    created = api(hub, alice, "POST", "api/schedules", json={
        "name": "slow", "notebook_path": "slow.ipynb",
        "notebook": json.loads(nbformat.writes(slow)), "cron": "0 3 * * *",
    })  # fmt: skip
    assert created.status_code == 201, created.text
    slow_id = created.json()["id"]
    fire_now(hub, slow_id)
    (running,) = wait_run(hub, alice, slow_id, 1, status=("running",), timeout=120)
    time.sleep(3)  # the kernel is in its sleep
    service = killed = service_process(hub)
    os.kill(service, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while True:  # the hub notices and starts the service again
        try:
            if service_process(hub) != service and requests.get(
                f"{hub.url}/services/mlplat/api/health", timeout=5
            ).status_code == 200:  # fmt: skip
                break
        except (AssertionError, requests.RequestException):
            pass
        assert time.monotonic() < deadline, hub.log_tail()
        time.sleep(1)
    (after,) = wait_run(hub, alice, slow_id, 1, timeout=60)
    assert after["id"] == running["id"] and after["status"] == "interrupted", after
    marker = f"MLPLAT_JOB_RUN={running['id']}".encode()
    leftovers = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes().split(b"\0"):
                leftovers.append(environ.parent.name)
        except OSError:
            continue
    assert leftovers == []  # the old service's job and kernel were stopped

    # Nothing was lost or run twice: both schedules are there and the first fires again.
    names = {s["name"] for s in api(hub, alice, "GET", "api/schedules").json()["items"]}
    assert {"nightly", "slow"} <= names
    fire_now(hub, schedule_id)
    runs = wait_run(hub, alice, schedule_id, 2)
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"]
    assert len(runs_of(hub, alice, slow_id)) == 1
    store = store_of(hub)
    with store.session() as session:
        firings = [(r.schedule_id, r.fire_time) for r in session.query(JobRun)
                   if r.schedule_id in (schedule_id, slow_id)]  # fmt: skip
    store.dispose()
    assert len(firings) == len(set(firings)) == 3
    # The old service's warm job starter went with it; the ones left are the new service's.
    home = f"MLPLAT_HOME={hub.env['MLPLAT_HOME']}".encode()
    for pid in starters():
        parent = parent_of(pid)
        argv = Path(f"/proc/{parent}/cmdline").read_bytes().split(b"\0")
        environ = Path(f"/proc/{parent}/environ").read_bytes().split(b"\0")
        assert b"jupyter_mlplat.service" in argv and home in environ, (pid, parent)
        assert parent != killed

    # A real firing, with no hand on the store: an hourly schedule at the coming minute.
    now = datetime.now(UTC)
    if now.second >= 50:  # too close to the boundary: the firing could be created after it
        time.sleep(61 - now.second)
        now = datetime.now(UTC)
    due = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
    real = api(hub, alice, "POST", "api/schedules", json={
        "name": "on-the-minute", "notebook_path": "nightly.ipynb", "notebook": json.loads(
            nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]))
        ), "cron": f"{due.minute} * * * *",
    })  # fmt: skip
    assert real.status_code == 201, real.text
    (fired,) = wait_run(hub, alice, real.json()["id"], 1, timeout=180)
    assert fired["status"] == "succeeded", fired
    assert datetime.fromisoformat(fired["fire_time"]).replace(tzinfo=UTC) == due, fired
    for sid in (schedule_id, slow_id, real.json()["id"]):
        assert api(hub, alice, "POST", f"api/schedules/{sid}/delete").status_code == 200


def starters() -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"jupyter_mlplat.jobs.forkserver" in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])
