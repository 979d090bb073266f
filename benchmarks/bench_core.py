"""Platform-core benchmarks: what the declared-endpoint client and idempotency keys cost.

Run with ``.venv/bin/python benchmarks/bench_core.py``. Each figure is compared with the
raw equivalent measured in the same run:

* in-process: ``PlatformClient.me()`` (signature binding, request validation,
  ``Platform.call``) vs building the same answer directly;
* HTTP: ``PlatformClient.health()`` against the real platform service process vs a raw
  ``urllib`` GET of the same URL (target: at most 1.2x);
* idempotency: recording a key and its answer (``begin`` + ``finish``, two SQLite
  transactions) vs a raw SQLAlchemy insert + update of the same row shape.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]


def median_us(fn, repeats: int) -> float:
    from bench_foundation import _median_time

    return _median_time(fn, repeats) * 1e6


def bench_inprocess(tmp: Path) -> None:
    from jupyter_mlplat.application.core import describe_me
    from jupyter_mlplat.client import PlatformClient
    from jupyter_mlplat.identity import current_identity
    from jupyter_mlplat.settings import MlplatSettings

    settings = MlplatSettings(home=str(tmp / "home"), user="bench", teams=["churn"])
    client = PlatformClient(settings, transport="inprocess")
    client.me()
    ours = median_us(client.me, 5000)
    raw = median_us(lambda: describe_me(current_identity(settings)), 5000)
    print(f"in-process me(): client {ours:.1f} µs vs direct {raw:.1f} µs "
          f"(+{ours - raw:.1f} µs of binding, validation and dispatch)")  # fmt: skip


def bench_http(tmp: Path) -> None:
    from jupyter_mlplat.client import PlatformClient
    from jupyter_mlplat.embedded import free_port, stop_process, wait_http
    from jupyter_mlplat.settings import MlplatSettings

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "MLPLAT_"))}
    env.update(
        JUPYTERHUB_SERVICE_NAME="mlplat",
        JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{port}",
        JUPYTERHUB_SERVICE_PREFIX="/services/mlplat/",
        MLPLAT_HOME=str(tmp / "svc"),
    )
    log = open(tmp / "service.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "jupyter_mlplat.service"], env=env,
                            stdout=log, stderr=log)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/services/mlplat/"
        wait_http(url + "api/health", proc, 60)
        settings = MlplatSettings(client_transport="http", service_url=url)
        client = PlatformClient(settings, token="unused-for-health")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        def raw():
            with opener.open(url + "api/health", timeout=5) as response:
                response.read()

        for _ in range(50):
            client.health()
            raw()
        ours = median_us(client.health, 2000)
        base = median_us(raw, 2000)
        print(f"HTTP GET api/health: client {ours / 1000:.3f} ms vs raw urllib "
              f"{base / 1000:.3f} ms = {ours / base:.2f}x (target <= 1.2x)")  # fmt: skip
    finally:
        stop_process(proc)
        log.close()


def bench_idempotency(tmp: Path) -> None:
    import sqlalchemy as sa

    from jupyter_mlplat.store import Store, idempotency
    from jupyter_mlplat.store.models import IdempotencyKey, utcnow

    store = Store(f"sqlite:///{tmp / 'idem.db'}")
    body = '{"id": 1, "status": "approved"}' * 20

    def ours():
        key = uuid.uuid4().hex
        idempotency.begin(store, key, "alice", "approve", "f" * 64, 86400)
        idempotency.finish(store, key, "alice", 200, body)

    def raw():
        key = uuid.uuid4().hex
        with store.transaction() as session:
            session.add(IdempotencyKey(key=key, caller="alice", endpoint="approve",
                                       fingerprint="f" * 64, created_at=utcnow()))  # fmt: skip
        with store.transaction() as session:
            session.execute(
                sa.update(IdempotencyKey).where(IdempotencyKey.key == key)
                .values(status=200, body=body)
            )  # fmt: skip

    ours_us, raw_us = median_us(ours, 500), median_us(raw, 500)
    print(f"idempotency key per mutating request (SQLite): {ours_us / 1000:.2f} ms vs raw "
          f"insert+update {raw_us / 1000:.2f} ms = {ours_us / raw_us:.2f}x")  # fmt: skip
    store.dispose()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mlplat-bench-core-") as tmp:
        tmp = Path(tmp)
        bench_inprocess(tmp)
        bench_http(tmp)
        bench_idempotency(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
