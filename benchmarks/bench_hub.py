"""Embedded-mode hub benchmarks: spawn time, idle memory and /api/me latency.

Run with ``.venv/bin/python benchmarks/bench_hub.py`` (about 1-2 minutes on 2 cores). It
starts the real hub of hub_config/jupyterhub_config.py the way the ``platform_hub``
fixture of tests/hub_fixtures.py does (JupyterHub, configurable-http-proxy, the platform
service, MLflow and the idle culler on free loopback ports), measures, and stops it all.

* Spawn time: ``POST /hub/api/users/alice/server`` with ``{"profile": "churn-cpu"}`` until
  ``GET /user/alice/api`` answers 200 through the proxy; median/min/max over 5 spawns.
  Baseline: the same single-user command under a bare JupyterHub (SimpleLocalProcessSpawner,
  DummyAuthenticator, no services).
* Resident memory at idle (no user servers): VmRSS (and PSS where readable) of the hub,
  the proxy, the platform service, MLflow (its uvicorn worker, and apart the job runner with
  its huey consumers that MLflow 3 starts by default) and the idle culler, found by walking
  the hub's process tree through /proc.
* ``GET /services/mlplat/api/me`` with alice's token from 20 concurrent clients vs the
  hub's own ``GET /hub/api/user`` with the same token and concurrency.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from tests.hub import JupyterHubProcess  # noqa: E402
from tests.hub_fixtures import CONFIG, USERS, login, write_home  # noqa: E402

PROFILE = {"profile": "churn-cpu"}

_BASELINE_CONFIG = """\
# Written by benchmarks/bench_hub.py: a bare JupyterHub with the same single-user command.
import os
c = get_config()  # noqa: F821
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {home!r}
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
if os.geteuid() == 0:
    c.Spawner.args = ["--allow-root"]
"""


# ---- spawn ------------------------------------------------------------------------


def time_spawns(hub: JupyterHubProcess, token: str, options: dict, n: int) -> list[float]:
    """Seconds from the spawn request until the server answers through the proxy."""
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        response = hub.request(
            "POST", f"{hub.api_url}/users/alice/server", token=token, json=options
        )
        if response.status_code not in (201, 202):
            raise RuntimeError(f"spawn refused: {response.status_code} {response.text}")
        deadline = time.monotonic() + 120
        while True:
            answer = hub.request(
                "GET", f"{hub.url}/user/alice/api", token=token, allow_redirects=False, timeout=10
            )
            if answer.status_code == 200 and "version" in answer.json():
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"alice's server did not answer:\n{hub.log_tail()}")
            time.sleep(0.05)
        samples.append(time.perf_counter() - start)
        hub.stop_server("alice")
    return samples


def baseline_spawns(workdir: Path, n: int) -> list[float]:
    """The same measurement under a bare JupyterHub."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "baseline_config.py"
    singleuser = str(Path(sys.executable).with_name("jupyterhub-singleuser"))
    config.write_text(
        _BASELINE_CONFIG.format(home=str(workdir / "users" / "{username}"), singleuser=singleuser)
    )
    hub = JupyterHubProcess(config, workdir / "run", env={})
    try:
        hub.start(timeout=120)
        hub.api("POST", "/users/alice").raise_for_status()
        token = hub.create_user_token("alice")
        return time_spawns(hub, token, {}, n)
    finally:
        hub.stop()


# ---- memory -----------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name in parentheses may contain spaces; the ppid follows it.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def _descendants(pid: int, children: dict[int, list[int]]) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _kib(path: str, field: str) -> int | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="ignore")
        )
    except OSError:
        return ""


def _component(cmdline: str) -> str:
    for needle, name in (
        ("configurable-http-proxy", "proxy (node)"),
        ("jupyter_mlplat.service", "platform service"),
        ("mlflow", "MLflow server"),
        ("jupyterhub_idle_culler", "idle culler"),
    ):
        if needle in cmdline:
            return name
    return "other"


def idle_memory(hub_pid: int) -> dict[str, dict]:
    """RSS/PSS in KiB per component of the hub's process tree (children by top-level child)."""
    children = _children_map()
    groups: dict[str, list[int]] = {"hub": [hub_pid]}
    for child in children.get(hub_pid, []):
        name = _component(_cmdline(child))
        for pid in _descendants(child, children):
            # MLflow >= 3.x also starts a job runner with huey consumers by default.
            jobs = name == "MLflow server" and "mlflow.server.jobs" in _cmdline(pid)
            groups.setdefault("MLflow job runner" if jobs else name, []).append(pid)
    result = {}
    for name, pids in groups.items():
        rss = sum(_kib(f"/proc/{p}/status", "VmRSS") or 0 for p in pids)
        pss_values = [_kib(f"/proc/{p}/smaps_rollup", "Pss") for p in pids]
        pss = None if None in pss_values else sum(pss_values)
        result[name] = {"pids": len(pids), "rss": rss, "pss": pss}
    return result


# ---- latency ----------------------------------------------------------------------


def load(url: str, token: str, clients: int, per_client: int, warmup: int) -> dict:
    """``clients`` threads, each with its own session, ``per_client`` GETs after a warm-up."""
    barrier = threading.Barrier(clients + 1)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    headers = {"Authorization": f"token {token}"}

    def worker(index: int) -> None:
        with requests.Session() as session:
            session.trust_env = False
            for _ in range(warmup):
                session.get(url, headers=headers, timeout=30)
            barrier.wait()
            for _ in range(per_client):
                start = time.perf_counter()
                try:
                    ok = session.get(url, headers=headers, timeout=30).status_code == 200
                except requests.RequestException:
                    ok = False
                latencies[index].append(time.perf_counter() - start)
                errors[index] += not ok

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    samples = sorted(s for per in latencies for s in per)
    return {
        "n": len(samples),
        "errors": sum(errors),
        "p50": samples[len(samples) // 2] * 1000,
        "p99": samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000,
        "rps": len(samples) / wall,
    }


# ---- main -------------------------------------------------------------------------


def _spawn_row(label: str, samples: list[float]) -> str:
    return (
        f"  {label:<34} {statistics.median(samples):7.2f} s {min(samples):7.2f} s "
        f"{max(samples):7.2f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spawns", type=int, default=5)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50, help="per client")
    parser.add_argument("--no-baseline", action="store_true", help="skip the bare-hub spawns")
    args = parser.parse_args()

    began = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="mlplat-bench-hub-"))
    home = tmp / "home"
    hub = JupyterHubProcess(CONFIG, tmp / "run", env={})
    try:
        write_home(home, hub)
        hub.env = {"MLPLAT_HOME": str(home)}
        start = time.perf_counter()
        hub.start(timeout=120)
        hub.wait_for("/services/mlflow/health", timeout=120)
        hub.wait_for("/services/mlplat/api/health", timeout=60)
        startup = time.perf_counter() - start
        for name, (password, _) in USERS.items():
            if login(hub, name, password).status_code != 302:
                raise RuntimeError(f"{name} could not log in:\n{hub.log_tail()}")
        token = hub.create_user_token("alice")
        print(
            f"hub up (JupyterHub + proxy + service + MLflow + culler) in {startup:.1f} s",
            flush=True,
        )

        # 2. idle memory first, before any spawn has touched the hub
        time.sleep(2)
        memory = idle_memory(hub.proc.pid)

        # 3. latency
        me = f"{hub.url}/services/mlplat/api/me"
        body = hub.request("GET", me, token=token).json()
        if body.get("user") != "alice":
            raise RuntimeError(f"/api/me answered {body}")
        ours = load(me, token, args.clients, args.requests, warmup=3)
        theirs = load(f"{hub.url}/hub/api/user", token, args.clients, args.requests, warmup=3)

        # 1. spawns
        spawns = time_spawns(hub, token, PROFILE, args.spawns)
    finally:
        if hub.proc is not None and hub.proc.poll() is None:
            with contextlib.suppress(requests.RequestException):
                hub.stop_server("alice", timeout=30)
        hub.stop()

    baseline = None
    if not args.no_baseline:
        try:
            baseline = baseline_spawns(tmp / "baseline", args.spawns)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(f"1. Spawn time, POST /hub/api/users/alice/server -> GET /user/alice/api 200 "
          f"({args.spawns} spawns)")  # fmt: skip
    print(f"  {'':<34} {'median':>9} {'min':>9} {'max':>9}")
    print(_spawn_row("mlplat hub, profile churn-cpu", spawns))
    if baseline:
        print(_spawn_row("bare JupyterHub (simple spawner)", baseline))
        overhead = statistics.median(spawns) - statistics.median(baseline)
        print(f"  mlplat overhead vs bare hub (median): {overhead:+.2f} s")

    print()
    print("2. Resident memory at idle (no user servers), MiB")
    print(f"  {'process':<20} {'procs':>5} {'RSS':>8} {'PSS':>8}")
    order = ["hub", "proxy (node)", "platform service", "MLflow server", "MLflow job runner"]
    order += ["idle culler", "other"]
    for name in sorted(memory, key=lambda n: order.index(n) if n in order else len(order)):
        m = memory[name]
        pss = "n/a" if m["pss"] is None else f"{m['pss'] / 1024:8.1f}"
        print(f"  {name:<20} {m['pids']:>5} {m['rss'] / 1024:8.1f} {pss:>8}")
    total_rss = sum(m["rss"] for m in memory.values())
    pss_all = [m["pss"] for m in memory.values()]
    total_pss = "n/a" if None in pss_all else f"{sum(pss_all) / 1024:8.1f}"
    procs = sum(m["pids"] for m in memory.values())
    print(f"  {'total':<20} {procs:>5} {total_rss / 1024:8.1f} {total_pss:>8}")

    print()
    print(f"3. Latency, {args.clients} concurrent clients x {args.requests} requests "
          "(alice's token, through the proxy)")  # fmt: skip
    print(f"  {'endpoint':<34} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'errors':>6}")
    for label, r in (("GET /services/mlplat/api/me", ours), ("GET /hub/api/user", theirs)):
        print(f"  {label:<34} {r['p50']:8.1f} {r['p99']:8.1f} {r['rps']:8.1f} {r['errors']:>6}")
    print(
        f"  ratio ours / hub's API: p50 {ours['p50'] / theirs['p50']:.2f}x, "
        f"p99 {ours['p99'] / theirs['p99']:.2f}x, "
        f"throughput {ours['rps'] / theirs['rps']:.2f}x"
    )
    print()
    print(f"total benchmark time {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
