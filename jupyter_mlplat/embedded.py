"""The embedded platform on one machine: MLflow tracking server + JupyterLab.

``mlplat up`` (and so ``make up``) runs this in the foreground and stops both
processes on Ctrl-C. The hub issue replaces the bare Lab with JupyterHub.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .settings import MlplatSettings

_KERNEL_CONFIG = """\
# Written by `mlplat up`: every kernel of the embedded Lab loads the %mlplat magics.
c.InteractiveShellApp.extensions = ["jupyter_mlplat"]
"""


def _bin(name: str) -> str:
    local = Path(sys.executable).with_name(name)
    return str(local) if local.exists() else name


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen | None, timeout: float) -> None:
    """Wait until ``url`` answers, failing early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url} did not come up: the process exited with {proc.returncode}.")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s.")


def start_mlflow_server(
    backend_uri: str, artifacts: Path, host: str, port: int, log_path: Path, timeout: float = 180
) -> subprocess.Popen:
    """``mlflow server`` with one worker, started and waited for; its output goes to ``log_path``."""
    command = [
        _bin("mlflow"), "server",
        "--backend-store-uri", backend_uri,
        "--artifacts-destination", str(artifacts),
        "--host", host, "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_http(f"http://{host}:{port}/health", proc, timeout)
    except BaseException:
        proc.kill()
        raise
    return proc


def stop_process(proc: subprocess.Popen, grace: float = 15) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _interrupt(*_args) -> None:
    raise KeyboardInterrupt


def prepare_home(settings: MlplatSettings) -> dict[str, str]:
    """Create the data dir, the demo feature repo and the kernel config; the Lab's env."""
    home = Path(settings.home)
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    from .features import create_demo_repo

    create_demo_repo(settings.feature_repo)
    ipython_dir = home / "ipython"
    profile = ipython_dir / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.py").write_text(_KERNEL_CONFIG)
    return {"IPYTHONDIR": str(ipython_dir)}


def lab_command(host: str, port: int, notebook_dir: str) -> list[str]:
    command = [
        _bin("jupyter"), "lab", "--no-browser",
        f"--ServerApp.ip={host}", f"--ServerApp.port={port}",
        f"--ServerApp.root_dir={notebook_dir}",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    return command


def up(
    settings: MlplatSettings,
    *,
    host: str = "127.0.0.1",
    mlflow_port: int = 5000,
    lab_port: int = 8888,
    notebook_dir: str = ".",
    teams: str = "data-science",
) -> int:
    print(f"mlplat: preparing {settings.home} (demo feature repo at {settings.feature_repo})")
    extra_env = prepare_home(settings)
    tracking_uri = f"http://{host}:{mlflow_port}"
    logs = Path(settings.home) / "logs"
    logs.mkdir(exist_ok=True)
    procs: list[subprocess.Popen] = []
    try:
        home = Path(settings.home)
        print(f"mlplat: starting MLflow at {tracking_uri} (log: {logs / 'mlflow.log'})")
        procs.append(
            start_mlflow_server(
                f"sqlite:///{home / 'mlflow-server.db'}",
                home / "mlartifacts",
                host,
                mlflow_port,
                logs / "mlflow.log",
            )
        )
        env = {
            **os.environ,
            **extra_env,
            "MLPLAT_HOME": settings.home,
            "MLPLAT_TRACKING_URI": tracking_uri,
            "MLPLAT_FEATURE_REPO": settings.feature_repo,
            # Teams the user set explicitly win over the demo default.
            "MLPLAT_TEAMS": ",".join(settings.teams)
            if settings.teams_source == "MLPLAT_TEAMS"
            else teams,
        }
        procs.append(subprocess.Popen(lab_command(host, lab_port, notebook_dir), env=env))
        print(
            f"mlplat: MLflow UI {tracking_uri}; JupyterLab is starting on http://{host}:{lab_port} "
            "(it prints its login URL with a token below). Ctrl-C stops both."
        )
        signal.signal(signal.SIGTERM, _interrupt)
        while all(proc.poll() is None for proc in procs):
            time.sleep(1)
        failed = [proc for proc in procs if proc.poll() not in (None, 0)]
        return 1 if failed else 0
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, TimeoutError) as exc:
        print(f"mlplat: {exc} See the logs in {logs}.")
        return 1
    finally:
        # A second Ctrl-C or SIGTERM must not abandon the children half-stopped.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for proc in reversed(procs):
            stop_process(proc)
