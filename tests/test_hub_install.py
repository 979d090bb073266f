"""The hub config works from an installed package: shipped files come from the package,
configurable-http-proxy from PATH or ``c.MlplatHub.proxy_command``, never from the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jupyter_mlplat
from tests.hub import CHP
from tests.hub_fixtures import CONFIG, write_home

VENV_BIN = str(Path(sys.executable).parent)


def _start_hub(tmp_path: Path, home: Path, path: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("jupyterhub")), "-f", str(CONFIG)],
        cwd=tmp_path,
        env={**os.environ, "MLPLAT_HOME": str(home), "PATH": path},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_hub_without_a_proxy_stops_with_one_sentence_naming_the_knob(tmp_path):
    assert shutil.which("configurable-http-proxy", path=VENV_BIN) is None
    home = tmp_path / "home"
    write_home(home, None)
    done = _start_hub(tmp_path, home, VENV_BIN)
    assert done.returncode != 0
    ours = [line for line in done.stderr.splitlines() if line.startswith("jupyter-mlplat:")]
    assert len(ours) == 1, done.stderr[-2000:]
    assert "configurable-http-proxy is not on PATH" in ours[0]
    assert "c.MlplatHub.proxy_command" in ours[0]
    assert "Traceback" not in done.stderr


def test_a_proxy_command_that_does_not_exist_is_named(tmp_path):
    home = tmp_path / "home"
    write_home(home, None, proxy_command="/nowhere/configurable-http-proxy")
    done = _start_hub(tmp_path, home, VENV_BIN)
    assert done.returncode != 0
    assert (
        "jupyter-mlplat: c.MlplatHub.proxy_command = '/nowhere/configurable-http-proxy' is not "
        "an executable file" in done.stderr
    ), done.stderr[-2000:]


def test_the_proxy_comes_from_the_knob_else_from_path(tmp_path, monkeypatch):
    from traitlets.config import Config

    from jupyter_mlplat.hub.config import configure
    from jupyter_mlplat.settings import MlplatSettings

    home = tmp_path / "home"
    write_home(home, None)  # the users file, so no demo passwords are hashed
    monkeypatch.setenv("PATH", VENV_BIN)
    c = Config()
    c.MlplatHub.proxy_command = str(CHP)
    configure(c, MlplatSettings(home=str(home), mode="embedded"))
    assert c.ConfigurableHTTPProxy.command == [str(CHP)]

    monkeypatch.setenv("PATH", os.pathsep.join([str(CHP.parent), VENV_BIN]))
    c = Config()
    configure(c, MlplatSettings(home=str(home), mode="embedded"))
    assert c.ConfigurableHTTPProxy.command == [str(CHP)]


_PROBE = """
import json, sys
from pathlib import Path
from traitlets.config import Config
import jupyter_mlplat
from jupyter_mlplat import resources
from jupyter_mlplat.hub.config import MlplatHub, configure
from jupyter_mlplat.settings import MlplatSettings

c = Config()
configure(c, MlplatSettings(home=sys.argv[1], mode="embedded"))
print(json.dumps({
    "package": jupyter_mlplat.__file__,
    "profiles_dir": MlplatHub().profiles_dir,
    "spawner_profiles_dir": c.MlplatLocalSpawner.profiles_dir,
    "hub_config": str(resources.hub_config_file()),
    "examples": str(resources.example_notebooks_dir()),
    "proxy": c.ConfigurableHTTPProxy.command[0],
}))
"""


def test_a_copy_of_the_package_outside_the_checkout_uses_its_own_files(tmp_path):
    """As a wheel installs it: the package alone (links resolved), no repository around it."""
    site = tmp_path / "site-packages"
    source = Path(jupyter_mlplat.__file__).parent
    shutil.copytree(source, site / "jupyter_mlplat", ignore=shutil.ignore_patterns("__pycache__"))
    home = tmp_path / "home"
    write_home(home, None)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(home)],
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(site),
            "PATH": os.pathsep.join([str(CHP.parent), VENV_BIN]),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(found.pop("package")).parent == site / "jupyter_mlplat"
    assert found.pop("proxy") == str(CHP)
    for name, value in found.items():
        path = Path(value)
        assert path.exists(), (name, value)
        assert path.is_relative_to(site / "jupyter_mlplat"), (name, value)
