"""Overhead of jupyter-mlplat's online feature retrieval over raw Feast.

Creates the churn demo repo in a temporary folder (or uses ``--repo``), then for 1, 100 and
1,000 entities times, on the same entity DataFrame:

- ours: ``get_features(refs, entities)`` (validation, lineage, ordered DataFrame), or the
  ``fetch`` callable given to :func:`run_feature_benchmark`;
- raw: ``store.get_online_features(features, entity_rows).to_df()``, building
  ``entity_rows`` from the DataFrame the same way we do (column lists); the Feast docs'
  ``to_dict("records")`` rows are timed too, for reference.

Both sides use the same ``FeatureStore`` object (our cached retriever's): Feast 0.67 keeps
one process-wide feature-resolution cache that is cleared whenever a call comes from a
store with a different registry snapshot, so two stores on one repo, called alternately,
each pay ~2 ms extra per call. A ``fetch`` must therefore read the same repo path.

Calls are interleaved (order alternating every repeat) after a warm-up, and the median is
reported. Target: ours / raw <= 1.1. Run: ``python benchmarks/bench_features.py``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TARGET_RATIO = 1.1
SIZES = (1, 100, 1000)
REFS = [
    "customer_stats:tenure_months",
    "customer_stats:monthly_spend",
    "customer_stats:support_tickets",
    "customer_activity:sessions_7d",
    "customer_activity:avg_session_minutes",
    "customer_profile:plan",
]


def _repeats(n: int, scale: float) -> int:
    base = {1: 1000, 100: 150, 1000: 40}.get(n, 40)
    return max(5, int(base * scale))


def _entities(n: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(n)
    return pd.DataFrame({"customer_id": rng.integers(1000, 1200, size=n, dtype=np.int64)})


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / 1e6


def run_feature_benchmark(
    repo_path: str | Path,
    fetch: Callable[[list[str], object], object] | None = None,
    *,
    sizes: tuple[int, ...] = SIZES,
    refs: list[str] | None = None,
    scale: float = 1.0,
    warmup: int = 10,
) -> list[dict]:
    """Median milliseconds of ours vs raw Feast per entity count, with their ratio.

    ``fetch(refs, entities)`` replaces our call (e.g. the ``%mlplat features`` magic path);
    by default it is ``get_features(refs, entities, repo=repo_path)``.
    """
    from jupyter_mlplat.features import get_features, get_retriever

    refs = list(refs or REFS)
    repo = str(Path(repo_path).resolve())
    if fetch is None:

        def fetch(refs_, entities_):
            return get_features(refs_, entities_, repo=repo)

    store = get_retriever(repo).store

    results = []
    for n in sizes:
        times = _measure(store, fetch, refs, _entities(n), _repeats(n, scale), warmup)
        ours_ms = statistics.median(times["ours"])
        raw_ms = statistics.median(times["raw"])
        records_ms = statistics.median(times["raw_records"])
        results.append(
            {
                "entities": n,
                "features": len(refs),
                "repeats": len(times["ours"]),
                "ours_ms": ours_ms,
                "raw_ms": raw_ms,
                "raw_records_ms": records_ms,
                "ratio": ours_ms / raw_ms,
                "ratio_vs_records": ours_ms / records_ms,
                "ok": ours_ms / raw_ms <= TARGET_RATIO,
            }
        )
    return results


def _measure(store, fetch, refs, entities, repeats: int, warmup: int) -> dict[str, list[float]]:
    """Milliseconds per call of each contender, interleaved, order alternating."""
    keys = list(entities.columns)

    def ours():
        return fetch(refs, entities)

    def raw():
        rows = {k: entities[k].tolist() for k in keys}
        return store.get_online_features(features=refs, entity_rows=rows).to_df()

    def raw_records():
        rows = entities.to_dict("records")
        return store.get_online_features(features=refs, entity_rows=rows).to_df()

    order = [("ours", ours), ("raw", raw), ("raw_records", raw_records)]
    for _ in range(warmup):
        for _name, fn in order:
            fn()
    times: dict[str, list[float]] = {name: [] for name, _ in order}
    gc.collect()
    gc.disable()  # collector pauses would land on whichever call triggers them
    try:
        for i in range(repeats):
            for name, fn in order if i % 2 == 0 else order[::-1]:
                times[name].append(_time(fn))
    finally:
        gc.enable()
    return times


def format_table(results: list[dict]) -> str:
    lines = [
        f"{'entities':>8}  {'ours ms':>9}  {'raw ms':>9}  {'ratio':>6}  "
        f"{'raw(records) ms':>15}  {'ratio':>6}  {'repeats':>7}  target<={TARGET_RATIO}",
    ]
    for r in results:
        lines.append(
            f"{r['entities']:>8}  {r['ours_ms']:>9.3f}  {r['raw_ms']:>9.3f}  {r['ratio']:>6.3f}  "
            f"{r['raw_records_ms']:>15.3f}  {r['ratio_vs_records']:>6.3f}  {r['repeats']:>7}  "
            f"{'ok' if r['ok'] else 'OVER'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", help="existing feature repo (default: a fresh demo repo)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the repeat counts")
    args = parser.parse_args(argv)

    from jupyter_mlplat.features import create_demo_repo

    with tempfile.TemporaryDirectory(prefix="mlplat-bench-") as tmp:
        repo = Path(args.repo) if args.repo else create_demo_repo(Path(tmp) / "feature_repo")
        results = run_feature_benchmark(repo, scale=args.scale)
    print(f"Online retrieval of {len(REFS)} features, median of interleaved repeats")
    print("ratio = ours / raw Feast (column entity_rows); second ratio vs to_dict('records')")
    print(format_table(results))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    # Run as a script from a checkout: make the package importable without installing.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
