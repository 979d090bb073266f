"""Real processes for the test suite: an MLflow tracking server on a loopback port."""

from __future__ import annotations

from pathlib import Path

from jupyter_mlplat.embedded import free_port, start_mlflow_server, stop_process

__all__ = ["MlflowServer", "free_port"]


class MlflowServer:
    """``mlflow server`` on SQLite and a local artifact folder, started on a free port."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self) -> MlflowServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self.proc = start_mlflow_server(
            f"sqlite:///{self.root / 'mlflow.db'}",
            self.root / "artifacts",
            "127.0.0.1",
            self.port,
            self.root / "server.log",
        )
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
