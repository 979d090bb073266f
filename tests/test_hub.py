"""The real multi-user hub: the shipped hub config in embedded mode.

Fixtures in tests/hub_fixtures.py: one hub per session, users logged in through the form.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_mlplat.resources import default_profiles_dir
from tests.hub_fixtures import CONFIG, USERS, login, write_home


def test_login_sets_groups_from_the_users_file(platform_hub):
    groups = {
        name: sorted(platform_hub.api("GET", f"/users/{name}").json()["groups"]) for name in USERS
    }
    assert groups == {name: sorted(g) for name, (_, g) in USERS.items()}


def test_wrong_password_and_unknown_user_are_refused(platform_hub):
    assert login(platform_hub, "alice", "wrong").status_code == 403
    assert login(platform_hub, "mallory", "anything").status_code == 403
    assert platform_hub.api("GET", "/users/mallory").status_code == 404


def test_generated_secrets_are_owner_only(platform_hub):
    home = platform_hub.env["MLPLAT_HOME"]
    for name in ("proxy_token", "service-mlplat.token", "users.yaml"):
        mode = os.stat(Path(home) / "hub" / name).st_mode & 0o777
        assert mode == 0o600, (name, oct(mode))
    assert os.stat(Path(home) / "hub").st_mode & 0o077 == 0


@pytest.mark.parametrize("user", list(USERS))
def test_service_me_reports_each_users_teams(platform_hub, hub_tokens, user):
    response = platform_hub.request(
        "GET", f"{platform_hub.url}/services/mlplat/api/me", token=hub_tokens[user]
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"] == user
    assert sorted(body["teams"]) == sorted(g[5:] for g in USERS[user][1] if g.startswith("team-"))
    assert ("reviewer" in body["roles"]) == (user == "rita")


@pytest.mark.parametrize(
    ("options", "status", "fragment"),
    [
        ({"profile": "fraud-cpu"}, 403, "fraud-cpu"),
        ({"profile": "no-such-profile"}, 400, "churn-cpu"),
        ({"profile": "Bad Slug!"}, 400, "churn-cpu"),
        ({"profile": "churn-gpu", "gpu": "4x-t4"}, 400, "1x-t4"),
    ],
)
def test_bad_spawn_requests_are_4xx_with_the_allowed_choices(
    platform_hub, hub_tokens, options, status, fragment
):
    response = platform_hub.request(
        "POST",
        f"{platform_hub.api_url}/users/alice/server",
        token=hub_tokens["alice"],
        json=options,
    )
    assert response.status_code == status, response.text
    assert fragment in response.json()["message"]
    assert not platform_hub.api("GET", "/users/alice").json()["servers"]


async def test_spawned_server_gets_the_profile_and_the_hub_identity(
    platform_hub, hub_tokens, monkeypatch
):
    response = platform_hub.request(
        "POST",
        f"{platform_hub.api_url}/users/alice/server",
        token=hub_tokens["alice"],
        json={"profile": "churn-gpu", "gpu": "1x-t4"},
    )
    assert response.status_code in (201, 202), response.text
    platform_hub.spawn("alice")  # waits for ready
    try:
        out = await platform_hub.execute(
            "alice",
            "import os, jupyter_mlplat as m\n"
            "print(os.environ['MLPLAT_PROFILE'], repr(os.environ['CUDA_VISIBLE_DEVICES']))\n"
            "s = m.status()\n"
            "print('status', s.user, ','.join(s.teams), s.teams_source)\n"
            "m.set_experiment('hub-e2e')\n"
            "with m.run('from-hub', params={'p': 1}, autolog=False) as r:\n"
            "    m.log(acc=0.5)\n"
            "print('RUNID=' + r.run_id)\n",
            token=hub_tokens["alice"],
            timeout=120,
        )
    finally:
        platform_hub.stop_server("alice")
    assert "churn-gpu '0'" in out
    assert "status alice churn JupyterHub groups" in out
    run_id = re.search(r"RUNID=(\w+)", out)[1]
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", hub_tokens["alice"])  # MLflow wants a hub token
    run = MlflowClient(f"{platform_hub.url}/services/mlflow").get_run(run_id)
    assert run.data.metrics == {"acc": 0.5}
    assert run.data.tags["mlplat.team"] == "churn"


def test_invalid_profiles_folder_stops_the_hub_naming_file_and_field(tmp_path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    for source in default_profiles_dir().iterdir():
        (profiles / source.name).write_text(source.read_text())
    broken = profiles / "churn.yaml"
    broken.write_text(broken.read_text().replace("max_count: 1", "max_count: -1", 1))
    home = tmp_path / "home"
    write_home(home, None, profiles_dir=str(profiles))
    done = subprocess.run(
        [
            str(__import__("pathlib").Path(sys.executable).with_name("jupyterhub")),
            "-f",
            str(CONFIG),
        ],
        cwd=tmp_path,
        env={**os.environ, "MLPLAT_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "churn.yaml" in done.stderr and "max_count" in done.stderr, done.stderr[-2000:]


def test_spawn_form_shows_only_own_profiles_with_gpu_choices_and_starts_the_choice(platform_hub):
    from tests.hub_fixtures import xsrf_of

    session = login(platform_hub, "alice", USERS["alice"][0]).session
    page = session.get(f"{platform_hub.url}/hub/spawn", timeout=30)
    assert page.status_code == 200
    for slug in ("churn-cpu", "churn-gpu", "shared-cpu"):
        assert f'value="{slug}"' in page.text
    for slug in ("fraud-cpu", "vision-gpu"):
        assert slug not in page.text
    assert 'name="gpu-churn-gpu"' in page.text and 'value="1x-t4"' in page.text
    assert "not enforced" in page.text
    response = session.post(
        f"{platform_hub.url}/hub/spawn",
        data={"profile": "churn-gpu", "gpu-churn-gpu": "1x-t4", "_xsrf": xsrf_of(session, page)},
        allow_redirects=False,
        timeout=60,
    )
    assert response.status_code in (302, 303), response.text[:500]
    try:
        server = platform_hub.spawn("alice")  # waits until ready
        assert server["user_options"] == {"profile": "churn-gpu", "gpu": "1x-t4"}
    finally:
        platform_hub.stop_server("alice")


def test_idle_culler_and_services_run_under_the_hub(platform_hub):
    services = platform_hub.api("GET", "/services").json()
    assert {"mlplat", "mlflow", "idle-culler"} <= set(services)
    culler = services["idle-culler"]["command"]
    assert "--timeout=3600" in culler and "--cull-every=600" in culler
    health = platform_hub.request("GET", f"{platform_hub.url}/services/mlplat/api/health")
    assert health.status_code == 200


def test_kubernetes_mode_config_filters_profiles_per_user(tmp_path):
    """The Kubernetes branch of the hub config, built as data (no cluster here)."""
    from types import SimpleNamespace

    from traitlets.config import Config

    from jupyter_mlplat.hub.config import configure
    from jupyter_mlplat.settings import MlplatSettings

    c = Config()
    configure(c, MlplatSettings(home=str(tmp_path / "home"), mode="kubernetes"))
    assert c.JupyterHub.spawner_class == "kubespawner.KubeSpawner"
    assert c.JupyterHub.authenticator_class == "generic-oauth"
    assert c.GenericOAuthenticator.manage_groups is True
    assert "team-churn" in c.GenericOAuthenticator.allowed_groups
    spawner = SimpleNamespace(user=SimpleNamespace(groups=[SimpleNamespace(name="team-fraud")]))
    slugs = [p["slug"] for p in c.KubeSpawner.profile_list(spawner)]
    assert slugs and all(s.startswith(("fraud-", "shared-")) for s in slugs)
    assert c.KubeSpawner.environment["MLPLAT_SERVICE_URL"].endswith("/services/mlplat")


def _service_pid(hub_pid: int) -> int:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == hub_pid and b"jupyter_mlplat.service" in cmdline:
            return int(proc.name)
    raise LookupError("the platform service process was not found")


def test_clients_ride_out_a_crash_of_the_platform_service(platform_hub, hub_tokens):
    """kill -9 the managed service: the hub restarts it and a client's call still succeeds."""
    import signal
    import time

    from jupyter_mlplat.client import PlatformClient
    from jupyter_mlplat.settings import MlplatSettings

    settings = MlplatSettings(
        client_transport="http", service_url=f"{platform_hub.url}/services/mlplat/"
    )
    client = PlatformClient(settings, token=hub_tokens["bob"])  # the default retry budget
    assert client.me().teams == ["fraud"]
    os.kill(_service_pid(platform_hub.proc.pid), signal.SIGKILL)
    started = time.monotonic()
    me = client.me()  # 503 from the proxy / refused until the hub restarts the service
    assert me.user == "bob" and me.teams == ["fraud"]
    assert time.monotonic() - started < settings.client_retry_seconds
