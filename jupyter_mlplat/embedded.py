"""The embedded platform on one machine: JupyterHub with the platform service, MLflow
and the idle culler.

``mlplat up`` (and so ``make up``) runs the hub in the foreground: it prints the URL and
the demo logins, sends the hub's own log to ``$MLPLAT_HOME/hub/jupyterhub.log`` and
stops everything on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .ports import free_port  # noqa: F401 (re-exported: callers import it from here)
from .settings import MlplatSettings


def _bin(name: str) -> str:
    local = Path(sys.executable).with_name(name)
    return str(local) if local.exists() else name


def wait_http(url: str, proc: subprocess.Popen | None, timeout: float) -> None:
    """Wait until ``url`` answers, failing early if ``proc`` exits (never through a proxy)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url} did not come up: the process exited with {proc.returncode}.")
        try:
            with opener.open(url, timeout=2):
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
    from .hub.home import KERNEL_CONFIG

    create_demo_repo(settings.feature_repo)
    ipython_dir = home / "ipython"
    profile = ipython_dir / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.py").write_text(KERNEL_CONFIG)
    return {"IPYTHONDIR": str(ipython_dir)}


def hub_command(config_file: Path) -> list[str]:
    return [_bin("jupyterhub"), "-f", str(config_file)]


def _hub_child_setup() -> None:  # in the hub process, before exec
    from .hub.supervise import set_parent_death_signal

    set_parent_death_signal(signal.SIGTERM)  # `mlplat up` killed -> the hub stops too
    # Started in the background by a shell, we inherit an ignored SIGINT; the hub and its
    # services must not (JupyterHub stops services with SIGINT).
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _new_log_lines(log_path: Path, offset: int, limit: int = 15) -> list[str]:
    """What the hub wrote to its log since ``offset``: its own one-line refusals
    (``jupyter-mlplat: ...``) if any, else the last ``limit`` lines."""
    try:
        with open(log_path, "rb") as log:
            log.seek(offset)
            lines = log.read().decode(errors="replace").splitlines()
    except OSError:
        return []
    ours = [line for line in lines if line.startswith("jupyter-mlplat:")]
    return ours or lines[-limit:]


def up(
    settings: MlplatSettings,
    *,
    config_file: Path | str | None = None,
    url: str | None = None,
    stop_timeout: float = 60,
) -> int:
    """Run JupyterHub (with proxy, platform service, MLflow and culler) until Ctrl-C.

    ``config_file`` defaults to the hub config shipped in the package; ``url`` to the
    public URL of the ``c.MlplatHub`` knobs (``ip``, ``port``) in
    ``$MLPLAT_HOME/mlplat_config.py``, the same ones the hub config reads. The hub's own
    log goes to ``$MLPLAT_HOME/hub/jupyterhub.log``; the terminal gets a few lines.
    """
    from .hub.accounts import isolation_notice
    from .hub.config import hub_knobs, public_url
    from .hub.secrets import ensure_private_dir
    from .hub.spawner import running_as_root
    from .hub.users import DEMO_USERS, ensure_demo_users
    from .resources import hub_config_file

    config_file = Path(config_file).expanduser().resolve() if config_file else hub_config_file()
    url = (url or public_url(hub_knobs(settings))).rstrip("/")
    # Nothing the platform writes (secrets, databases, logs) is readable by other accounts.
    os.umask(0o077)
    print(f"mlplat: preparing {settings.home} (demo feature repo at {settings.feature_repo})")
    prefix = settings.config.MlplatLocalSpawner.get("account_prefix", "jupyter-")
    print(f"mlplat: {isolation_notice(running_as_root(), prefix)}")
    extra_env = prepare_home(settings)
    hub_dir = ensure_private_dir(Path(settings.home) / "hub")
    logins = ensure_demo_users(hub_dir / "users.yaml", hub_dir / "demo-passwords.txt")
    env = {**os.environ, **extra_env, "MLPLAT_HOME": settings.home, "MLPLAT_MODE": "embedded"}
    log_path = hub_dir / "jupyterhub.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    print(f"mlplat: starting JupyterHub; its log is {log_path}")
    with open(log_path, "ab") as log:
        # Its own session: a Ctrl-C in the terminal reaches only us, and we stop the hub
        # once (two signals make JupyterHub run its shutdown twice, with tracebacks).
        proc = subprocess.Popen(
            hub_command(config_file),
            env=env,
            cwd=hub_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_hub_child_setup,
        )
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        wait_http(f"{url}/hub/health", proc, 180)
        print(f"mlplat: JupyterHub is up at {url}  (Ctrl-C stops everything)")
        if logins:
            print("mlplat: demo logins (user / password / groups):")
            for name, password in logins.items():
                print(f"  {name:<6} {password:<14} {', '.join(DEMO_USERS.get(name, []))}")
        else:
            print(
                f"mlplat: users are in {hub_dir / 'users.yaml'} "
                "(`mlplat hub add-user NAME --group team-churn` adds one)"
            )
        code = proc.wait()
        print(f"mlplat: JupyterHub exited with status {code}; see {log_path}")
        return code if code >= 0 else 128 - code
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, TimeoutError) as exc:
        print(f"mlplat: {exc}")
        for line in _new_log_lines(log_path, offset):
            print(f"  {line}")
        print(f"mlplat: the whole log is {log_path}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if proc.poll() is None:
            print("mlplat: stopping JupyterHub, its servers and services...")
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(stop_timeout)
                print("mlplat: stopped.")
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                print(f"mlplat: JupyterHub did not stop within {stop_timeout:.0f} s and was "
                      f"killed; see {log_path}")  # fmt: skip
        for sig, handler in previous.items():
            signal.signal(sig, handler)
