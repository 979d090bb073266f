"""Jobs benchmark: per-job time, throughput, cron firing latency and the scheduler at 1,000.

Run with ``.venv/bin/python benchmarks/bench_jobs.py`` (about 4-6 minutes on 2 cores; as
root, so that jobs run as their owner's account as in production). One run starts an
``mlflow server`` (as tests/servers.py's ``MlflowServer``), a platform in-process
(``PlatformClient(transport="inprocess")``, SQLite store, a fresh temporary MLPLAT home,
``jobs_workers=2``, the default tick and heartbeat) and, as root, the owner's OS account
``mlplat-test-benchjobs`` (home in a 0711 folder, a Python it can run from
``tests.hub_fixtures.user_python()``), and measures, for one notebook of a parameters cell
and two tiny cells (the first prints ``time.time()`` in the kernel):

1. **Per job**: submit (``run_job``) → final status seen in the store (``show_job`` polled
   every 50 ms), through the worker pool, the runner and ``python -m
   jupyter_mlplat.jobs.execute`` as the owner's account (papermill in a fresh kernel, inside
   an MLflow run with the executed notebook as its artifact); against, in the same run and
   interleaved with it, bare ``papermill.execute_notebook`` in this (warm) process with the
   arguments our job process passes, and the ``papermill`` CLI as a new process per job.
   Median and p90 of ``REPEATS`` after one warm-up each; the target is ours ≤ 1.2x bare
   ``execute_notebook``. Where our time goes comes from timestamps the run leaves: the
   store's ``started_at``/``finished_at``, the MLflow run's start and end times and
   papermill's notebook and cell start/end times in the executed notebook. The job process's
   start-up pieces are also measured alone, as the account: ``python -c pass``, ``import
   mlflow``, ``import papermill``, MLflow's first request (which loads every
   ``mlflow.request_header_provider`` plugin, Feast's among them) as is and after
   ``jupyter_mlplat.tracking.plugins.defer_feast_header_provider()``, and ``python -m
   jupyter_mlplat.jobs.execute`` on a spec whose notebook does not exist (interpreter,
   imports, no kernel; it exits 3), without and with an MLflow run, the latter also ended
   by ``os._exit`` (without the interpreter's teardown).
2. **Throughput**: ``THROUGHPUT_JOBS`` jobs submitted at once to 2 workers, first submit →
   all final, in jobs/min; against ``ProcessPoolExecutor(2)`` (spawned, warmed up first)
   running ``papermill.execute_notebook`` on as many copies. Target ours ≥ 0.8x the pool.
3. **Cron firing → kernel**: a ``*/5 * * * *`` schedule's next firing is set to now in the
   store (time passing, as tests/test_jobs_flow.py does), the scheduler's tick
   (``JobsArea.tick()``) is called at a measured ``time.time()``, and the latency is the
   first own cell's printed ``time.time()`` minus that (also: to the claim, and to the
   kernel's first cell, the parameters cell, from papermill's metadata).
4. **1,000 schedules** on a second platform whose workers are never started (only ``tick``
   is called; the runs it queues are counted, never executed): ``*/5 * * * *`` in a mix of
   time zones; the first ``API_SCHEDULES`` through ``create_schedule`` (timed), the rest
   inserted as the same rows in the store (the API's ~70 ms each would take the run past
   its budget). CPU time (``time.process_time``) of one tick when none is due (the steady
   state; x12 for a minute at the default 5 s tick), and of the tick when all 1,000 are
   due at once (their ``next_fire_at`` moved 10 s into the past), with the firing delay:
   tick start → the last run row's ``created_at``. Before the steady ticks the schedules'
   next firing is moved to a firing >= 10 min ahead, so that a 5-minute boundary passing
   during the run cannot make them due.

The machine may be shared with other test runs: figures are noisy; the ratios are what
matter, and each side is measured in the same run. The ``mlplat-test-*`` accounts made are
removed at the end with the temp dirs, and the ones left are printed.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

REPEATS = 8
THROUGHPUT_JOBS = 16
CRON_REPEATS = 3
STARTUP_REPEATS = 2
SCHEDULES = 1000
API_SCHEDULES = 100  # made through the API (timed); the rest as the same rows in the store
STEADY_TICKS = 24
ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Adelaide")
OWNER = "benchjobs"
FINAL = ("succeeded", "failed", "cancelled", "interrupted", "skipped")
POLL = 0.05
PARAMETERS = {"x": 2, "name": "bench"}
FIRST_CELL = "import time\nprint('t_first_cell', repr(time.time()))"
SECOND_CELL = "print('hello', name, x * 2)"


def notebook() -> dict:
    """The parameters cell and two tiny cells (the first prints the kernel's time.time())."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x = 1\nname = 'world'")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell(FIRST_CELL), nbformat.v4.new_code_cell(SECOND_CELL)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return json.loads(nbformat.writes(nb))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def med(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def epoch(value) -> float:
    """Seconds since the epoch of a datetime (naive = UTC), an ISO string or None (nan)."""
    if value is None:
        return float("nan")
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def papermill_times(nb: dict) -> dict[str, float]:
    """Papermill's timestamps: notebook start (before the kernel), first cell start (the
    kernel is up), last cell end, notebook end; and the first own cell's printed time."""
    meta = nb.get("metadata", {}).get("papermill", {})
    cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    printed = float("nan")
    for cell in cells:
        for output in cell.get("outputs", []):
            for line in "".join(output.get("text", "")).splitlines():
                if line.startswith("t_first_cell "):
                    printed = float(line.split()[1])
    return {
        "pm_start": epoch(meta.get("start_time")),
        "first_cell": epoch(cells[0]["metadata"]["papermill"].get("start_time")),
        "last_cell_end": epoch(cells[-1]["metadata"]["papermill"].get("end_time")),
        "pm_end": epoch(meta.get("end_time")),
        "printed": printed,
    }


# --- the peers ------------------------------------------------------------------------------


def bare_execute(source: Path, output: Path, cwd: Path) -> float:
    """``papermill.execute_notebook`` as our job process calls it; its wall time."""
    import papermill

    started = time.perf_counter()
    papermill.execute_notebook(
        str(source), str(output), parameters=PARAMETERS, kernel_name="python3", cwd=str(cwd),
        progress_bar=False, log_output=True, request_save_on_cell_execute=True,
    )  # fmt: skip
    return time.perf_counter() - started


def _pool_warm(_: int) -> int:
    import papermill  # noqa: F401

    time.sleep(1.0)  # both workers take one each
    return os.getpid()


def _pool_job(args: tuple[str, str, str]) -> float:
    return bare_execute(Path(args[0]), Path(args[1]), Path(args[2]))


def bare_cli(source: Path, output: Path, cwd: Path) -> float:
    papermill = str(Path(sys.executable).parent / "papermill")
    command = [papermill, str(source), str(output), "-k", "python3", "--cwd", str(cwd),
               "--no-progress-bar", "--log-output"]  # fmt: skip
    for key, value in PARAMETERS.items():
        command += ["-p", key, str(value)]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has been busy (all processes, /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def bare_pool(source: Path, out: Path, cwd: Path) -> dict:
    import multiprocessing

    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        pids = set(pool.map(_pool_warm, range(2)))
        jobs = [
            (str(source), str(out / f"pool-{i}.ipynb"), str(cwd)) for i in range(THROUGHPUT_JOBS)
        ]
        started, cpu = time.perf_counter(), busy_cpu_seconds()
        durations = list(pool.map(_pool_job, jobs))
        wall = time.perf_counter() - started
        cpu = busy_cpu_seconds() - cpu
    return {"wall": wall, "durations": durations, "workers": len(pids), "cpu": cpu}


# --- the job process's start-up, alone ---------------------------------------------------


FIRST_REQUEST = (
    "import mlflow, sys; mlflow.set_tracking_uri(sys.argv[1]); "
    "mlflow.get_experiment_by_name('churn/jobs')"
)
DEFER_FEAST = (
    "from jupyter_mlplat.tracking.plugins import defer_feast_header_provider; "
    "defer_feast_header_provider(); "
)
FAST_EXIT = (
    "import os, runpy, sys\nsys.argv = ['execute', sys.argv[1]]\ntry:\n"
    "    runpy.run_module('jupyter_mlplat.jobs.execute', run_name='__main__')\n"
    "except SystemExit as stop:\n"
    "    sys.stdout.flush(); sys.stderr.flush(); os._exit(stop.code)\n"
)


def startup_as(account, python: str, home: Path, tracking_uri: str) -> dict[str, list[float]]:
    """Wall times of the job process's start-up pieces, as ``account`` (None: as us)."""
    bare_spec = {
        "input": str(home / "absent.ipynb"), "output": str(home / "absent-out.ipynb"),
        "parameters": {}, "kernel": "python3", "cwd": str(home), "tracking_uri": "",
    }  # fmt: skip
    tracked_spec = {
        **bare_spec, "tracking_uri": tracking_uri, "experiment": "churn/jobs-noop",
        "run_name": "noop", "tags": {},
    }  # fmt: skip
    ids = {}
    if account is not None:
        ids = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    specs = []
    for name, content in (("noop-spec.json", bare_spec), ("noop-mlflow-spec.json", tracked_spec)):
        specs.append(home / name)
        specs[-1].write_text(json.dumps(content))
        if account is not None:
            os.chown(specs[-1], account.pw_uid, account.pw_gid)
    env = {k: os.environ[k] for k in ("PATH", "LANG") if k in os.environ}
    env.update(HOME=str(home), TMPDIR=str(home), PYTHONUNBUFFERED="1")
    execute = [python, "-m", "jupyter_mlplat.jobs.execute"]
    pieces = {
        "python -c pass": ([python, "-c", "pass"], 0),
        "import mlflow": ([python, "-c", "import mlflow"], 0),
        "import mlflow + first request (loads Feast's plugin)": (
            [python, "-c", FIRST_REQUEST, tracking_uri], 0,
        ),
        "the same, defer_feast_header_provider() first": (
            [python, "-c", DEFER_FEAST + FIRST_REQUEST, tracking_uri], 0,
        ),
        "jobs.execute, no notebook, no MLflow (exit 3)": ([*execute, str(specs[0])], 3),
        "jobs.execute, no notebook, MLflow run (exit 3)": ([*execute, str(specs[1])], 3),
        "the same, ended by os._exit (no teardown)": (
            [python, "-c", FAST_EXIT, str(specs[1])], 3,
        ),
    }  # fmt: skip
    out = {}
    for label, (command, expected) in pieces.items():
        times = []
        for _ in range(STARTUP_REPEATS):
            started = time.perf_counter()
            done = subprocess.run(command, cwd=home, env=env, capture_output=True, **ids)
            times.append(time.perf_counter() - started)
            if done.returncode != expected:
                raise RuntimeError(f"{command} exited {done.returncode}: {done.stderr[-800:]!r}")
        out[label] = times
    return out


# --- the platform ---------------------------------------------------------------------------


def make_account(homes: Path):
    """The owner's OS account (as root), made like tests/test_jobs_flow.py's account()."""
    from tests.hub_fixtures import TEST_ACCOUNT_PREFIX

    if os.geteuid() != 0:
        return None
    name = f"{TEST_ACCOUNT_PREFIX}{OWNER}"
    home = homes / OWNER
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--no-create-home", "--home-dir", str(home), "--shell",
             "/usr/sbin/nologin", "--user-group", name], check=True, capture_output=True,
        )  # fmt: skip
    entry = pwd.getpwnam(name)
    home.mkdir(mode=0o700, exist_ok=True)
    os.chown(home, entry.pw_uid, entry.pw_gid)
    return entry


def wait_final(client, run_id: int, timeout: float = 300) -> tuple[object, float]:
    """The run once final, and the time.time() it was first seen final."""
    deadline = time.monotonic() + timeout
    while True:
        run = client.show_job(run_id)
        if run.status in FINAL:
            return run, time.time()
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} not final after {timeout} s: {run}")
        time.sleep(POLL)


SEGMENTS = (
    ("submit call (snapshot, insert)", "submit", "returned"),
    ("wake + claim by a worker", "returned", "claimed"),
    ("fork by the warm starter, the MLflow run", "claimed", "mlflow_start"),
    ("log params, parametrize", "mlflow_start", "pm_start"),
    ("kernel start (to the first cell)", "pm_start", "first_cell"),
    ("the three cells", "first_cell", "last_cell_end"),
    ("kernel stop, save, log artifact, end MLflow run", "last_cell_end", "mlflow_end"),
    ("process exit, runner poll, cleanup, finish row", "mlflow_end", "finished"),
    ("final status seen (50 ms poll)", "finished", "seen"),
)


def run_ours(client, mlflow_client, nb: dict) -> dict[str, float]:
    """One job through the platform; its timestamps (time.time() seconds)."""
    t = {"submit": time.time()}
    run = client.run_job("bench/two-cells.ipynb", nb, PARAMETERS, "", None)
    t["returned"] = time.time()
    done, t["seen"] = wait_final(client, run.id)
    if done.status != "succeeded":
        raise RuntimeError(
            f"run {run.id} {done.status}: {done.reason}\n{client.job_logs(run.id).text[-2000:]}"
        )
    t["claimed"], t["finished"] = epoch(done.started_at), epoch(done.finished_at)
    t["mlflow_start"] = t["mlflow_end"] = float("nan")
    if done.mlflow_run_id:
        info = mlflow_client.get_run(done.mlflow_run_id).info
        t["mlflow_start"], t["mlflow_end"] = info.start_time / 1000, (info.end_time or 0) / 1000
    t.update(papermill_times(client.job_notebook(run.id).notebook))
    t["total"] = t["seen"] - t["submit"]
    return t


def bench_per_job(client, mlflow_client, nb: dict, tmp: Path) -> dict:
    source = tmp / "bare" / "two-cells.ipynb"
    source.parent.mkdir()
    source.write_text(json.dumps(nb))
    ours, bare, cli, bare_kernel = [], [], [], []
    for index in range(REPEATS + 1):  # the first of each is the warm-up
        print(f"  per-job round {index}/{REPEATS} ...", flush=True)
        t = run_ours(client, mlflow_client, nb)
        output = source.parent / f"out-{index}.ipynb"
        b = bare_execute(source, output, source.parent)
        c = bare_cli(source, source.parent / f"cli-{index}.ipynb", source.parent)
        if index:
            ours.append(t)
            bare.append(b)
            cli.append(c)
            pm = papermill_times(json.loads(output.read_text()))
            bare_kernel.append(pm["first_cell"] - pm["pm_start"])
    return {"ours": ours, "bare": bare, "cli": cli, "bare_kernel": bare_kernel}


def bench_throughput(client, store, nb: dict) -> dict:
    from jupyter_mlplat.store.models import JobRun

    started, cpu = time.time(), busy_cpu_seconds()
    ids = [
        client.run_job(f"bench/t{i}.ipynb", nb, PARAMETERS, "", None).id
        for i in range(THROUGHPUT_JOBS)
    ]
    submitted = time.time() - started
    most = 0
    deadline = time.monotonic() + 600
    while True:
        with store.session() as session:
            rows = list(session.query(JobRun.status).filter(JobRun.id.in_(ids)))
        statuses = [s for (s,) in rows]
        most = max(most, statuses.count("running"))
        if all(s in FINAL for s in statuses):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"throughput jobs not final: {statuses}")
        time.sleep(POLL)
    wall, cpu = time.time() - started, busy_cpu_seconds() - cpu
    with store.session() as session:
        rows = list(session.query(JobRun).filter(JobRun.id.in_(ids)))
        waits = [epoch(r.started_at) - epoch(r.created_at) for r in rows]
        spans = [epoch(r.finished_at) - epoch(r.started_at) for r in rows]
    return {
        "wall": wall, "submitted": submitted, "most_running": most,
        "succeeded": statuses.count("succeeded"), "waits": waits, "spans": spans, "cpu": cpu,
    }  # fmt: skip


def bench_cron(client, area, store, nb: dict) -> dict:
    from jupyter_mlplat.store.models import JobSchedule, utcnow

    schedule = client.create_schedule(
        f"bench-cron-{uuid.uuid4().hex[:6]}", "bench/cron.ipynb", nb, "*/5 * * * *", "UTC",
        "run_once", PARAMETERS, "", None,
    )  # fmt: skip
    out = {"kernel_cell": [], "claimed": [], "first_cell": [], "tick": []}
    for _ in range(CRON_REPEATS):
        with store.transaction() as session:
            session.get(JobSchedule, schedule.id).next_fire_at = utcnow()  # due now
        fired = time.time()
        made = area.tick()
        out["tick"].append(time.time() - fired)
        (run,) = [r for r in made if r.schedule_id == schedule.id]
        if run.status != "queued":
            raise RuntimeError(f"the firing was {run.status}: {run.reason}")
        done, _ = wait_final(client, run.id)
        if done.status != "succeeded":
            raise RuntimeError(f"cron run {run.id} {done.status}: {done.reason}")
        pm = papermill_times(client.job_notebook(run.id).notebook)
        out["kernel_cell"].append(pm["printed"] - fired)
        out["first_cell"].append(pm["first_cell"] - fired)
        out["claimed"].append(epoch(done.started_at) - fired)
    client.delete_schedule(schedule.id)
    return out


def bench_schedules(client, area, store, nb: dict) -> dict:
    from sqlalchemy import func, select, update

    from jupyter_mlplat.jobs import cron
    from jupyter_mlplat.store.models import JobRun, JobSchedule, utcnow

    started = time.perf_counter()
    for i in range(API_SCHEDULES):
        made = client.create_schedule(
            f"bench-{i:04d}", f"bench/s{i % 10}.ipynb", nb, "*/5 * * * *", ZONES[i % len(ZONES)],
            "run_once", {}, "", None,
        )  # fmt: skip
    created = (time.perf_counter() - started) / API_SCHEDULES
    now = utcnow()
    with store.transaction() as session:  # the rest: the rows schedules.create would insert
        for i in range(API_SCHEDULES, SCHEDULES):
            zone = ZONES[i % len(ZONES)]
            session.add(JobSchedule(
                name=f"bench-{i:04d}", owner=made.owner, team=made.team,
                notebook_path=f"bench/s{i % 10}.ipynb", snapshot_digest=made.snapshot_digest,
                parameters={}, profile=made.profile, cron="*/5 * * * *", timezone=zone,
                missed="run_once", paused=False, created_at=now, updated_at=now,
                next_fire_at=cron.next_after("*/5 * * * *", zone, now),
            ))  # fmt: skip
    with store.session() as session:
        count = session.scalar(select(func.count()).select_from(JobSchedule))
    if count != SCHEDULES:
        raise RuntimeError(f"{count} schedules, not {SCHEDULES}")
    ahead = cron.next_after("*/5 * * * *", "UTC", utcnow() + timedelta(minutes=10))
    with store.transaction() as session:
        session.execute(update(JobSchedule).values(next_fire_at=ahead))
    steady_cpu, steady_wall = [], []
    for _ in range(STEADY_TICKS):
        cpu, wall = time.process_time(), time.perf_counter()
        made = area.tick()
        steady_cpu.append(time.process_time() - cpu)
        steady_wall.append(time.perf_counter() - wall)
        if made:
            raise RuntimeError(f"{len(made)} runs fired in the steady state")
    with store.transaction() as session:
        session.execute(update(JobSchedule).values(next_fire_at=utcnow() - timedelta(seconds=10)))
    tick_start = time.time()
    cpu, wall = time.process_time(), time.perf_counter()
    made = area.tick()
    burst_cpu, burst_wall = time.process_time() - cpu, time.perf_counter() - wall
    with store.session() as session:
        queued = session.scalar(select(func.count()).where(JobRun.status == "queued"))
        first, last = session.execute(
            select(func.min(JobRun.created_at), func.max(JobRun.created_at))
        ).one()
    after_cpu = []
    for _ in range(5):  # steady again, now with 1,000 queued runs in the table
        cpu = time.process_time()
        area.tick()
        after_cpu.append(time.process_time() - cpu)
    return {
        "created": created, "steady_cpu": steady_cpu, "steady_wall": steady_wall,
        "burst_cpu": burst_cpu, "burst_wall": burst_wall, "made": len(made), "queued": queued,
        "first_delay": epoch(first) - tick_start, "last_delay": epoch(last) - tick_start,
        "after_cpu": after_cpu,
    }  # fmt: skip


def main() -> int:
    from mlflow import MlflowClient

    from jupyter_mlplat import fluent
    from jupyter_mlplat.client import PlatformClient
    from jupyter_mlplat.identity import Identity
    from jupyter_mlplat.settings import MlplatSettings, reset_settings
    from jupyter_mlplat.store.db import get_store
    from tests import hub_fixtures
    from tests.servers import MlflowServer

    root = os.geteuid() == 0
    load_start = os.getloadavg()
    accounts_before = {e.pw_name for e in pwd.getpwall()}
    tmp = Path(tempfile.mkdtemp(prefix="mlplat-bench-jobs-"))
    shared = hub_fixtures.isolation_root() if root else tmp
    homes = shared / f"job-homes-{uuid.uuid4().hex[:6]}"
    homes.mkdir(mode=0o711)
    identity = Identity(OWNER, ("churn",), "test")
    clients = []
    server = MlflowServer(tmp / "mlflow")
    try:
        print("starting mlflow server ...", flush=True)
        server.start()
        account = make_account(homes)
        python = hub_fixtures.user_python() if root else sys.executable

        def settings_for(home: Path) -> MlplatSettings:
            home.mkdir()
            return MlplatSettings(
                home=str(home), user=OWNER, teams=["churn"], teams_source="test",
                tracking_uri=server.uri, store_url=f"sqlite:///{home / 'platform.db'}",
                jobs_work_dir=str(shared / f"job-work-{uuid.uuid4().hex[:6]}"),
                jobs_account_prefix=hub_fixtures.TEST_ACCOUNT_PREFIX, jobs_python=python,
                jobs_workers=2,
            )  # fmt: skip

        settings = settings_for(tmp / "home")
        fluent.reset()
        reset_settings(settings)
        client = PlatformClient(settings, transport="inprocess", identity=identity)
        clients.append(client)
        area = client._transport.platform.areas["jobs"]
        store = get_store(settings)
        mlflow_client = MlflowClient(server.uri)
        nb = notebook()

        print("job process start-up, alone ...", flush=True)
        startup_home = homes / OWNER if account else tmp
        startup = startup_as(account, python, startup_home, server.uri)
        print(
            "1. per job: ours, bare execute_notebook, papermill CLI (interleaved) ...", flush=True
        )
        per_job = bench_per_job(client, mlflow_client, nb, tmp)
        print("2. throughput: bare pool of 2 ...", flush=True)
        pool_tmp = tmp / "pool"
        pool_tmp.mkdir()
        (pool_tmp / "two-cells.ipynb").write_text(json.dumps(nb))
        pool = bare_pool(pool_tmp / "two-cells.ipynb", pool_tmp, pool_tmp)
        print("2. throughput: ours, 2 workers ...", flush=True)
        ours_tp = bench_throughput(client, store, nb)
        print("3. cron firing -> kernel ...", flush=True)
        cron_lat = bench_cron(client, area, store, nb)
        client._transport.platform.resources.close()  # its idle workers stay out of part 4
        clients.remove(client)

        print(f"4. {SCHEDULES} schedules (a platform whose workers never start) ...", flush=True)
        settings2 = settings_for(tmp / "home-schedules")
        client2 = PlatformClient(settings2, transport="inprocess", identity=identity)
        clients.append(client2)
        sched = bench_schedules(
            client2, client2._transport.platform.areas["jobs"], get_store(settings2), nb
        )
        if client2._transport.platform.resources.job_workers_for(None).started:
            raise RuntimeError("the schedules platform's workers started")
    finally:
        for c in clients:
            c._transport.platform.resources.close()
        reset_settings(None)
        fluent.reset()
        server.stop()
        for entry in pwd.getpwall():
            if (
                entry.pw_name.startswith(hub_fixtures.TEST_ACCOUNT_PREFIX)
                and entry.pw_name not in accounts_before
            ):
                subprocess.run(["userdel", entry.pw_name], capture_output=True)
        if hub_fixtures._ROOT:
            shutil.rmtree(hub_fixtures._ROOT.pop(), ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    leftover = [
        e.pw_name
        for e in pwd.getpwall()
        if e.pw_name.startswith(hub_fixtures.TEST_ACCOUNT_PREFIX)
        and e.pw_name not in accounts_before
    ]
    report(root, python, startup, per_job, pool, ours_tp, cron_lat, sched)
    load = " -> ".join(" ".join(f"{x:.2f}" for x in avg) for avg in (load_start, os.getloadavg()))
    print(f"load average (1, 5, 15 min) at start -> end: {load} (2 cores; others' runs add noise)")
    print(f"mlplat-test-* accounts this run made and left: {leftover or 'none'}")
    return 0


def report(root, python, startup, per_job, pool, ours_tp, cron_lat, sched) -> None:
    import mlflow
    import papermill

    as_whom = "as the owner's account mlplat-test-benchjobs" if root else "as this user"
    print(f"\npapermill {papermill.__version__}, mlflow {mlflow.__version__}, 2 cores: "
          f"jobs {as_whom}, job python {python}; bare peers in this process ({sys.executable})")  # fmt: skip
    ours = [t["total"] for t in per_job["ours"]]
    bare, cli = per_job["bare"], per_job["cli"]
    n = len(ours)
    print(f"\n1. per job, 2-cell notebook + parameters cell ({n} runs each, after a warm-up)")
    print(f"{'path':44} {'median s':>9} {'p90 s':>7} {'ratio':>7}")
    rows = [
        ("platform: submit -> final status seen", ours),
        ("bare papermill.execute_notebook (warm)", bare),
        ("papermill CLI (a process per job)", cli),
    ]
    for label, values in rows:
        ratio = med(values) / med(bare)
        print(f"{label:44} {med(values):9.2f} {pct(values, 0.9):7.2f} {ratio:6.2f}x")
    print("   target: platform <= 1.20x bare execute_notebook; "
          f"now {med(ours) / med(bare):.2f}x (median), {pct(ours, 0.9) / pct(bare, 0.9):.2f}x (p90)")  # fmt: skip
    print("   each run, in order: platform " + " ".join(f"{v:.2f}" for v in ours)
          + "; bare " + " ".join(f"{v:.2f}" for v in bare))  # fmt: skip
    slowest = max(per_job["ours"], key=lambda t: t["total"])
    print("   the slowest platform run's timestamps (s after submit): " + ", ".join(
        f"{k} {v - slowest['submit']:.2f}" for k, v in sorted(slowest.items(), key=lambda kv: kv[1])
        if k not in ("total", "submit") and v == v
    ))  # fmt: skip
    print("\n   where the platform's time goes (median of each segment; they add up to the total)")
    total = 0.0
    for label, start, end in SEGMENTS:
        value = med([t[end] - t[start] for t in per_job["ours"]])
        total += value
        print(f"   {label:52} {value * 1000:7.0f} ms")
    print(f"   {'sum of medians':52} {total * 1000:7.0f} ms")
    print(f"   bare execute_notebook, kernel start (to first cell): "
          f"{med(per_job['bare_kernel']) * 1000:.0f} ms")  # fmt: skip
    print(
        "\n   the job process's start-up alone, " + as_whom + f" ({STARTUP_REPEATS} runs, median)"
    )
    for label, values in startup.items():
        print(f"   {label:52} {med(values) * 1000:7.0f} ms")

    pool_rate = THROUGHPUT_JOBS / pool["wall"] * 60
    ours_rate = THROUGHPUT_JOBS / ours_tp["wall"] * 60
    print(f"\n2. throughput, {THROUGHPUT_JOBS} jobs, 2 at a time")
    print(f"{'path':44} {'wall s':>9} {'jobs/min':>9} {'ratio':>7}")
    print(
        f"{'bare ProcessPoolExecutor(2), warm':44} {pool['wall']:9.1f} {pool_rate:9.1f} {1:6.2f}x"
    )
    print(f"{'platform, jobs_workers=2':44} {ours_tp['wall']:9.1f} {ours_rate:9.1f} "
          f"{ours_rate / pool_rate:6.2f}x")  # fmt: skip
    print(f"   target: platform >= 0.80x the pool; succeeded {ours_tp['succeeded']}/{THROUGHPUT_JOBS}"
          f", at most {ours_tp['most_running']} running at once, submitting took "
          f"{ours_tp['submitted']:.2f} s")  # fmt: skip
    print(f"   platform: claim -> finish per job median {med(ours_tp['spans']):.2f} s (max "
          f"{max(ours_tp['spans']):.2f}); pool: per job median {med(pool['durations']):.2f} s "
          f"(max {max(pool['durations']):.2f})")  # fmt: skip
    print(f"   machine CPU busy per job (all processes): platform "
          f"{ours_tp['cpu'] / THROUGHPUT_JOBS:.2f} s, pool {pool['cpu'] / THROUGHPUT_JOBS:.2f} s "
          f"(2 cores: {2 * ours_tp['wall'] / THROUGHPUT_JOBS:.2f} / "
          f"{2 * pool['wall'] / THROUGHPUT_JOBS:.2f} s of core time per job)")  # fmt: skip

    print(f"\n3. cron firing (tick called) -> kernel, {CRON_REPEATS} firings")
    for label, key in (
        ("tick() itself (one schedule due)", "tick"),
        ("-> run claimed by a worker", "claimed"),
        ("-> kernel's first cell (parameters) started", "first_cell"),
        ("-> first own cell's time.time() in the kernel", "kernel_cell"),
    ):
        values = cron_lat[key]
        print(f"   {label:52} median {med(values):6.2f} s  max {max(values):6.2f} s")

    steady = med(sched["steady_cpu"])
    print(f"\n4. {SCHEDULES} schedules (*/5 * * * *, {len(ZONES)} time zones)")
    print(f"   create_schedule through the API: {sched['created'] * 1000:.1f} ms each (mean "
          f"of the first {API_SCHEDULES}; the other {SCHEDULES - API_SCHEDULES} inserted as the "
          "same rows in the store)")  # fmt: skip
    print(f"   tick, none due: CPU {steady * 1000:.2f} ms (median of {STEADY_TICKS}; wall "
          f"{med(sched['steady_wall']) * 1000:.2f} ms) -> {steady * 12 * 1000:.1f} ms CPU per "
          "minute at the 5 s tick")  # fmt: skip
    print(f"   tick, all {SCHEDULES} due: CPU {sched['burst_cpu']:.2f} s, wall {sched['burst_wall']:.2f} s; "
          f"{sched['made']} runs made, {sched['queued']} queued rows in the store (none executed)")  # fmt: skip
    print(f"   firing delay: tick start -> first run row {sched['first_delay'] * 1000:.0f} ms, "
          f"-> last run row {sched['last_delay']:.2f} s")  # fmt: skip
    print(f"   tick, none due, with those {sched['queued']} queued runs in the table: CPU "
          f"{med(sched['after_cpu']) * 1000:.2f} ms")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
