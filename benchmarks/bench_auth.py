"""Tracking through the authenticated path: MLflow behind hub identity vs MLflow without auth.

Run with ``.venv/bin/python benchmarks/bench_auth.py`` (about 2-3 minutes on 2 cores). In one
run it starts

* the real hub of the shipped config (as tests/hub_fixtures.py does): its MLflow is
  ``mlflow server --app-name mlplat-hub`` (MLflow's auth app, hub tokens checked with the Hub
  and cached for ``hub_cache_seconds``, grants from hub groups); and
* a plain ``mlflow server`` with the same flags (SQLite, uvicorn, one worker), no auth,

then, from one client on a reused connection, on MLflow's loopback port of each (the proxy is
the same on both sides, so it is left out):

* 1,000 metrics: 1,000 ``log_metric`` calls (one request each: the per-request cost of
  authentication and authorization), and one ``log_batch`` of 1,000;
* ``search_runs`` over an experiment of 1,000 runs (all pages of 1,000).

Each figure is the median of repeats; the ratio auth/no-auth is the target (at most 1.2x).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from bench_foundation import _median_time as _median  # noqa: E402

from tests.hub import JupyterHubProcess  # noqa: E402
from tests.hub_fixtures import CONFIG, USERS, login, write_home  # noqa: E402
from tests.servers import MlflowServer  # noqa: E402

N_METRICS = 1000
N_RUNS = 1000


def measure(uri: str, token: str | None, team: str) -> dict[str, float]:
    import os

    from mlflow import MlflowClient
    from mlflow.entities import Metric

    if token:
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
    else:
        os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
    client = MlflowClient(uri)
    experiment = client.create_experiment(f"{team}/bench-{time.time_ns()}")
    run = client.create_run(experiment).info.run_id
    client.log_metric(run, "warm", 0.0)  # connection and token cache warm
    results = {}

    def metrics_one_by_one():
        for step in range(N_METRICS):
            client.log_metric(run, "loss", 1.0 / (step + 1), step=step)

    results["1,000 x log_metric"] = _median(metrics_one_by_one, 3)
    now = int(time.time() * 1000)
    batch = [Metric("acc", i / N_METRICS, now, i) for i in range(N_METRICS)]
    results["log_batch of 1,000"] = _median(lambda: client.log_batch(run, metrics=batch), 9)
    search_experiment = client.create_experiment(f"{team}/bench-search-{time.time_ns()}")
    for i in range(N_RUNS):
        created = client.create_run(search_experiment).info.run_id
        client.log_metric(created, "auc", i / N_RUNS)

    def search_all():
        found, token_ = 0, None
        while True:
            page = client.search_runs([search_experiment], max_results=1000, page_token=token_)
            found += len(page)
            token_ = page.token
            if not token_:
                break
        assert found == N_RUNS, found

    results["search_runs, 1,000 runs"] = _median(search_all, 9)
    return results


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="mlplat-bench-auth-"))
    plain = MlflowServer(tmp / "plain").start()
    hub = JupyterHubProcess(CONFIG, tmp / "run", env={})
    home = tmp / "home"
    write_home(home, hub)
    hub.env = {"MLPLAT_HOME": str(home)}
    try:
        hub.start(timeout=120)
        hub.wait_for("/services/mlflow/health", timeout=120)
        assert login(hub, "alice", USERS["alice"][0]).status_code == 302  # alice exists now
        token = hub.create_user_token("alice")
        services = hub.api("GET", "/services").json()
        authed = f"{services['mlflow']['url'].rstrip('/')}/services/mlflow"
        print("measuring MLflow without auth ...", flush=True)
        off = measure(plain.uri, None, "churn")
        print("measuring MLflow behind hub identity ...", flush=True)
        on = measure(authed, token, "churn")
    finally:
        hub.stop()
        plain.stop()
    print(f"\n{'workload':28} {'no auth':>10} {'hub auth':>10} {'ratio':>7}  (target <= 1.20x)")
    for name in off:
        ratio = on[name] / off[name]
        print(f"{name:28} {off[name] * 1000:8.0f}ms {on[name] * 1000:8.0f}ms {ratio:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
