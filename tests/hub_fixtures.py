"""The real multi-user hub of the shipped hub config, once per test session.

JupyterHub with configurable-http-proxy, the platform service, MLflow and the idle
culler on free loopback ports; alice (churn), bob (fraud) and rita (churn +
reviewer) log in through the real login form with passwords from a users file.
"""

from __future__ import annotations

import re

import pytest
import requests

from jupyter_mlplat.embedded import free_port
from jupyter_mlplat.hub.users import UserRecord, hash_password, save_users
from jupyter_mlplat.resources import hub_config_file
from tests.hub import JupyterHubProcess

__all__ = ["CONFIG", "USERS", "hub_tokens", "login", "platform_hub", "write_home", "xsrf_of"]

# jupyter_mlplat/resources/jupyterhub_config.py (hub_config/ in the checkout links to it)
CONFIG = hub_config_file()
USERS = {
    "alice": ("alice-pw-1", ["team-churn"]),
    "bob": ("bob-pw-2", ["team-fraud"]),
    "rita": ("rita-pw-3", ["team-churn", "mlplat-reviewers"]),
}


def write_home(home, hub: JupyterHubProcess | None, **knobs) -> None:
    """A data dir with the users file and the hub's ports in mlplat_config.py."""
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
    lines = ["c = get_config()  # noqa: F821"]
    lines += [f"c.MlplatHub.{key} = {value!r}" for key, value in knobs.items()]
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


@pytest.fixture(scope="session")
def platform_hub(tmp_path_factory, demo_feature_repo):
    home = tmp_path_factory.mktemp("hub-home")
    hub = JupyterHubProcess(CONFIG, tmp_path_factory.mktemp("hub-run"), env={})
    write_home(home, hub)
    hub.env = {"MLPLAT_HOME": str(home), "MLPLAT_FEATURE_REPO": str(demo_feature_repo)}
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
def hub_tokens(platform_hub):
    return {name: platform_hub.create_user_token(name) for name in USERS}
