"""Per-user isolation in the embedded mode.

With the hub running as root (the session hub), each user's kernel runs as an OS account
of its own and cannot read the platform's data dir (secrets, databases, artifacts) or
another user's home; it still has its own home and its own copy of the feature repo.
Without root, `mlplat up` and the hub's pages say plainly that the platform is for one
person (checked by running the config and `mlplat up` as the account ``nobody``).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_mlplat.hub.accounts import account_name
from jupyter_mlplat.hub.spawner import running_as_root
from tests.hub import path_with_proxy
from tests.hub_fixtures import TEST_ACCOUNT_PREFIX, isolation_root, user_python

needs_root = pytest.mark.skipif(not running_as_root(), reason="switching users needs root")

WHO = """
import json, os, pwd
print(json.dumps({"uid": os.getuid(), "gid": os.getgid(), "home": os.environ["HOME"],
                  "account": pwd.getpwuid(os.getuid()).pw_name, "cwd": os.getcwd(),
                  "repo": os.environ.get("MLPLAT_FEATURE_REPO"),
                  "ipythondir": os.environ.get("IPYTHONDIR")}))
"""

PROBE = """
import json, os
results = {}
for label, path in json.loads(%r).items():
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").read(1)
        results[label] = "read"
    except PermissionError:
        results[label] = "PermissionError"
    except OSError as exc:
        results[label] = type(exc).__name__
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def isolated(platform_hub):
    """alice's and bob's servers running; what each kernel says about itself."""
    platform_hub.spawn("alice")
    platform_hub.spawn("bob")
    yield platform_hub
    platform_hub.stop_server("alice")
    platform_hub.stop_server("bob")


async def _who(hub, user) -> dict:
    return json.loads((await hub.execute(user, WHO)).strip().splitlines()[-1])


@needs_root
async def test_each_users_kernel_runs_as_an_os_account_of_its_own(isolated):
    alice, bob = await _who(isolated, "alice"), await _who(isolated, "bob")
    assert alice["account"] == f"{TEST_ACCOUNT_PREFIX}alice"
    assert bob["account"] == f"{TEST_ACCOUNT_PREFIX}bob"
    assert os.getuid() == 0 and alice["uid"] != 0 and bob["uid"] != 0
    assert alice["uid"] != bob["uid"] and alice["gid"] != bob["gid"]
    assert alice["cwd"] == alice["home"] != bob["home"]
    info = os.stat(alice["home"])  # private home, owned by the account
    assert (info.st_uid, info.st_mode & 0o777) == (alice["uid"], 0o700)
    assert alice["ipythondir"] is None  # the kernel config is in the user's own home


@needs_root
async def test_a_kernel_cannot_read_the_platforms_data_dir_or_another_users_home(isolated):
    data = Path(isolated.env["MLPLAT_HOME"])
    assert os.stat(data).st_mode & 0o777 == 0o700
    made_by_platform = {
        "proxy token": data / "hub" / "proxy_token",
        "mlflow-server.db": data / "mlflow-server.db",
    }
    for label, path in made_by_platform.items():
        assert path.is_file(), label
    # Made on first use: files not there yet stand in, world-readable on purpose (only
    # the closed data dir keeps them from users).
    stand_ins = {
        "platform.db": data / "platform.db",
        "demo-passwords.txt": data / "hub" / "demo-passwords.txt",
        "audit.key": data / "audit.key",
        "artifact": data / "mlartifacts" / "1" / "model.pkl",
    }
    for label, path in stand_ins.items():
        if path.exists():
            made_by_platform[label] = path
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("secret\n")
            path.chmod(0o644)
    for label, path in made_by_platform.items():
        # The hub and its services run with umask 077: nothing of theirs is world-readable.
        assert path.stat().st_mode & 0o077 == 0, (label, oct(path.stat().st_mode))
    bob = await _who(isolated, "bob")
    bob_file = Path(bob["home"]) / "bob-private.txt"
    await isolated.execute("bob", f"open({str(bob_file)!r}, 'w').write('bob only')")
    targets = {**made_by_platform, **stand_ins, "data dir": data}
    targets["users file"] = data / "hub" / "users.yaml"
    targets.update({"bob's home": Path(bob["home"]), "bob's file": bob_file})
    probe = PROBE % json.dumps({label: str(path) for label, path in targets.items()})
    results = json.loads((await isolated.execute("alice", probe)).strip().splitlines()[-1])
    assert results == {label: "PermissionError" for label in targets}


@needs_root
async def test_a_kernel_uses_its_own_home_and_its_copy_of_the_feature_repo(isolated):
    alice = await _who(isolated, "alice")
    home = Path(alice["home"])
    assert alice["repo"] == str(home / "feature_repo")
    copy = home / "feature_repo"
    assert {p.stat().st_uid for p in [copy, *copy.rglob("*")]} == {alice["uid"]}
    # Everything the spawner put into the home belongs to alice.
    assert {p.stat().st_uid for p in home.rglob("*")} == {alice["uid"]}
    out = await isolated.execute(
        "alice",
        """
import os, pandas as pd
from jupyter_mlplat.features import get_features
open(os.path.expanduser("~/mine.txt"), "w").write("ok")
print(open(os.path.expanduser("~/mine.txt")).read())
result = get_features("customer_stats:tenure_months", pd.DataFrame({"customer_id": [1010]}),
                      repo=os.environ["MLPLAT_FEATURE_REPO"])
print(result.lineage["repo"], len(result.df), result.df["tenure_months"].notna().all())
print("jupyter_mlplat" in get_ipython().extension_manager.loaded)
""",
    )
    lines = out.strip().splitlines()
    assert lines[0] == "ok"
    assert lines[1] == f"{copy} 1 True"
    assert lines[2] == "True"  # ~/.ipython/profile_default/ipython_kernel_config.py


def test_account_names_are_prefixed_and_safe():
    assert account_name("jupyter-", "root") == "jupyter-root"
    for bad in ("../etc", "Alice", "a b", "x" * 40, "-rf", "é"):
        with pytest.raises(Exception, match="not a safe account name"):
            account_name("" if bad == "-rf" else "jupyter-", bad)


NOT_ROOT_CONFIG = """
import json, sys
from traitlets.config import Config
from jupyter_mlplat.hub.config import configure
from jupyter_mlplat.settings import MlplatSettings
c = Config()
configure(c, MlplatSettings(home=sys.argv[1], mode="embedded"))
print(json.dumps({"announcement": c.JupyterHub.template_vars["announcement"],
                  "homes": c.MlplatLocalSpawner.home_dir_template}))
"""


@needs_root  # to become another account; the code under test runs as nobody
def test_without_root_up_and_the_hub_pages_say_the_platform_is_for_one_person(
    demo_feature_repo,
):
    nobody = pwd.getpwnam("nobody")
    base = isolation_root() / "not-root"  # nobody can reach it, unlike pytest's tmp_path
    base.mkdir()
    try:
        home, repo = base / "home", base / "feature_repo"
        home.mkdir()
        shutil.copytree(demo_feature_repo, repo)
        failing = base / "hub_config.py"
        failing.write_text("raise SystemExit('jupyter-mlplat: test config stops the hub')\n")
        for path in [base, *base.rglob("*")]:
            os.chown(path, nobody.pw_uid, nobody.pw_gid, follow_symlinks=False)
        env = {
            "PATH": path_with_proxy("/usr/bin:/bin"),
            "HOME": str(base),
            "MLPLAT_HOME": str(home),
            "MLPLAT_FEATURE_REPO": str(repo),
            "LANG": "C.UTF-8",
            **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}),
        }
        as_nobody = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                     "--clear-groups", user_python()]  # fmt: skip
        done = subprocess.run(
            [*as_nobody, "-c", NOT_ROOT_CONFIG, str(home)],
            env=env, capture_output=True, text=True, timeout=120, cwd=base,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        config = json.loads(done.stdout.strip().splitlines()[-1])
        assert "Single-person platform" in config["announcement"]
        assert "same OS account" in config["announcement"]
        assert config["homes"] == str(home / "users" / "{username}")

        up = subprocess.run(
            [*as_nobody, "-m", "jupyter_mlplat.cli", "up", "--config", str(failing)],
            env=env, capture_output=True, text=True, timeout=180, cwd=base,
        )  # fmt: skip
        output = up.stdout + up.stderr
        assert up.returncode == 1, output
        assert (
            "every user's server runs as this one OS account (nobody)" in output
            and "this platform is for one person" in output
        ), output
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_the_hub_page_template_shows_the_announcement():
    """JupyterHub's own page template renders ``template_vars['announcement']``."""
    import jupyterhub

    page = Path(sys.prefix, "share", "jupyterhub", "templates", "page.html")
    if not page.exists():
        page = Path(jupyterhub.__file__).parent.parent / "share/jupyterhub/templates/page.html"
    text = page.read_text()
    assert "{% if announcement %}" in text and "{{ announcement | safe }}" in text
