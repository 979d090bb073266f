"""Every knob of jupyter-mlplat, in one place.

This is the only module that reads environment variables. Each setting is a
traitlet with ``config=True``; its default comes from an environment variable
when one is named in its help, otherwise from the data directory.

Configure in ``$MLPLAT_HOME/mlplat_config.py`` (or the file named by
``MLPLAT_CONFIG``), for example::

    c.MlplatSettings.tracking_uri = "http://127.0.0.1:5000"
    c.MlplatSettings.tracking_retry_seconds = 5
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from traitlets import Bool, Enum, Float, Int, List, Unicode, default
from traitlets.config import Configurable

# Environment variables this project reads, with what they mean. Kept here so
# `mlplat status` and the README can list them.
ENV_VARS = {
    "MLPLAT_HOME": "data directory (default ~/.mlplat)",
    "MLPLAT_CONFIG": "path of a traitlets config file (default $MLPLAT_HOME/mlplat_config.py)",
    "MLPLAT_MODE": "embedded or kubernetes",
    "MLPLAT_TRACKING_URI": "MLflow tracking URI (falls back to MLFLOW_TRACKING_URI)",
    "MLPLAT_ARTIFACT_LOCATION": "artifact root for new experiments",
    "MLPLAT_FEATURE_REPO": "path of the Feast feature repository",
    "MLPLAT_TEAMS": "comma-separated teams of the user outside JupyterHub",
    "MLPLAT_NOTEBOOK_PATH": "path of the notebook being executed (set by job runners)",
    "JUPYTERHUB_USER": "the user, when running under JupyterHub",
    "JPY_SESSION_NAME": "notebook path, set by Jupyter Server for a kernel",
}


def _env(name: str, fallback: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else fallback


class MlplatSettings(Configurable):
    """Settings of the workbench; one instance per process (see :func:`get_settings`)."""

    mode = Enum(
        ["embedded", "kubernetes"],
        config=True,
        help="""Which backends to use: `embedded` (one machine) or `kubernetes`.
        Env: MLPLAT_MODE. Example: c.MlplatSettings.mode = "kubernetes" """,
    )

    @default("mode")
    def _default_mode(self):
        return _env("MLPLAT_MODE", "embedded")

    home = Unicode(
        config=True,
        help="""Data directory for platform state, local MLflow files and the demo
        feature repo. Env: MLPLAT_HOME. Example: c.MlplatSettings.home = "/srv/mlplat" """,
    )

    @default("home")
    def _default_home(self):
        return str(Path(_env("MLPLAT_HOME", "~/.mlplat")).expanduser().resolve())

    tracking_uri = Unicode(
        config=True,
        help="""MLflow tracking URI. Env: MLPLAT_TRACKING_URI, then MLFLOW_TRACKING_URI;
        default a SQLite file in the data directory.
        Example: c.MlplatSettings.tracking_uri = "http://127.0.0.1:5000" """,
    )

    @default("tracking_uri")
    def _default_tracking_uri(self):
        uri = _env("MLPLAT_TRACKING_URI", _env("MLFLOW_TRACKING_URI"))
        return uri or f"sqlite:///{Path(self.home) / 'mlflow.db'}"

    artifact_location = Unicode(
        config=True,
        help="""Artifact root used when this tool creates an experiment; empty lets the
        tracking server decide. Env: MLPLAT_ARTIFACT_LOCATION.
        Example: c.MlplatSettings.artifact_location = "s3://ml-artifacts/mlflow" """,
    )

    @default("artifact_location")
    def _default_artifact_location(self):
        explicit = _env("MLPLAT_ARTIFACT_LOCATION")
        if explicit:
            return explicit
        # A file store next to a SQLite tracking DB; a server chooses its own root.
        if self.tracking_uri.startswith("sqlite:"):
            return (Path(self.home) / "mlartifacts").as_uri()
        return ""

    tracking_retry_seconds = Float(
        10.0,
        config=True,
        help="""Total time budget, in seconds, for reaching the tracking server before
        giving up with a clear error (MLflow's own default retries for far longer).
        Example: c.MlplatSettings.tracking_retry_seconds = 5""",
    )

    tracking_max_retries = Int(
        2,
        config=True,
        help="""HTTP retries per tracking request, inside the retry budget.
        Example: c.MlplatSettings.tracking_max_retries = 3""",
    )

    autolog = Bool(
        True,
        config=True,
        help="""Turn on MLflow autologging inside `%%mlplat run` unless `--no-autolog`
        is given. Example: c.MlplatSettings.autolog = False""",
    )

    autolog_log_models = Bool(
        True,
        config=True,
        help="""Let autologging save fitted models as run artifacts (needed to register
        them later). Example: c.MlplatSettings.autolog_log_models = False""",
    )

    metric_batch_size = Int(
        1000,
        config=True,
        help="""Metrics buffered before a `log_batch` call is sent; MLflow accepts at most
        1000 per batch. Example: c.MlplatSettings.metric_batch_size = 500""",
    )

    metric_flush_seconds = Float(
        2.0,
        config=True,
        help="""Buffered metrics older than this are sent on the next log call; they are
        always sent at the end of a cell and of a run.
        Example: c.MlplatSettings.metric_flush_seconds = 0.5""",
    )

    feature_repo = Unicode(
        config=True,
        help="""Path of the Feast feature repository (the folder with feature_store.yaml).
        Env: MLPLAT_FEATURE_REPO. Default: the demo repo in the data directory.
        Example: c.MlplatSettings.feature_repo = "/srv/feature_repo" """,
    )

    @default("feature_repo")
    def _default_feature_repo(self):
        return str(
            Path(_env("MLPLAT_FEATURE_REPO", str(Path(self.home) / "feature_repo"))).expanduser()
        )

    user = Unicode(
        config=True,
        help="""The user name. Env: JUPYTERHUB_USER, else the OS user.
        Example: c.MlplatSettings.user = "alice" """,
    )

    @default("user")
    def _default_user(self):
        return _env("JUPYTERHUB_USER") or getpass.getuser()

    teams = List(
        Unicode(),
        config=True,
        help="""Teams of the user outside JupyterHub. Env: MLPLAT_TEAMS (comma-separated);
        when unset the user is in the single team `default`.
        Example: c.MlplatSettings.teams = ["fraud", "churn"]""",
    )

    @default("teams")
    def _default_teams(self):
        raw = _env("MLPLAT_TEAMS")
        if raw is None:
            return ["default"]
        return [t.strip() for t in raw.split(",") if t.strip()]

    teams_source = Unicode(
        config=True,
        help="""Where the teams came from (shown by `%mlplat status`).
        Example: c.MlplatSettings.teams_source = "config" """,
    )

    @default("teams_source")
    def _default_teams_source(self):
        return (
            "MLPLAT_TEAMS" if _env("MLPLAT_TEAMS") is not None else "default (MLPLAT_TEAMS not set)"
        )

    notebook_path = Unicode(
        config=True,
        help="""Path of the notebook being run, recorded on runs. Env: MLPLAT_NOTEBOOK_PATH,
        then JPY_SESSION_NAME (set by Jupyter Server).
        Example: c.MlplatSettings.notebook_path = "/home/alice/train.ipynb" """,
    )

    @default("notebook_path")
    def _default_notebook_path(self):
        return _env("MLPLAT_NOTEBOOK_PATH") or _env("JPY_SESSION_NAME") or ""

    @property
    def python_version(self) -> str:
        return sys.version.split()[0]

    def mlflow_http_env(self) -> dict[str, str]:
        """MLflow's HTTP retry variables sized to the retry budget."""
        retries = max(0, self.tracking_max_retries)
        per_request = max(1, int(self.tracking_retry_seconds / (retries + 1)))
        return {
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(retries),
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
            "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(per_request),
        }

    def apply_mlflow_env(self) -> None:
        """Publish the retry budget to MLflow, which reads it from the environment."""
        os.environ.update(self.mlflow_http_env())


def config_file_path() -> Path:
    home = Path(_env("MLPLAT_HOME", "~/.mlplat")).expanduser()
    return Path(_env("MLPLAT_CONFIG", str(home / "mlplat_config.py")))


_settings: MlplatSettings | None = None


def get_settings() -> MlplatSettings:
    """The process-wide settings, loaded once from the config file and environment."""
    global _settings
    if _settings is None:
        config = None
        path = config_file_path()
        if path.is_file():
            from traitlets.config.loader import PyFileConfigLoader

            config = PyFileConfigLoader(path.name, str(path.parent)).load_config()
        _settings = MlplatSettings(config=config)
    return _settings


def reset_settings(settings: MlplatSettings | None = None) -> MlplatSettings:
    """Replace the process-wide settings (tests, and after changing the environment)."""
    global _settings
    _settings = settings
    return get_settings()
