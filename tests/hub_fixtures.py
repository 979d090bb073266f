"""The real multi-user hub of the shipped hub config, once per test session.

JupyterHub with configurable-http-proxy, the platform service, MLflow and the idle
culler on free loopback ports; alice (churn), bob (fraud) and rita (churn +
reviewer) log in through the real login form with passwords from a users file.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests

from jupyter_mlplat.embedded import free_port
from jupyter_mlplat.hub.accounts import unreachable_part
from jupyter_mlplat.hub.spawner import running_as_root
from jupyter_mlplat.hub.users import UserRecord, hash_password, save_users
from jupyter_mlplat.resources import hub_config_file
from tests.hub import JupyterHubProcess

__all__ = [
    "CONFIG", "USERS", "hub_tokens", "login", "platform_hub", "spawner_knobs", "isolation_accounts", "isolation_root",
    "running_hub", "user_python", "write_home", "xsrf_of",
]  # fmt: skip

# jupyter_mlplat/resources/jupyterhub_config.py (hub_config/ in the checkout links to it)
CONFIG = hub_config_file()
USERS = {
    "alice": ("alice-pw-1", ["team-churn"]),
    "bob": ("bob-pw-2", ["team-fraud"]),
    "rita": ("rita-pw-3", ["team-churn", "mlplat-reviewers"]),
}


# Test hubs running as root give users accounts with this prefix (never a real user's
# jupyter-alice); the session removes the ones it made, and their homes.
TEST_ACCOUNT_PREFIX = "mlplat-test-"
_ROOT: list[Path] = []


def isolation_root() -> Path:
    """One folder per session that other accounts can traverse but not list (0711):
    pytest's own temp dirs are 0700, and test homes must not go into /home."""
    if not _ROOT:
        _ROOT.append(Path(tempfile.mkdtemp(prefix="mlplat-test-accounts-")))
        os.chmod(_ROOT[0], 0o711)
    return _ROOT[0]


def user_python() -> str:
    """A Python of this venv that other accounts can run: this one, or (when it lives in a
    closed folder such as /root/.pyenv) the system's interpreter of the same version with
    this venv's packages, as a venv of symlinks."""
    if unreachable_part(sys.executable, 65534, 65534) is None:
        return sys.executable
    shim = isolation_root() / "python"
    python = shim / "bin" / "python"
    if python.exists():
        return str(python)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    base = shutil.which(version, path="/usr/local/bin:/usr/bin:/bin")
    if base is None or unreachable_part(base, 65534, 65534):
        raise RuntimeError(f"No {version} that other accounts can run; install one in /usr/bin.")
    python.parent.mkdir(parents=True)
    python.symlink_to(base)
    for name in ("lib", "lib64", "include", "etc", "share"):
        if (Path(sys.prefix) / name).exists():
            (shim / name).symlink_to(Path(sys.prefix) / name)
    (shim / "pyvenv.cfg").write_text(f"home = {Path(base).parent}\n")
    for path in (shim, python.parent, shim / "pyvenv.cfg"):
        os.chmod(path, 0o755)
    return str(python)


def spawner_knobs() -> dict:
    """Spawner knobs of a test hub: when it runs as root, homes of its own in the session's
    folder, the test account prefix and a Python the accounts can run."""
    if not running_as_root():
        return {}
    homes = Path(tempfile.mkdtemp(prefix="homes-", dir=isolation_root()))
    os.chmod(homes, 0o711)
    return {
        "account_prefix": TEST_ACCOUNT_PREFIX,
        "home_dir_template": f"{homes}/{{username}}",
        "python": user_python(),
    }


@pytest.fixture(scope="session", autouse=True)
def isolation_accounts():
    """At the end of the session: remove the test accounts made during it and their homes."""
    before = {entry.pw_name for entry in pwd.getpwall()}
    yield TEST_ACCOUNT_PREFIX
    for entry in pwd.getpwall():
        if entry.pw_name.startswith(TEST_ACCOUNT_PREFIX) and entry.pw_name not in before:
            subprocess.run(["userdel", entry.pw_name], capture_output=True)
    if _ROOT:
        shutil.rmtree(_ROOT.pop(), ignore_errors=True)


def spawner_config_lines(knobs: dict) -> list[str]:
    return [f"c.MlplatLocalSpawner.{key} = {value!r}" for key, value in knobs.items()]


def write_home(home, hub: JupyterHubProcess | None, spawner: dict | None = None, **knobs) -> None:
    """A data dir with the users file, the hub's ports in mlplat_config.py and, for a hub,
    the spawner knobs of :func:`spawner_knobs` (or ``spawner``)."""
    (home / "hub").mkdir(parents=True, exist_ok=True)
    records = {
        # Few iterations: the tests log in often and the hash strength is not under test.
        name: UserRecord(name, tuple(groups), hash_password(password, iterations=1000))
        for name, (password, groups) in USERS.items()
    }
    save_users(home / "hub" / "users.yaml", records)
    if hub is not None:
        knobs = {
            "port": hub.port,
            "hub_port": hub.hub_port,
            "proxy_api_port": hub.proxy_api_port,
            "service_port": free_port(),
            "mlflow_port": free_port(),
            **knobs,
        }
    if spawner is None:
        spawner = spawner_knobs() if hub is not None else {}
    lines = ["c = get_config()  # noqa: F821"]
    lines += [f"c.MlplatHub.{key} = {value!r}" for key, value in knobs.items()]
    lines += spawner_config_lines(spawner)
    if hub is not None and running_as_root():
        # Model servers run as test accounts too, in a folder those accounts can reach.
        served = Path(tempfile.mkdtemp(prefix="serving-", dir=isolation_root()))
        os.chmod(served, 0o711)
        jobs = Path(tempfile.mkdtemp(prefix="jobs-work-", dir=isolation_root()))
        os.chmod(jobs, 0o711)
        lines += [
            f"c.MlplatSettings.serving_account_prefix = {TEST_ACCOUNT_PREFIX + 'serve-'!r}",
            f"c.MlplatSettings.serving_dir = {str(served)!r}",
            # Jobs run as the users' test accounts, in a folder those accounts can reach.
            f"c.MlplatSettings.jobs_work_dir = {str(jobs)!r}",
        ]
    (home / "mlplat_config.py").write_text("\n".join(lines) + "\n")


def xsrf_of(session: requests.Session, page: requests.Response) -> str:
    return session.cookies.get("_xsrf") or re.search(r'name="_xsrf" value="([^"]+)"', page.text)[1]


def login(hub: JupyterHubProcess, user: str, password: str) -> requests.Response:
    """Log in through the hub's real login form (with its XSRF token), as a browser does.

    The response's ``session`` attribute is the logged-in browser session.
    """
    session = requests.Session()
    session.trust_env = False
    page = session.get(f"{hub.url}/hub/login", timeout=30)
    response = session.post(
        f"{hub.url}/hub/login?next=",
        data={"username": user, "password": password, "_xsrf": xsrf_of(session, page)},
        allow_redirects=False,
        timeout=30,
    )
    response.session = session
    return response


@contextlib.contextmanager
def running_hub(home, workdir, feature_repo, *, settings: str = ""):
    """The shipped hub on ``home`` (``settings``: extra mlplat_config.py lines), started,
    with alice, bob and rita logged in once and both services answering; stopped after."""
    hub = JupyterHubProcess(CONFIG, workdir, env={})
    write_home(home, hub)
    if settings:
        with (home / "mlplat_config.py").open("a") as config:
            config.write(settings)
    hub.env = {"MLPLAT_HOME": str(home), "MLPLAT_FEATURE_REPO": str(feature_repo)}
    hub.start(timeout=120)
    try:
        for name, (password, _) in USERS.items():
            assert login(hub, name, password).status_code == 302, hub.log_tail()
        hub.wait_for("/services/mlflow/health", timeout=120)
        hub.wait_for("/services/mlplat/api/health", timeout=60)
        yield hub
    finally:
        hub.stop()


@pytest.fixture(scope="session")
def platform_hub(tmp_path_factory, demo_feature_repo):
    home, workdir = tmp_path_factory.mktemp("hub-home"), tmp_path_factory.mktemp("hub-run")
    with running_hub(home, workdir, demo_feature_repo) as hub:
        yield hub


@pytest.fixture(scope="session")
def hub_tokens(platform_hub):
    return {name: platform_hub.create_user_token(name) for name in USERS}
