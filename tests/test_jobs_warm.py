"""Warm job starters (jobs/forkserver.py, jobs/warm.py) with real papermill and kernels: as
root each starter runs as the job's OS account and forks that account's job processes.

The runner is driven directly (no platform, no MLflow: the starter still imports mlflow
and papermill), so each test sees the starter do its job: fork, report, die, be stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from jupyter_mlplat.jobs.runner import JobRunner, RunSpec, kill_leftovers
from jupyter_mlplat.jobs.warm import ForkedJob
from tests.hub_fixtures import isolation_root, user_python
from tests.test_jobs_flow import JOB_ACCOUNT_PREFIX, ROOT, account, notebook

LINEAGE = (
    "import os\n"
    "def facts(pid):\n"
    "    stat = open(f'/proc/{pid}/stat').read()\n"
    "    return int(stat[stat.rindex(')') + 2:].split()[1])\n"
    "job = os.getppid()\n"
    "print('LINEAGE', job, facts(job), os.getuid())"
)


@pytest.fixture(scope="module")
def homes():
    folder = Path(isolation_root()) / f"warm-homes-{uuid.uuid4().hex[:6]}"
    folder.mkdir(mode=0o711)
    return folder


@pytest.fixture
def make_runner(tmp_path, homes):
    made = []

    def make(**knobs) -> JobRunner:
        work = Path(isolation_root()) / f"warm-work-{uuid.uuid4().hex[:6]}"
        runner = JobRunner(
            store_root=tmp_path / f"store-{len(made)}", work_root=work,
            python=user_python() if ROOT else sys.executable,
            account_prefix=JOB_ACCOUNT_PREFIX if ROOT else None, timeout=120.0,
            stop_grace=2.0, **knobs,
        )  # fmt: skip
        made.append(runner)
        return runner

    yield make
    for runner in made:
        runner.close()


_ids = iter(range(900_000, 1_000_000))


def spec(owner: str, *cells: str) -> RunSpec:
    nb = notebook(*cells)
    return RunSpec(
        run_id=next(_ids), owner=owner, team="churn", snapshot=json.dumps(nb).encode(),
        parameters={"x": 3}, notebook_path="warm.ipynb",
    )  # fmt: skip


def lineage(outcome) -> tuple[int, int, int]:
    text = outcome.output.read_text()
    found = re.search(r"LINEAGE (\d+) (\d+) (\d+)", text)
    assert found, text[-2000:]
    return tuple(int(g) for g in found.groups())


def uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def test_one_starter_per_account_forks_each_job_as_that_account(make_runner, homes):
    runner = make_runner()
    alice = account("alice", homes)
    first = runner.execute(spec("alice", LINEAGE, "print('x is', x)"))
    second = runner.execute(spec("alice", LINEAGE))
    assert (first.status, second.status) == ("succeeded", "succeeded"), (first, second)
    job1, starter1, kernel_uid = lineage(first)
    job2, starter2, _ = lineage(second)
    assert "x is 3" in first.output.read_text()
    (starter,) = runner.warm.pids()
    # Both job processes were forked by the one starter, each a process of its own.
    assert starter1 == starter2 == starter and job1 != job2
    assert b"jupyter_mlplat.jobs.forkserver" in Path(f"/proc/{starter}/cmdline").read_bytes()
    if ROOT:
        assert kernel_uid == alice.pw_uid and uid_of(starter) == alice.pw_uid
        bob = account("bob", homes)
        third = runner.execute(spec("bob", LINEAGE))
        assert third.status == "succeeded", third
        _, bob_starter, bob_uid = lineage(third)
        assert bob_starter != starter and bob_uid == bob.pw_uid
        assert uid_of(bob_starter) == bob.pw_uid
        assert sorted(runner.warm.pids()) == sorted([starter, bob_starter])


def _run_in_thread(runner, run_spec):
    result = {}
    thread = threading.Thread(target=lambda: result.update(outcome=runner.execute(run_spec)))
    thread.start()
    return thread, result


def _wait_for(condition, timeout=60.0, what="it"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen in {timeout} s"
        time.sleep(0.1)


def _marked(run_id: int) -> list[int]:
    marker = f"MLPLAT_JOB_RUN={run_id}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


def test_a_starter_killed_under_a_running_job_fails_it_and_the_next_job_gets_a_new_one(
    make_runner, homes
):
    runner = make_runner()
    account("alice", homes)
    assert runner.execute(spec("alice", "print('warm')")).status == "succeeded"
    (starter,) = runner.warm.pids()
    slow = spec("alice", "print('sleeping', flush=True)", "import time; time.sleep(120)")
    thread, result = _run_in_thread(runner, slow)
    _wait_for(lambda: _marked(slow.run_id), what="the job's kernel starting")
    os.kill(starter, signal.SIGKILL)
    thread.join(60)
    assert not thread.is_alive(), "the run did not end when its starter died"
    outcome = result["outcome"]
    assert outcome.status == "failed" and "exit code 3" in outcome.reason, outcome
    _wait_for(lambda: not _marked(slow.run_id), 10, "the job's kernel being killed")
    assert kill_leftovers(slow.run_id, runner.platform_key) == 0
    after = runner.execute(spec("alice", LINEAGE))
    assert after.status == "succeeded", after
    assert lineage(after)[1] != starter and runner.warm.pids() != [starter]


def test_cancelling_a_forked_job_stops_it_and_its_kernel(make_runner, homes):
    runner = make_runner()
    account("alice", homes)
    slow = spec("alice", "import time; time.sleep(120)")
    asked = threading.Event()
    result = {}
    thread = threading.Thread(
        target=lambda: result.update(outcome=runner.execute(slow, cancelled=asked.is_set))
    )
    thread.start()
    _wait_for(lambda: _marked(slow.run_id), what="the job's kernel starting")
    asked.set()
    thread.join(30)
    assert result["outcome"].status == "cancelled", result
    assert not _marked(slow.run_id)
    assert runner.warm.pids(), "the starter outlives a cancelled job"


def test_a_pid_the_starter_did_not_fork_is_never_signalled(make_runner, homes):
    runner = make_runner()
    owner = account("alice", homes)
    assert runner.execute(spec("alice", "1")).status == "succeeded"
    starter = runner.warm.for_account(owner, {})
    ids = {} if owner is None else {"user": owner.pw_uid, "group": owner.pw_gid}
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True, **ids)
    try:
        for claimed in (1, os.getpid(), bystander.pid):  # not the starter's children
            job = ForkedJob(starter, 1)
            job._set_pid(claimed)
            assert job.pid == -1, claimed
            job.signal(signal.SIGKILL)
        # A pid taken at fork time whose process has since been replaced (a different start
        # time) is not signalled either.
        job = ForkedJob(starter, 2)
        job.pid, job._started_ticks = bystander.pid, 1
        job.signal(signal.SIGKILL)
        time.sleep(0.2)
        assert bystander.poll() is None, "a process the starter did not fork was killed"
    finally:
        bystander.kill()
        bystander.wait()


def test_idle_starters_are_stopped_and_a_stopped_platform_takes_its_jobs_down(make_runner, homes):
    runner = make_runner(warm_idle_seconds=0.0)
    account("alice", homes)
    assert runner.execute(spec("alice", "1")).status == "succeeded"
    (starter,) = runner.warm.pids()
    assert runner.prune_idle() == 1 and runner.warm.pids() == []
    _wait_for(lambda: not Path(f"/proc/{starter}").exists(), 10, "the idle starter exiting")

    # The platform closing (its end of the socket) makes the starter kill its jobs and exit.
    runner = make_runner()
    slow = spec("alice", "import time; time.sleep(120)")
    thread, result = _run_in_thread(runner, slow)
    _wait_for(lambda: _marked(slow.run_id), what="the job's kernel starting")
    (starter,) = runner.warm.pids()
    runner.warm.close()
    thread.join(30)
    assert result["outcome"].status == "failed", result
    _wait_for(lambda: not _marked(slow.run_id), 10, "the job's kernel being killed")
    assert not Path(f"/proc/{starter}").exists()


def test_without_warm_starters_each_job_is_a_fresh_process(make_runner, homes):
    runner = make_runner(warm=False)
    account("alice", homes)
    ok = runner.execute(spec("alice", LINEAGE))
    bad = runner.execute(spec("alice", "raise ValueError('no')"))
    assert ok.status == "succeeded" and runner.warm is None
    _, parent, _ = lineage(ok)
    assert parent == os.getpid()  # the job process was started by the platform itself
    assert bad.status == "failed" and "ValueError" in bad.reason, bad


def _kernel_of(run_id: int):
    import psutil

    for pid in _marked(run_id):
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            if any("ipykernel" in part for part in process.cmdline()):
                return process
    return None


def test_a_job_kernel_listens_on_no_port_and_other_accounts_cannot_reach_its_sockets(
    make_runner, homes
):
    """On TCP loopback ports any account could subscribe to a job kernel's outputs (its
    messages are signed, not encrypted): its channels are socket files in the run's 0700
    folder."""
    runner = make_runner()
    owner = account("alice", homes)
    intruder = account("bob", homes)
    slow = spec("alice", "import time; time.sleep(120)")
    asked = threading.Event()
    thread = threading.Thread(target=lambda: runner.execute(slow, cancelled=asked.is_set))
    thread.start()
    try:
        _wait_for(lambda: _kernel_of(slow.run_id) is not None, what="the job's kernel starting")
        kernel = _kernel_of(slow.run_id)
        _wait_for(lambda: kernel.connections(kind="unix"), 30, "the kernel's sockets")
        # On TCP the kernel listens on 6 ports. What stays is ipykernel's IOPub pipe for
        # forked subprocesses: a PULL socket (nothing can be read from it) that drops
        # messages without its 16-byte random prefix.
        listening = [c for c in kernel.connections(kind="inet") if c.status == "LISTEN"]
        assert len(listening) <= 1, listening
        paths = sorted({c.laddr for c in kernel.connections(kind="unix") if c.laddr})
        workdir = runner.work_root / str(slow.run_id)
        assert paths and all(Path(p).parent == workdir for p in paths), paths
        assert (workdir.stat().st_mode & 0o777) == 0o700
        if ROOT:
            assert workdir.stat().st_uid == owner.pw_uid
            probe = (
                "import socket, sys\nrefused = 0\nfor path in sys.argv[1:]:\n"
                "    s = socket.socket(socket.AF_UNIX)\n    try:\n        s.connect(path)\n"
                "    except PermissionError:\n        refused += 1\nprint(refused)"
            )
            result = subprocess.run(
                [user_python(), "-c", probe, *paths], capture_output=True, text=True,
                user=intruder.pw_uid, group=intruder.pw_gid, extra_groups=[], timeout=30,
            )  # fmt: skip
            assert result.stdout.strip() == str(len(paths)), result
            own = subprocess.run(
                [user_python(), "-c", probe, *paths], capture_output=True, text=True,
                user=owner.pw_uid, group=owner.pw_gid, extra_groups=[], timeout=30,
            )  # fmt: skip
            assert own.stdout.strip() == "0", own  # the owner's own connections go through
    finally:
        asked.set()
        thread.join(30)


def test_leftovers_of_another_platforms_run_with_the_same_id_are_not_killed(tmp_path):
    """Run ids restart at 1 on each platform: a second platform on the machine (a demo, a
    test hub) ending its run 1 must not kill this one's run-1 kernel."""
    from jupyter_mlplat.jobs.runner import PLATFORM_MARKER, RUN_MARKER

    ours = JobRunner(store_root=tmp_path / "a", work_root=tmp_path / "wa", account_prefix="x-")
    theirs = JobRunner(store_root=tmp_path / "b", work_root=tmp_path / "wb", account_prefix="x-")
    assert ours.platform_key != theirs.platform_key
    env = dict(os.environ, **{RUN_MARKER: "1", PLATFORM_MARKER: ours.platform_key})
    kernel = subprocess.Popen(["sleep", "60"], env=env)
    try:
        _wait_for(lambda: kernel.pid in _marked(1), what="the marked process starting")
        assert kill_leftovers(1, theirs.platform_key) == 0
        assert kernel.poll() is None  # still running
        assert kill_leftovers(1, ours.platform_key) == 1
        assert kernel.wait(10) == -signal.SIGKILL
    finally:
        kernel.kill()
        kernel.wait()
