"""Shared fixtures: one MLflow server per session, an IPython shell, settings per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jupyter_mlplat import fluent
from jupyter_mlplat.settings import MlplatSettings, reset_settings
from tests.features_fixtures import demo_feature_repo, feast_store  # noqa: F401 (fixtures)
from tests.hub_fixtures import hub_tokens, isolation_accounts, platform_hub  # noqa: F401 (fixtures)
from tests.postgres import postgres_server, store_url  # noqa: F401 (fixtures)
from tests.servers import MlflowServer

REPO_ROOT = Path(__file__).resolve().parent.parent

# Nothing in the tests may read the developer's own ~/.mlplat or MLflow server, and a
# suite started inside a hub (a terminal in JupyterLab) must not switch transports.
ISOLATED_PREFIXES = ("MLPLAT_", "JUPYTERHUB_")
for _var in list(os.environ):
    if _var.startswith(ISOLATED_PREFIXES) or _var in ("MLFLOW_TRACKING_URI", "JPY_SESSION_NAME"):
        os.environ.pop(_var)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` process (SQLite + local artifacts) on a loopback port."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sqlite_tracking_uri(tmp_path_factory):
    """An MLflow SQLite store used in-process (no server)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow-sqlite') / 'mlflow.db'}"


@pytest.fixture
def configure(tmp_path):
    """Install fresh settings for this test: ``configure(tracking_uri=..., teams=[...])``."""

    def _configure(**overrides) -> MlplatSettings:
        values = {
            "home": str(tmp_path / "home"),
            "user": "alice",
            "teams": ["churn", "fraud"],
            "teams_source": "test",
            "tracking_retry_seconds": 5.0,
        }
        values.update(overrides)
        fluent.reset()
        return reset_settings(MlplatSettings(**values))

    yield _configure
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run()
    fluent.reset()
    reset_settings(None)


@pytest.fixture(params=["sqlite", "server"])
def tracking_uri(request, sqlite_tracking_uri):
    """Each tracking test runs on an in-process SQLite store and on a real server."""
    if request.param == "sqlite":
        return sqlite_tracking_uri
    return request.getfixturevalue("mlflow_server").uri


@pytest.fixture(scope="session")
def ipython_shell():
    """The real IPython shell with the extension loaded."""
    from IPython.testing.globalipapp import start_ipython

    shell = start_ipython()
    shell.run_line_magic("load_ext", "jupyter_mlplat")
    yield shell
    shell.run_line_magic("unload_ext", "jupyter_mlplat")
