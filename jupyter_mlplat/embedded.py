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
        from .hub.config import MLFLOW_SERVER_ENV

        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        env.update(MLFLOW_SERVER_ENV)
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


def hub_command(config_file: Path) -> list[str]:
    return [_bin("jupyterhub"), "-f", str(config_file)]


def up(
    settings: MlplatSettings,
    *,
    config_file: Path,
    url: str = "http://127.0.0.1:8000",
) -> int:
    """Run JupyterHub (with proxy, platform service, MLflow and culler) until Ctrl-C."""
    from .hub.users import DEMO_USERS, ensure_demo_users

    print(f"mlplat: preparing {settings.home} (demo feature repo at {settings.feature_repo})")
    extra_env = prepare_home(settings)
    hub_dir = Path(settings.home) / "hub"
    logins = ensure_demo_users(hub_dir / "users.yaml", hub_dir / "demo-passwords.txt")
    env = {**os.environ, **extra_env, "MLPLAT_HOME": settings.home, "MLPLAT_MODE": "embedded"}
    proc = subprocess.Popen(hub_command(config_file), env=env, cwd=hub_dir)
    try:
        wait_http(f"{url}/hub/api/", proc, 180)
        print(f"\nmlplat: JupyterHub is up at {url}  (Ctrl-C stops everything)")
        if logins:
            print("mlplat: demo logins (user / password / groups):")
            for name, password in logins.items():
                print(f"  {name:<6} {password:<14} {', '.join(DEMO_USERS.get(name, []))}")
        else:
            print(f"mlplat: users are in {hub_dir / 'users.yaml'}")
        signal.signal(signal.SIGTERM, _interrupt)
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, TimeoutError) as exc:
        print(f"mlplat: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_process(proc, grace=30)
