"""Production notebooks end to end in-process (issue 10): real papermill and kernels, the
real platform store and MLflow server, the real worker pool; as root each job runs as its
owner's OS account (``mlplat-test-<user>``, made here with a home like the spawner's).

Schedules are fired by calling the scheduler's tick after moving a schedule's recorded next
firing into the past in the store: that stands for time passing, not for the scheduler.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import nbformat
import pytest
from mlflow import MlflowClient

from jupyter_mlplat.client import PlatformClient
from jupyter_mlplat.errors import ConflictError, NotFoundError, PermissionDenied, UsageError
from jupyter_mlplat.identity import Identity
from jupyter_mlplat.store.db import get_store
from jupyter_mlplat.store.models import JobRun, JobSchedule, utcnow
from tests.hub_fixtures import TEST_ACCOUNT_PREFIX, isolation_root, user_python

ROOT = os.geteuid() == 0
# Not the hub's test accounts (mlplat-test-<user>, whose homes the spawner makes): these
# are removed at the session's end with them (hub_fixtures.isolation_accounts).
JOB_ACCOUNT_PREFIX = TEST_ACCOUNT_PREFIX + "job-"
ALICE = Identity("alice", ("churn",), "test")
BOB = Identity("bob", ("fraud",), "test")
FINAL = ("succeeded", "failed", "cancelled", "interrupted", "skipped")


def notebook(*cells: str, parameters: str | None = "x = 1\nname = 'world'") -> dict:
    nb = nbformat.v4.new_notebook()
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return json.loads(nbformat.writes(nb))


def account(user: str, homes: Path) -> pwd.struct_passwd | None:
    """The OS account a job of ``user`` runs as (as root), made like the spawner makes it."""
    if not ROOT:
        return None
    name = f"{JOB_ACCOUNT_PREFIX}{user}"
    home = homes / user
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--no-create-home", "--home-dir", str(home), "--shell",
             "/usr/sbin/nologin", "--user-group", name], check=True, capture_output=True,
        )  # fmt: skip
    else:  # made by an earlier module: its home stays (its warm starter may still run there)
        if not Path(entry.pw_dir).is_dir():  # a killed session's: the home moves here
            subprocess.run(["usermod", "--home", str(home), name], check=True, capture_output=True)
        else:
            home = Path(entry.pw_dir)
    entry = pwd.getpwnam(name)
    home.mkdir(mode=0o700, exist_ok=True)
    os.chown(home, entry.pw_uid, entry.pw_gid)
    return entry


@pytest.fixture(scope="module")
def jobs(tmp_path_factory, mlflow_server):
    from jupyter_mlplat import fluent
    from jupyter_mlplat.settings import MlplatSettings, reset_settings

    home = tmp_path_factory.mktemp("jobs-home")
    shared = isolation_root()
    homes = Path(shared) / f"job-homes-{uuid.uuid4().hex[:6]}"
    homes.mkdir(mode=0o711)
    work = Path(shared) / f"job-work-{uuid.uuid4().hex[:6]}"

    def make_settings(home: Path, **overrides) -> MlplatSettings:
        knobs = dict(
            home=str(home), user="alice", teams=["churn"], teams_source="test",
            tracking_uri=mlflow_server.uri, store_url=f"sqlite:///{home / 'platform.db'}",
            jobs_work_dir=str(work), jobs_account_prefix=JOB_ACCOUNT_PREFIX,
            jobs_python=user_python() if ROOT else __import__("sys").executable,
            jobs_workers=2, jobs_tick_seconds=0.5, jobs_heartbeat_seconds=1.0,
            jobs_timeout_seconds=120.0,
        )  # fmt: skip
        return MlplatSettings(**{**knobs, **overrides})

    settings = make_settings(home)
    fluent.reset()
    reset_settings(settings)
    accounts = {user: account(user, homes) for user in ("alice", "bob")}
    clients = {}

    def as_user(identity: Identity) -> PlatformClient:
        if identity.user not in clients:
            clients[identity.user] = PlatformClient(
                settings, transport="inprocess", identity=identity
            )
        return clients[identity.user]

    as_user.settings, as_user.accounts, as_user.mlflow = settings, accounts, mlflow_server
    as_user.make_settings = make_settings
    yield as_user
    for client in clients.values():
        client._transport.platform.resources.close()
    reset_settings(None)
    fluent.reset()


def area(jobs, user=ALICE):
    return jobs(user)._transport.platform.areas["jobs"]


def wait_final(client, run_id, timeout=150):
    deadline = time.monotonic() + timeout
    while True:
        run = client.show_job(run_id)
        if run.status in FINAL:
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.2)


def executed(jobs, run_id) -> dict:
    return jobs(ALICE).job_notebook(run_id).notebook


def outputs_text(nb: dict) -> str:
    return "\n".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))


def test_a_job_runs_as_its_owner_with_its_parameters_and_an_mlflow_run(jobs):
    alice = jobs(ALICE)
    nb = notebook(
        "import os\nprint('uid', os.getuid())\nprint('hello', name, x * 2)",
        "import mlflow\nmlflow.start_run()\nmlflow.log_metric('answer', x * 7)",
    )
    run = alice.run_job("reports/daily.ipynb", nb, {"x": 6, "name": "churn"}, "", None)
    assert run.status == "queued" and run.owner == "alice" and run.team == "churn"
    done = wait_final(alice, run.id)
    assert done.status == "succeeded", (done.reason, alice.job_logs(run.id).text[-2000:])
    assert done.cells_done == done.cells_total == 4  # the parameters, injected, and two cells
    text = outputs_text(executed(jobs, run.id))
    assert "hello churn 12" in text
    if ROOT:
        assert f"uid {jobs.accounts['alice'].pw_uid}" in text  # as alice's account, not root
    mlflow_run = MlflowClient(jobs.mlflow.uri).get_run(done.mlflow_run_id)
    assert mlflow_run.data.params == {"x": "6", "name": "churn"}
    assert mlflow_run.data.metrics["answer"] == 42.0  # the notebook logged to the same run
    tags = mlflow_run.data.tags
    assert (
        tags["mlflow.user"] == "alice" and tags["mlplat.job.snapshot_sha256"] == run.snapshot_digest
    )
    experiment = MlflowClient(jobs.mlflow.uri).get_experiment(mlflow_run.info.experiment_id)
    assert experiment.name == "churn/jobs"
    artifacts = [
        a.path
        for a in MlflowClient(jobs.mlflow.uri).list_artifacts(mlflow_run.info.run_id, "notebook")
    ]
    assert artifacts == ["notebook/output.ipynb"]
    assert mlflow_run.info.status == "FINISHED"


def test_rerun_runs_the_same_snapshot_as_the_caller_with_parameters_changed(jobs):
    alice, bob = jobs(ALICE), jobs(BOB)
    nb = notebook("print('hello', name, x * 2)")
    first = wait_final(alice, alice.run_job("re.ipynb", nb, {"x": 2}, "", None).id)
    assert first.status == "succeeded"
    again = alice.rerun_job(first.id, {"x": 21})
    assert again.id != first.id and again.snapshot_digest == first.snapshot_digest
    assert again.parameters == {"x": 21} and again.notebook_path == "re.ipynb"
    done = wait_final(alice, again.id)
    assert done.status == "succeeded" and "hello world 42" in outputs_text(executed(jobs, again.id))
    same = wait_final(alice, alice.rerun_job(first.id, {}).id)  # the first run's values
    assert same.parameters == {"x": 2} and "hello world 4" in outputs_text(executed(jobs, same.id))
    with pytest.raises(UsageError, match="not declared|parameters cell|declares"):
        alice.rerun_job(first.id, {"undeclared": 1})
    with pytest.raises(UsageError):
        alice.rerun_job(first.id, {"x": "not a number"})
    with pytest.raises(PermissionDenied):
        bob.rerun_job(first.id, {"x": 3})  # another team's run
    with pytest.raises(NotFoundError):
        alice.rerun_job(999999, {})
    # The command's twin (`%mlplat job rerun ID -p x=5`, `mlplat job rerun ID -p x=5`): the
    # values are read as JSON, so x=5 is the int the parameters cell declares.
    from jupyter_mlplat import commands, fluent

    command, rest = commands.find(["job", "rerun", str(first.id), "-p", "x=5"], "cli")
    assert command.words == ("job", "rerun") and rest == [str(first.id), "-p", "x=5"]
    view = fluent.job_rerun(first.id, ["x=5"], wait=True)
    assert repr(view).startswith("Job run ") and "SUCCEEDED" in repr(view)
    assert view.model.parameters == {"x": 5} and view.model.status == "succeeded"
    with pytest.raises(UsageError, match="KEY=VALUE"):
        fluent.job_rerun(first.id, ["x"])


def test_a_cell_that_raises_is_failed_with_the_cell_named(jobs):
    alice = jobs(ALICE)
    nb = notebook(
        "print('before')", "raise ValueError('bad data in column tenure')", "print('never')"
    )
    done = wait_final(alice, alice.run_job("failing.ipynb", nb, {}, "", None).id)
    assert done.status == "failed"
    cell = done.failed_cell  # indexed in the executed notebook (papermill adds a cell)
    assert cell["ename"] == "ValueError" and "raise ValueError" in cell["source"]
    assert "".join(executed(jobs, done.id)["cells"][cell["index"]]["source"]).startswith("raise")
    assert "a cell raised an error" in done.reason
    text = outputs_text(executed(jobs, done.id))
    assert "before" in text and "never" not in text
    assert MlflowClient(jobs.mlflow.uri).get_run(done.mlflow_run_id).info.status == "FAILED"


def test_a_killed_kernel_fails_the_run_keeps_partial_output_and_the_next_job_runs(jobs):
    alice = jobs(ALICE)
    nb = notebook(
        "print('first cell done', flush=True)",
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
        "print('after')",
    )
    started = time.monotonic()
    done = wait_final(alice, alice.run_job("dies.ipynb", nb, {}, "", None).id)
    print(f"killed kernel -> failed in {time.monotonic() - started:.1f} s")
    assert done.status == "failed", done
    assert "kernel died" in done.reason
    assert "first cell done" in outputs_text(executed(jobs, done.id))
    after = wait_final(alice, alice.run_job("fine.ipynb", notebook("print(1)"), {}, "", None).id)
    assert after.status == "succeeded"


def test_cancel_stops_a_running_job(jobs):
    alice = jobs(ALICE)
    run = alice.run_job(
        "slow.ipynb",
        notebook("print('go', flush=True)", "import time\ntime.sleep(120)"),
        {},
        "",
        None,
    )
    deadline = time.monotonic() + 60
    while alice.show_job(run.id).cells_done < 2:  # the parameters cell and print: sleeping
        assert time.monotonic() < deadline
        time.sleep(0.2)
    alice.cancel_job(run.id)
    done = wait_final(alice, run.id, timeout=30)
    assert done.status == "cancelled" and "cancelled" in done.reason
    marker = f"MLPLAT_JOB_RUN={run.id}".encode()
    time.sleep(0.5)
    left = [p for p in Path("/proc").glob("[0-9]*/environ") if _has(p, marker)]
    assert left == []  # job process and kernel gone


def _has(environ: Path, marker: bytes) -> bool:
    try:
        return marker in environ.read_bytes().split(b"\0")
    except OSError:
        return False


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"x=1;import os;os.system('id')#": 1}, "not a Python identifier"),
        ({"__import__('os')": 1}, "not a Python identifier"),
        ({"undeclared": 1}, "undeclared"),
        ({"x": "3"}, "x"),
        ({"x": True}, "x"),
    ],
)
def test_bad_parameters_are_refused_before_anything_runs(jobs, parameters, message):
    alice = jobs(ALICE)
    before = len(alice.list_jobs(limit=1000).items)
    with pytest.raises(UsageError) as caught:
        alice.run_job("p.ipynb", notebook("print(x)"), parameters, "", None)
    assert message in str(caught.value)
    assert len(alice.list_jobs(limit=1000).items) == before  # nothing queued


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("../escape.ipynb", None),
        ("/etc/passwd.ipynb", None),
        ("notes.txt", None),
        ("a\x00b.ipynb", None),
        ("ok.ipynb", {"cells": "not a notebook"}),
    ],
)
def test_bad_notebooks_are_400s(jobs, path, content):
    from pydantic import ValidationError

    alice = jobs(ALICE)
    with pytest.raises((UsageError, ValidationError)):
        alice.run_job(path, content or notebook("1"), {}, "", None)


def test_another_teams_runs_and_schedules_are_403(jobs):
    alice, bob = jobs(ALICE), jobs(BOB)
    run = alice.run_job("mine.ipynb", notebook("1"), {}, "", None)
    for call in (bob.show_job, bob.job_logs, bob.job_notebook, bob.cancel_job):
        with pytest.raises(PermissionDenied):
            call(run.id)
    assert run.id not in [r.id for r in bob.list_jobs(limit=1000).items]
    with pytest.raises(PermissionDenied):
        bob.run_job("x.ipynb", notebook("1"), {}, "", "churn")  # not bob's team
    schedule = alice.create_schedule(f"s-{uuid.uuid4().hex[:6]}", "mine.ipynb", notebook("1"),
                                     "0 6 * * *", "UTC", "run_once", {}, "", None)  # fmt: skip
    for call in (bob.show_schedule, bob.pause_schedule, bob.delete_schedule):
        with pytest.raises(PermissionDenied):
            call(schedule.id)
    assert schedule.id not in [s.id for s in bob.list_schedules().items]
    wait_final(alice, run.id)


@pytest.mark.parametrize(
    ("cron", "timezone", "message"),
    [
        ("*/1 * * * *", "UTC", "at most every 5 min"),
        ("not cron", "UTC", "five fields"),
        ("61 * * * *", "UTC", "not a valid cron"),
        ("0 6 * * *", "Mars/Olympus", "not a known time zone"),
        ("0 6 * * * *", "UTC", "five fields"),
    ],
)
def test_bad_schedules_are_400s(jobs, cron, timezone, message):
    with pytest.raises(UsageError) as caught:
        jobs(ALICE).create_schedule(f"bad-{uuid.uuid4().hex[:6]}", "n.ipynb", notebook("1"), cron,
                                    timezone, "run_once", {}, "", None)  # fmt: skip
    assert message in str(caught.value)


def test_a_schedule_name_is_unique_per_team(jobs):
    alice = jobs(ALICE)
    name = f"dup-{uuid.uuid4().hex[:6]}"
    alice.create_schedule(
        name, "n.ipynb", notebook("1"), "0 6 * * *", "UTC", "run_once", {}, "", None
    )
    with pytest.raises(ConflictError):
        alice.create_schedule(
            name, "n.ipynb", notebook("1"), "0 7 * * *", "UTC", "run_once", {}, "", None
        )


def move_due(jobs, schedule_id: int, minutes_ago: float) -> None:
    """Time passes: the schedule's next firing is ``minutes_ago`` in the past."""
    store = get_store(jobs.settings)
    with store.transaction() as session:
        row = session.get(JobSchedule, schedule_id)
        row.next_fire_at = utcnow() - timedelta(minutes=minutes_ago)


def runs_of(jobs, schedule_id: int) -> list:
    return [r for r in jobs(ALICE).list_jobs(schedule_id=schedule_id, limit=1000).items]


def test_a_due_firing_runs_once_even_when_two_replicas_tick_together(jobs, tmp_path):
    from jupyter_mlplat.application import Platform

    alice = jobs(ALICE)
    schedule = alice.create_schedule(
        f"twice-{uuid.uuid4().hex[:6]}", "sched.ipynb", notebook("print('fired', x)"),
        "0 3 1 1 *", "Europe/Paris", "run_once", {"x": 3}, "", None,
    )  # fmt: skip
    assert schedule.next_fire_at > utcnow()
    move_due(jobs, schedule.id, 0.1)
    replicas = [area(jobs), Platform(jobs.settings).areas["jobs"]]
    barrier = threading.Barrier(2)

    def tick(replica):
        barrier.wait()
        replica.tick()

    threads = [threading.Thread(target=tick, args=(r,)) for r in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    made = runs_of(jobs, schedule.id)
    assert len(made) == 1, made
    done = wait_final(alice, made[0].id)
    assert done.status == "succeeded" and "fired 3" in outputs_text(executed(jobs, done.id))
    after = alice.show_schedule(schedule.id)
    assert after.next_fire_at > utcnow()  # moved on past now
    replicas[1].resources.close()


def test_missed_firings_run_once_or_are_skipped_and_overlaps_are_skipped(jobs):
    alice = jobs(ALICE)
    once = alice.create_schedule(f"once-{uuid.uuid4().hex[:6]}", "m.ipynb", notebook("1"),
                                 "*/5 * * * *", "UTC", "run_once", {}, "", None)  # fmt: skip
    skip = alice.create_schedule(f"skip-{uuid.uuid4().hex[:6]}", "m.ipynb", notebook("1"),
                                 "*/5 * * * *", "UTC", "skip", {}, "", None)  # fmt: skip
    move_due(jobs, once.id, 16)
    move_due(jobs, skip.id, 16)
    area(jobs).tick()
    (ran,) = runs_of(jobs, once.id)
    assert "missed firing(s)" in ran.reason and ran.status in ("queued", "running", "succeeded")
    (skipped,) = runs_of(jobs, skip.id)
    assert skipped.status == "skipped" and "while the platform was down" in skipped.reason
    wait_final(alice, ran.id)

    slow = alice.create_schedule(
        f"slow-{uuid.uuid4().hex[:6]}", "slow.ipynb", notebook("import time\ntime.sleep(30)"),
        "*/5 * * * *", "UTC", "run_once", {}, "", None,
    )  # fmt: skip
    move_due(jobs, slow.id, 0.1)
    area(jobs).tick()
    (first,) = runs_of(jobs, slow.id)
    move_due(jobs, slow.id, 0.05)
    area(jobs).tick()
    second = [r for r in runs_of(jobs, slow.id) if r.id != first.id]
    assert [r.status for r in second] == ["skipped"]
    assert f"run {first.id} of this schedule was still unfinished" in second[0].reason
    alice.cancel_job(first.id)
    wait_final(alice, first.id)


def test_pause_and_resume(jobs):
    alice = jobs(ALICE)
    schedule = alice.create_schedule(f"p-{uuid.uuid4().hex[:6]}", "p.ipynb", notebook("1"),
                                     "0 6 * * *", "UTC", "run_once", {}, "", None)  # fmt: skip
    paused = alice.pause_schedule(schedule.id)
    assert paused.paused and paused.next_fire_at is None
    move_due(jobs, schedule.id, 1)
    area(jobs).tick()
    assert runs_of(jobs, schedule.id) == []  # a paused schedule does not fire
    resumed = alice.resume_schedule(schedule.id)
    assert not resumed.paused and resumed.next_fire_at > utcnow()
    gone = alice.delete_schedule(schedule.id)
    assert gone.id == schedule.id
    assert schedule.id not in [s.id for s in alice.list_schedules().items]


def test_fifty_submissions_honour_the_pool_and_all_end(jobs, tmp_path):
    """(A platform of its own, without MLflow: the pool is under test, not the tracking.)"""
    from jupyter_mlplat.application import Platform

    settings = jobs.make_settings(tmp_path, tracking_uri="")
    platform = Platform(settings)
    alice = PlatformClient(settings, transport="inprocess", identity=ALICE)
    alice._transport.platform = platform
    store = get_store(settings)
    tiny = notebook("x + 1")
    ids = []
    submitters = [
        threading.Thread(target=lambda: ids.append(alice.run_job("t.ipynb", tiny, {}, "", None).id))
        for _ in range(50)
    ]
    for thread in submitters:
        thread.start()
    for thread in submitters:
        thread.join(60)
    assert len(ids) == 50
    most = 0
    deadline = time.monotonic() + 600
    while True:
        with store.session() as session:
            statuses = [s for (s,) in session.query(JobRun.status).filter(JobRun.id.in_(ids))]
        most = max(most, statuses.count("running"))
        if all(s in FINAL for s in statuses):
            break
        assert time.monotonic() < deadline, statuses
        time.sleep(0.05)
    assert 1 <= most <= settings.jobs_workers
    with store.session() as session:
        failed = [(r.id, r.reason) for r in session.query(JobRun).filter(JobRun.id.in_(ids))
                  if r.status != "succeeded"]  # fmt: skip
    # Every job ends in a final state; one whose kernel could not start on a loaded machine
    # (jupyter_client's ports) ends failed saying so, never stuck and never "succeeded".
    assert all("kernel died or could not start" in reason for _, reason in failed), failed
    assert len(failed) <= 2, failed
    platform.resources.close()


def test_a_stopped_service_interrupts_its_running_job_and_keeps_the_queue(jobs, tmp_path):
    """A clean stop marks the run under way interrupted; the next service runs the queued
    ones, and nothing twice. (A platform of its own: no other pool takes its runs.)"""
    from jupyter_mlplat.application import Platform

    settings = jobs.make_settings(tmp_path, jobs_workers=1)
    first = Platform(settings)
    client = PlatformClient(settings, transport="inprocess", identity=ALICE)
    client._transport.platform = first
    slow = client.run_job("s.ipynb", notebook("import time\ntime.sleep(60)"), {}, "", None)
    deadline = time.monotonic() + 60
    while client.show_job(slow.id).status != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    queued = [client.run_job("q.ipynb", notebook("1"), {}, "", None).id for _ in range(2)]
    assert [client.show_job(i).status for i in queued] == ["queued", "queued"]  # one worker
    first.resources.close()  # the service stops
    assert client.show_job(slow.id).status == "interrupted"
    assert "stopped while it ran" in client.show_job(slow.id).reason
    second = Platform(settings)
    client._transport.platform = second
    second.areas["jobs"].workers.start()
    for run_id in queued:
        assert wait_final(client, run_id).status == "succeeded"
    assert client.show_job(slow.id).status == "interrupted"  # not run again
    with get_store(settings).session() as session:
        assert session.query(JobRun).count() == 3
    second.resources.close()


def test_mlplat_run_runs_a_notebook_here_and_says_where_things_are(
    jobs, tmp_path, monkeypatch, capsys
):
    from jupyter_mlplat.cli import main

    folder = tmp_path / "cli"
    folder.mkdir()
    (folder / "report.ipynb").write_text(json.dumps(notebook("print('cli says', x + 1)")))
    (folder / "broken.ipynb").write_text(json.dumps(notebook("1/0")))
    monkeypatch.chdir(folder)
    assert main(["run", "report.ipynb", "-p", "x=41"]) == 0
    out = capsys.readouterr().out
    assert "report.ipynb: succeeded" in out
    assert f"executed notebook: {folder / 'report.executed.ipynb'}" in out
    assert "MLflow run: " in out and "churn/jobs" in out
    assert "cli says 42" in outputs_text(json.loads((folder / "report.executed.ipynb").read_text()))
    assert main(["run", "broken.ipynb"]) == 1
    out = capsys.readouterr().out
    assert "broken.ipynb: FAILED" in out and "ZeroDivisionError" in out
    assert main(["run", "report.ipynb", "-p", "x=forty"]) == 2  # a usage error
    assert "x" in capsys.readouterr().err
    assert main(["run", "../outside.ipynb"]) == 2
    assert "outside your root folder" in capsys.readouterr().err


def test_traversable_dirs_are_0711_under_a_private_umask(tmp_path):
    from jupyter_mlplat.oslayer import traversable_dirs

    old = os.umask(0o077)
    try:
        target = traversable_dirs(tmp_path / "a" / "b" / "c")
    finally:
        os.umask(old)
    for part in (tmp_path / "a", tmp_path / "a" / "b", target):
        assert part.is_dir() and (part.stat().st_mode & 0o777) == 0o711
