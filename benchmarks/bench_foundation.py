"""Foundation benchmarks: metric logging, online features and extension load time.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_foundation.py``). Every
figure is a ratio against the raw library measured in this same run, so machines of
different speed give comparable numbers. Targets (issue 2):

* 1,000 metrics via ``%mlplat log`` / ``mlplat.log`` vs a loop of ``mlflow.log_metric``:
  at least 10x faster; vs one raw ``MlflowClient.log_batch``: at most 1.2x slower.
* online features for 1 / 100 / 1,000 entities via ``%mlplat features`` vs Feast's
  ``get_online_features``: at most 1.1x.
* ``%load_ext jupyter_mlplat`` on top of a bare IPython start: under 0.5 s.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

N_METRICS = 1000


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _shell():
    """The process's IPython shell with the extension loaded (created on first use)."""
    from IPython import get_ipython
    from IPython.testing.globalipapp import start_ipython

    shell = get_ipython() or start_ipython()
    shell.run_line_magic("load_ext", "jupyter_mlplat")
    return shell


def ipython_dispatch_seconds(shell, calls: int = 3000) -> float:
    """Median cost of IPython's own ``run_line_magic`` for a magic that does nothing."""
    shell.register_magic_function(lambda line: None, "line", "bench_noop")
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        shell.run_line_magic("bench_noop", "x=1")
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def bench_metrics(tracking_uri: str, repeats: int = 15) -> dict[str, float]:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    import jupyter_mlplat as mlplat
    from jupyter_mlplat import fluent
    from jupyter_mlplat.settings import MlplatSettings, reset_settings

    home = tempfile.mkdtemp(prefix="mlplat-bench-")
    reset_settings(MlplatSettings(home=home, tracking_uri=tracking_uri, teams=["bench"]))
    fluent.reset()
    shell = _shell()

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    mlplat.set_experiment("bench")
    run = mlplat.start_run("bench", autolog=False)
    values = [1.0 / (i + 1) for i in range(N_METRICS)]

    def raw_log_metric():
        for i, v in enumerate(values):
            mlflow.log_metric("raw_loop", v, step=i)

    def raw_log_batch():
        now = int(time.time() * 1000)
        metrics = [Metric("raw_batch", v, now, i) for i, v in enumerate(values)]
        client.log_batch(run.run_id, metrics=metrics, synchronous=True)

    def ours_python():
        for v in values:
            mlplat.log(ours_python=v)
        mlplat.flush()

    def ours_magic():
        for v in values:
            shell.run_line_magic("mlplat", f"log ours_magic={v}")
        mlplat.flush()

    for fn in (raw_log_batch, ours_python, ours_magic):  # warm-up: connections, imports
        fn()
    # Interleaved rounds, so drift in the server (its tables grow) hits every method alike.
    timed = {"raw log_batch": raw_log_batch, "mlplat.log loop": ours_python,
             "%mlplat log loop": ours_magic}  # fmt: skip
    samples: dict[str, list[float]] = {name: [] for name in timed}
    for _ in range(repeats):
        for name, fn in timed.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    results = {"raw log_metric loop": _median_time(raw_log_metric, 1)}
    results.update({name: statistics.median(values) for name, values in samples.items()})
    mlplat.end_run()
    return results


def bench_load_ext(repeats: int = 5) -> dict[str, float]:
    """Median seconds of a bare IPython start and of ``%load_ext`` on top, in fresh processes."""
    code = (
        "import time, json\n"
        "t0 = time.perf_counter()\n"
        "from IPython.testing.globalipapp import start_ipython\n"
        "shell = start_ipython()\n"
        "t1 = time.perf_counter()\n"
        "shell.run_line_magic('load_ext', 'jupyter_mlplat')\n"
        "t2 = time.perf_counter()\n"
        "print(json.dumps([t1 - t0, t2 - t1]))\n"
    )
    import json

    bare, ext = [], []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        first, second = json.loads(out.strip().splitlines()[-1])
        bare.append(first)
        ext.append(second)
    return {"bare IPython start": statistics.median(bare), "load_ext": statistics.median(ext)}


def bench_features(repo: Path) -> list[dict]:
    from bench_features import run_feature_benchmark

    from jupyter_mlplat.settings import MlplatSettings, reset_settings

    reset_settings(
        MlplatSettings(home=tempfile.mkdtemp(prefix="mlplat-bench-"), feature_repo=str(repo))
    )
    shell = _shell()

    def via_magic(refs, entities):
        shell.user_ns["bench_entities"] = entities
        ref_text = refs if isinstance(refs, str) else ",".join(refs)
        return shell.run_line_magic("mlplat", f"features {ref_text} --entities bench_entities")

    return run_feature_benchmark(repo, fetch=via_magic)


def main() -> int:
    from jupyter_mlplat.embedded import free_port, start_mlflow_server, stop_process

    print("== %load_ext jupyter_mlplat (fresh processes, median of 5)")
    load = bench_load_ext()
    print(f"bare IPython start   {load['bare IPython start']:.3f} s")
    print(f"load_ext on top      {load['load_ext']:.3f} s   (target < 0.5 s)")

    work = Path(tempfile.mkdtemp(prefix="mlplat-bench-"))
    port = free_port()
    server = start_mlflow_server(
        f"sqlite:///{work / 'mlflow.db'}",
        work / "artifacts",
        "127.0.0.1",
        port,
        work / "mlflow.log",
    )
    try:
        print(f"\n== {N_METRICS} metrics against a real mlflow server (median)")
        metrics = bench_metrics(f"http://127.0.0.1:{port}")
    finally:
        stop_process(server)
    for name, seconds in metrics.items():
        print(f"{name:<22} {seconds * 1000:9.1f} ms")
    for ours in ("mlplat.log loop", "%mlplat log loop"):
        speedup = metrics["raw log_metric loop"] / metrics[ours]
        overhead = metrics[ours] / metrics["raw log_batch"]
        print(
            f"{ours:<22} {speedup:6.1f}x faster than log_metric loop (target >= 10x); "
            f"{overhead:.2f}x raw log_batch (target <= 1.2x)"
        )

    dispatch = ipython_dispatch_seconds(_shell())
    print(
        f"(IPython's own dispatch of a no-op line magic: {dispatch * 1e6:.1f} us per call, "
        f"{dispatch * N_METRICS * 1000:.1f} ms per {N_METRICS} calls; part of every %magic)"
    )

    print("\n== online features via %mlplat features vs Feast get_online_features")
    from jupyter_mlplat.features import create_demo_repo

    repo = create_demo_repo(work / "feature_repo")
    from bench_features import run_feature_benchmark

    print("entities  via       ours ms   raw ms   ratio  (target <= 1.1)")
    rows = [
        ("mlplat.get_features", run_feature_benchmark(repo)),
        ("%mlplat features", bench_features(repo)),
    ]
    for via, results in rows:
        for row in results:
            print(
                f"{row['entities']:>8}  {via:<20} {row['ours_ms']:8.3f} {row['raw_ms']:8.3f} "
                f"{row['ratio']:7.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
