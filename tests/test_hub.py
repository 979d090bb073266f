"""The real multi-user hub: hub_config/jupyterhub_config.py in embedded mode.

Fixtures in tests/hub_fixtures.py: one hub per session, users logged in through the form.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hub import REPO_ROOT as REPO
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


async def test_spawned_server_gets_the_profile_and_the_hub_identity(platform_hub, hub_tokens):
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

    run = MlflowClient(f"{platform_hub.url}/services/mlflow").get_run(run_id)
    assert run.data.metrics == {"acc": 0.5}
    assert run.data.tags["mlplat.team"] == "churn"


def test_invalid_profiles_folder_stops_the_hub_naming_file_and_field(tmp_path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    for source in (REPO / "spawner_profiles").iterdir():
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
