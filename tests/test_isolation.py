"""The test session clears JUPYTERHUB_* and MLPLAT_* from its environment."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT

PROBE = """
import os
from jupyter_mlplat.client import PlatformClient
from jupyter_mlplat.settings import MlplatSettings

def test_probe():
    leaked = sorted(k for k in os.environ if k.startswith(("MLPLAT_", "JUPYTERHUB_")))
    assert leaked == [], leaked
    assert PlatformClient(MlplatSettings()).transport == "inprocess"
"""


def test_a_suite_started_inside_a_hub_stays_in_process(tmp_path):
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    env = {
        **os.environ,
        "JUPYTERHUB_API_URL": "http://127.0.0.1:1/hub/api",
        "JUPYTERHUB_API_TOKEN": "leaked-token",
        "JUPYTERHUB_USER": "alice",
        "MLPLAT_CLIENT_TRANSPORT": "http",
        "MLPLAT_HOME": str(tmp_path / "not-used"),
    }
    result = subprocess.run(
        # The suite's own conftest, loaded as a plugin, for a probe test outside tests/.
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
         "--rootdir", str(tmp_path), str(probe)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
