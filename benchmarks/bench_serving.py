"""Serving benchmark: predict latency and throughput at concurrency 1, 8 and 32.

Run with ``.venv/bin/python benchmarks/bench_serving.py`` (after ``make install``, which
builds the serving venv). One run measures, for the same MLflow sklearn model and one-row
requests:

* ``in-process``: ``model.predict`` in this process (the floor), from a thread pool;
* ``bare MLServer``: MLServer + mlserver-mlflow started by ``serving.local`` (the peer),
  V2 infer over loopback HTTP with keep-alive connections, one per concurrent caller.

Issue 9's target is the platform-service path at ≤ 1.5x the bare MLServer p50 at
concurrency 8: add it to ``PATHS`` in ``main`` (see the comment there). Also printed: launch
to ready, and the resident memory of the MLServer process group.
"""

from __future__ import annotations

import asyncio
import statistics
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


async def bench_http(url: str, body: dict, concurrency: int) -> dict[str, float]:
    """POST ``body`` to ``url`` from ``concurrency`` callers, each on its own keep-alive connection."""
    import aiohttp

    total = REQUESTS[concurrency]
    deadline = time.monotonic() + TIME_LIMIT
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:

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


def main() -> None:
    from jupyter_mlplat.serving.environment import find_serving_environment
    from jupyter_mlplat.serving.local import LocalModelServer

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
            # Each path: (label, function of concurrency returning the summary).
            PATHS = [
                ("in-process model.predict", lambda c: bench_in_process(model, row, c)),
                ("bare MLServer (V2 HTTP)", lambda c: asyncio.run(bench_http(url, body, c))),
                # The platform service path goes here, through the same client, e.g.
                # ("platform service", lambda c: asyncio.run(bench_http(
                #     f"{service}/api/deployments/bench/v2/models/bench/infer", body, c))),
                # with the caller's hub token in the request headers.
            ]
            rows = [(label, c, run(c)) for label, run in PATHS for c in CONCURRENCY]
            rss = group_rss_mib(server.handle.pid)
        finally:
            server.stop()

    print(f"MLServer {env.versions['mlserver']}, mlflow {env.versions['mlflow']}: one-row requests")
    print(f"launch -> ready: {ready_s:.1f} s; MLServer process group RSS: {rss:.0f} MiB")
    print(f"{'path':<28} {'conc':>4} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'n':>6}")
    for label, c, s in rows:
        print(
            f"{label:<28} {c:>4} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f} {s['rps']:>8.0f} {s['n']:>6}"
        )


if __name__ == "__main__":
    main()
