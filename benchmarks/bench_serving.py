"""Serving benchmark: predict latency and throughput at concurrency 1, 8 and 32.

Run with ``.venv/bin/python benchmarks/bench_serving.py`` (after ``make install``, which
builds the serving venv). One run measures, for the same MLflow sklearn model and one-row
requests:

* ``in-process``: ``model.predict`` in this process (the floor), from a thread pool;
* ``bare MLServer``: MLServer + mlserver-mlflow started by ``serving.local`` (the peer),
  V2 infer over loopback HTTP with keep-alive connections, one per concurrent caller;
* ``platform (hub proxy)``: our deployment of the same model, through the real hub of the
  shipped config (started as tests/hub_fixtures.py's ``running_hub`` does): V2 infer at
  ``{hub}/services/mlplat/api/deployments/<name>/v2/models/<name>/infer`` with alice's hub
  token, through configurable-http-proxy and the platform service;
* ``platform (service port)``: the same, straight to the platform service's loopback port
  (no proxy), which separates the proxy's share.

The model version is logged to the hub's MLflow as alice (experiment ``churn/bench-serving``),
registered, approved for staging by rita (no notebook lineage here) and deployed as alice.
Issue 9's target is the platform-service path at ≤ 1.5x the bare MLServer p50 at
concurrency 8. Also printed: launch to ready and ``deploy`` to first successful prediction,
and the resident memory of each MLServer process group. Running as root, the model servers
run as ``mlplat-test-*`` accounts, which are removed at the end with the temp dirs.

``BENCH_PROFILE_DIR=<dir>``: also record the platform service with py-spy (raw collapsed
stacks) during its proxied run at concurrency 8.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

CONCURRENCY = (1, 8, 32)
WARMUP = 50
# Requests per concurrency level: bounded in count, and each level stops after TIME_LIMIT.
REQUESTS = {1: 500, 8: 1600, 32: 3200}
TIME_LIMIT = 60.0


def make_model(path: Path):
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    X = pd.DataFrame(
        {"tenure": rng.uniform(0, 60, 200), "spend": rng.uniform(10, 200, 200), "calls": rng.uniform(0, 9, 200)}
    )  # fmt: skip
    y = ((X.tenure < 20) & (X.calls > 4)).astype(int)
    model = LogisticRegression(max_iter=500).fit(X, y)
    mlflow.sklearn.save_model(model, path, signature=infer_signature(X, model.predict(X)))
    return model, X.head(1)


def summary(latencies: list[float], wall: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "rps": len(ordered) / wall,
        "n": len(ordered),
    }


def bench_in_process(model, row, concurrency: int) -> dict[str, float]:
    """``model.predict`` from ``concurrency`` threads (the GIL makes this the honest floor)."""
    for _ in range(WARMUP):
        model.predict(row)
    total = REQUESTS[concurrency]
    deadline = time.monotonic() + TIME_LIMIT

    def worker(count: int) -> list[float]:
        out = []
        for _ in range(count):
            if time.monotonic() > deadline:
                break
            start = time.perf_counter()
            model.predict(row)
            out.append(time.perf_counter() - start)
        return out

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        parts = list(pool.map(worker, [total // concurrency] * concurrency))
    wall = time.perf_counter() - started
    return summary([t for part in parts for t in part], wall)


def v2_request(row) -> dict:
    return {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {"name": c, "shape": [len(row)], "datatype": "FP64", "data": row[c].tolist()}
            for c in row.columns
        ],
    }


async def bench_http(
    url: str, body: dict, concurrency: int, headers: dict | None = None
) -> dict[str, float]:
    """POST ``body`` to ``url`` from ``concurrency`` callers, each on its own keep-alive connection."""
    import aiohttp

    total = REQUESTS[concurrency]
    deadline = time.monotonic() + TIME_LIMIT
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        connector=connector, trust_env=False, headers=headers
    ) as session:

        async def call() -> float:
            start = time.perf_counter()
            async with session.post(url, json=body) as answer:
                await answer.read()
                if answer.status != 200:
                    raise RuntimeError(f"{url} answered {answer.status}: {await answer.text()}")
            return time.perf_counter() - start

        for _ in range(WARMUP):
            await call()

        async def worker(count: int) -> list[float]:
            out = []
            for _ in range(count):
                if time.monotonic() > deadline:
                    break
                out.append(await call())
            return out

        started = time.perf_counter()
        parts = await asyncio.gather(*(worker(total // concurrency) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return summary([t for part in parts for t in part], wall)


def group_rss_mib(pgid: int) -> float:
    """Sum of VmRSS over the process group (shared pages counted in each process)."""
    total_kib = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            stat = (status.parent / "stat").read_text().rpartition(")")[2].split()
            if int(stat[2]) != pgid:
                continue
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total_kib / 1024


def listening_pid(port: int) -> int | None:
    """The pid of the process listening on loopback ``port`` (for profiling), if ``ss`` says."""
    try:
        out = subprocess.run(
            ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = __import__("re").search(r"pid=(\d+)", out)
    return int(found[1]) if found else None


@contextlib.contextmanager
def platform_deployment(model, row):
    """The real hub with our deployment of ``model`` (staging, approved by rita, deployed by
    alice). Yields a dict: infer URLs (proxy and service port), alice's headers, deploy to
    first prediction, the deployment's MLServer process group and the service's pid."""
    import mlflow
    import mlflow.sklearn

    from jupyter_mlplat.client import PlatformClient
    from jupyter_mlplat.settings import MlplatSettings
    from tests import hub_fixtures

    before = {entry.pw_name for entry in pwd.getpwall()}
    tmp = Path(tempfile.mkdtemp(prefix="mlplat-bench-serving-hub-"))
    client = name = None
    try:
        with hub_fixtures.running_hub(tmp / "home", tmp / "run", tmp / "features") as hub:
            alice_token = hub.create_user_token("alice")
            rita_token = hub.create_user_token("rita")
            os.environ["MLFLOW_TRACKING_TOKEN"] = alice_token
            mlflow.set_tracking_uri(f"{hub.url}/services/mlflow")
            mlflow.set_experiment("churn/bench-serving")
            with mlflow.start_run() as run:
                mlflow.sklearn.log_model(model, name="model", input_example=row)
            service_url = f"{hub.url}/services/mlplat/"

            def as_user(token):
                return PlatformClient(
                    MlplatSettings(client_transport="http", service_url=service_url),
                    token=token, retry_seconds=10,
                )  # fmt: skip

            client, rita = as_user(alice_token), as_user(rita_token)
            name = f"bench-serving-{time.time_ns() % 10**8:08d}"
            version = client.register_model(name, run.info.run_id).version
            request = client.request_approval(name, version, "staging")
            rita.approve(request.id, "benchmark")
            deployment = f"{name}-staging"
            records = row.to_dict(orient="records")
            started = time.perf_counter()
            client.deploy(name, version, "staging", None)
            while True:
                try:
                    client.predict(deployment, records, None)
                    break
                except Exception:
                    if time.perf_counter() - started > 300:
                        raise
                    time.sleep(0.05)
            deploy_s = time.perf_counter() - started
            services = hub.api("GET", "/services").json()
            direct = services["mlplat"]["url"].rstrip("/")
            pidfiles = list(tmp.rglob(f"{deployment}__{version}.pid"))
            if running_as_root := (os.geteuid() == 0):
                pidfiles += list(
                    hub_fixtures.isolation_root().rglob(f"{deployment}__{version}.pid")
                )
            pgid = int(pidfiles[0].read_text().strip()) if pidfiles else None
            tail = f"/services/mlplat/api/deployments/{deployment}/v2/models/{deployment}/infer"
            yield {
                "proxy_url": f"{hub.url}{tail}",
                "direct_url": f"{direct}{tail}",
                "headers": {"Authorization": f"token {alice_token}"},
                "deploy_s": deploy_s,
                "pgid": pgid,
                "service_pid": listening_pid(int(direct.rsplit(":", 1)[1])),
                "root": running_as_root,
            }
            with contextlib.suppress(Exception):
                client.undeploy(deployment)
    finally:
        os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
        for entry in pwd.getpwall():
            if (
                entry.pw_name.startswith(hub_fixtures.TEST_ACCOUNT_PREFIX)
                and entry.pw_name not in before
            ):
                subprocess.run(["userdel", entry.pw_name], capture_output=True)
        if hub_fixtures._ROOT:
            shutil.rmtree(hub_fixtures._ROOT.pop(), ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


def profiled(run, pid: int | None, out: Path | None):
    """``run()``, with py-spy recording ``pid`` meanwhile when ``out`` is set."""
    if out is None or pid is None:
        return run()
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen(
        [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--format", "raw",
         "--rate", "250", "--threads", "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1.0)
    try:
        return run()
    finally:
        spy.send_signal(2)
        spy.wait(timeout=60)


def main() -> None:
    from jupyter_mlplat.serving.environment import find_serving_environment
    from jupyter_mlplat.serving.local import LocalModelServer

    profile_dir = os.environ.get("BENCH_PROFILE_DIR")
    accounts_before = {e.pw_name for e in pwd.getpwall()}
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        tmp = Path(tmp)
        model, row = make_model(tmp / "model")
        env = find_serving_environment()
        launched = time.perf_counter()
        server = LocalModelServer.start(env, tmp / "model", "bench", tmp / "deployment")
        try:
            server.wait_ready(timeout=120)
            ready_s = time.perf_counter() - launched
            url = f"{server.handle.base_url}/v2/models/bench/infer"
            body = v2_request(row)
            with platform_deployment(model, row) as ours:
                headers = ours["headers"]

                def platform(target: str, c: int):
                    out = None
                    if profile_dir and target == "proxy_url" and c == 8:
                        out = Path(profile_dir) / "service-c8.txt"
                    return profiled(
                        lambda: asyncio.run(bench_http(ours[target], body, c, headers)),
                        ours["service_pid"], out,
                    )  # fmt: skip

                # Each path: (label, function of concurrency returning the summary).
                PATHS = [
                    ("in-process model.predict", lambda c: bench_in_process(model, row, c)),
                    ("bare MLServer (V2 HTTP)", lambda c: asyncio.run(bench_http(url, body, c))),
                    ("platform (hub proxy)", lambda c: platform("proxy_url", c)),
                    ("platform (service port)", lambda c: platform("direct_url", c)),
                ]
                rows = [(label, c, run(c)) for label, run in PATHS for c in CONCURRENCY]
                rss = group_rss_mib(server.handle.pid)
                ours_rss = group_rss_mib(ours["pgid"]) if ours["pgid"] else float("nan")
                deploy_s, service_pid = ours["deploy_s"], ours["service_pid"]
        finally:
            server.stop()
    leftover = [
        e.pw_name
        for e in pwd.getpwall()
        if e.pw_name.startswith("mlplat-test-") and e.pw_name not in accounts_before
    ]

    print(f"MLServer {env.versions['mlserver']}, mlflow {env.versions['mlflow']}: one-row requests")
    print(f"bare: launch -> ready: {ready_s:.1f} s; MLServer process group RSS: {rss:.0f} MiB")
    print(
        f"platform: deploy -> first successful prediction: {deploy_s:.1f} s; "
        f"deployment's MLServer process group RSS: {ours_rss:.0f} MiB "
        f"(platform service pid was {service_pid})"
    )
    print(f"{'path':<28} {'conc':>4} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'n':>6}")
    for label, c, s in rows:
        print(
            f"{label:<28} {c:>4} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f} {s['rps']:>8.0f} {s['n']:>6}"
        )
    bare = {c: s for label, c, s in rows if label.startswith("bare")}
    print("\nratio of p50 to bare MLServer p50 (target <= 1.5x at concurrency 8):")
    for label, c, s in rows:
        if label.startswith("platform"):
            print(f"{label:<28} {c:>4} {s['p50_ms'] / bare[c]['p50_ms']:>7.2f}x")
    print(f"mlplat-test-* accounts this run made and left: {leftover or 'none'}")


if __name__ == "__main__":
    main()
