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
    "MLPLAT_TRACKING_UI_URL": "where browsers open the MLflow UI (default the tracking URI)",
    "MLPLAT_FEATURE_REPO": "path of the Feast feature repository",
    "MLPLAT_TEAMS": "comma-separated teams of the user outside JupyterHub",
    "MLPLAT_ROLES": "comma-separated platform roles (reviewer, admin) outside JupyterHub",
    "MLPLAT_NOTEBOOK_PATH": "path of the notebook being executed (set by job runners)",
    "JUPYTERHUB_USER": "the user, when running under JupyterHub",
    "JPY_SESSION_NAME": "notebook path, set by Jupyter Server for a kernel",
    "JUPYTERHUB_API_URL": "the Hub's REST API, set by JupyterHub in servers and services",
    "JUPYTERHUB_API_TOKEN": "the token of this server or service, set by JupyterHub",
    "JUPYTERHUB_BASE_URL": "the Hub's base URL path (default /)",
    "JUPYTERHUB_SERVICE_NAME": "set by JupyterHub in a managed service: its name",
    "JUPYTERHUB_SERVICE_PREFIX": "in the platform service: its URL prefix (/services/mlplat/)",
    "JUPYTERHUB_SERVICE_URL": "in the platform service: the URL it listens on",
    "JUPYTERHUB_PUBLIC_HUB_URL": "public URL of the Hub, when JupyterHub.public_url is set",
    "JUPYTERHUB_PUBLIC_URL": "public URL of this server, when JupyterHub.public_url is set",
    "MLPLAT_SERVICE_NAME": "name of the platform service in JupyterHub (default mlplat)",
    "MLPLAT_SERVICE_URL": "URL of the platform service as seen from single-user servers",
    "MLPLAT_CLIENT_TRANSPORT": "auto, http or inprocess: how PlatformClient reaches the platform",
    "MLPLAT_PROFILES_DIR": "folder of team profiles used by serving and jobs",
    "MLPLAT_JOBS_ACCOUNT_PREFIX": "OS account prefix of users' jobs (the hub's spawner prefix)",
    "MLPLAT_JOBS_PYTHON": "Python that runs jobs (the hub's spawner Python)",
    "MLPLAT_STORE_URL": "SQLAlchemy URL of the platform database (default SQLite in MLPLAT_HOME)",
    "MLPLAT_SERVICE_TOKEN": "Kubernetes hub: the platform service's hub token (from a Secret)",
    "MLPLAT_MLFLOW_SERVICE_TOKEN": "Kubernetes hub: the MLflow service's hub token (from a Secret)",
}


def _env(name: str, fallback: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else fallback


def _root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _shared_dir(name: str, home: str) -> str:
    """``/var/lib/<name>/<id of the data directory>``: a folder users' accounts can reach
    (the data directory is private), one per platform on the machine."""
    import hashlib

    key = hashlib.sha256(str(Path(home).expanduser().resolve()).encode())
    return f"/var/lib/{name}/{key.hexdigest()[:12]}"


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

    tracking_ui_url = Unicode(
        config=True,
        help="""Where a browser opens the MLflow UI: an absolute URL, or a path on the
        notebook's origin (the hub serves MLflow at /services/mlflow). The side panel's
        links to experiments and runs start with it; empty or a non-HTTP tracking URI
        shows no links. Env: MLPLAT_TRACKING_UI_URL; default the tracking URI.
        Example: c.MlplatSettings.tracking_ui_url = "/services/mlflow" """,
    )

    @default("tracking_ui_url")
    def _default_tracking_ui_url(self):
        return _env("MLPLAT_TRACKING_UI_URL", self.tracking_uri)

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

    roles = List(
        Unicode(),
        config=True,
        help="""Platform roles of the user outside JupyterHub (`reviewer`, `admin`); inside a
        hub roles come from the groups mlplat-reviewers / mlplat-admins. Env: MLPLAT_ROLES
        (comma-separated). Example: c.MlplatSettings.roles = ["reviewer"]""",
    )

    @default("roles")
    def _default_roles(self):
        raw = _env("MLPLAT_ROLES", "")
        return [r.strip() for r in raw.split(",") if r.strip()]

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

    # ---- The platform service (a JupyterHub service) and the client that reaches it ----

    hub_api_url = Unicode(
        config=True,
        help="""The JupyterHub REST API; empty outside a hub. Env: JUPYTERHUB_API_URL (set by
        JupyterHub in single-user servers and services).
        Example: c.MlplatSettings.hub_api_url = "http://127.0.0.1:8081/hub/api" """,
    )

    @default("hub_api_url")
    def _default_hub_api_url(self):
        return _env("JUPYTERHUB_API_URL", "")

    hub_api_token = Unicode(
        config=True,
        help="""The JupyterHub token of this process: the user's server token in a single-user
        server, the service's own token in the platform service. Env: JUPYTERHUB_API_TOKEN
        (keep tokens out of config files). Example: c.MlplatSettings.hub_api_token = "<token>" """,
    )

    @default("hub_api_token")
    def _default_hub_api_token(self):
        return _env("JUPYTERHUB_API_TOKEN", "")

    service_token = Unicode(
        config=True,
        help="""Kubernetes mode, in the hub: the token the hub registers the platform service
        with (the chart passes it from its Secret, key platform-token). Env:
        MLPLAT_SERVICE_TOKEN. Example: c.MlplatSettings.service_token = "<token>" """,
    )

    @default("service_token")
    def _default_service_token(self):
        return _env("MLPLAT_SERVICE_TOKEN", "")

    mlflow_service_token = Unicode(
        config=True,
        help="""Kubernetes mode, in the hub: the token the hub registers the MLflow service with
        (the chart's Secret, key mlflow-token). Env: MLPLAT_MLFLOW_SERVICE_TOKEN. Example:
        c.MlplatSettings.mlflow_service_token = "<token>" """,
    )

    @default("mlflow_service_token")
    def _default_mlflow_service_token(self):
        return _env("MLPLAT_MLFLOW_SERVICE_TOKEN", "")

    service_name = Unicode(
        config=True,
        help="""Name of the platform service in JupyterHub; users need the scope
        `access:services!service=<name>`. Env: JUPYTERHUB_SERVICE_NAME inside the service,
        else MLPLAT_SERVICE_NAME; default "mlplat".
        Example: c.MlplatSettings.service_name = "mlplat" """,
    )

    @default("service_name")
    def _default_service_name(self):
        return _env("JUPYTERHUB_SERVICE_NAME") or _env("MLPLAT_SERVICE_NAME", "mlplat")

    service_prefix = Unicode(
        config=True,
        help="""URL path prefix the platform service serves under. Env: JUPYTERHUB_SERVICE_PREFIX
        inside the service; default <hub base URL>services/<service_name>/.
        Example: c.MlplatSettings.service_prefix = "/services/mlplat/" """,
    )

    @default("service_prefix")
    def _default_service_prefix(self):
        # Single-user servers get JUPYTERHUB_SERVICE_PREFIX too (/user/NAME/): only a
        # process that is a hub service may take it as the service's prefix.
        if _env("JUPYTERHUB_SERVICE_NAME") and _env("JUPYTERHUB_SERVICE_PREFIX"):
            return _env("JUPYTERHUB_SERVICE_PREFIX")
        base = _env("JUPYTERHUB_BASE_URL", "/").rstrip("/")
        return f"{base}/services/{self.service_name}/"

    service_bind_url = Unicode(
        config=True,
        help="""Where the platform service listens. Env: JUPYTERHUB_SERVICE_URL inside the
        service (JupyterHub sets it from the service's `url`); default http://127.0.0.1:10101.
        Example: c.MlplatSettings.service_bind_url = "http://0.0.0.0:10101" """,
    )

    @default("service_bind_url")
    def _default_service_bind_url(self):
        if _env("JUPYTERHUB_SERVICE_NAME") and _env("JUPYTERHUB_SERVICE_URL"):
            return _env("JUPYTERHUB_SERVICE_URL")
        return "http://127.0.0.1:10101"

    service_url = Unicode(
        config=True,
        help="""URL of the platform service (with its prefix) as seen from a single-user server.
        Env: MLPLAT_SERVICE_URL (the hub config sets it for spawned servers); else derived
        from JUPYTERHUB_PUBLIC_HUB_URL / JUPYTERHUB_PUBLIC_URL; empty when unknown.
        Example: c.MlplatSettings.service_url = "http://127.0.0.1:10101/services/mlplat/" """,
    )

    @default("service_url")
    def _default_service_url(self):
        explicit = _env("MLPLAT_SERVICE_URL")
        if explicit:
            return explicit
        if _env("JUPYTERHUB_SERVICE_NAME") == self.service_name:
            return self.service_bind_url.rstrip("/") + self.service_prefix
        public = _env("JUPYTERHUB_PUBLIC_HUB_URL") or _env("JUPYTERHUB_PUBLIC_URL")
        if public:
            from urllib.parse import urlsplit

            parts = urlsplit(public)
            return f"{parts.scheme}://{parts.netloc}{self.service_prefix}"
        return ""

    client_transport = Enum(
        ["auto", "http", "inprocess"],
        config=True,
        help="""How PlatformClient reaches the platform: `http` to the service, `inprocess`
        (same code, local settings and state), or `auto`: http when JUPYTERHUB_API_TOKEN and
        JUPYTERHUB_API_URL are set (inside a hub), else in-process.
        Env: MLPLAT_CLIENT_TRANSPORT. Example: c.MlplatSettings.client_transport = "http" """,
    )

    @default("client_transport")
    def _default_client_transport(self):
        return _env("MLPLAT_CLIENT_TRANSPORT", "auto")

    client_retry_seconds = Float(
        45.0,
        config=True,
        help="""Total time budget, in seconds, for reaching the platform service (retries with
        exponential backoff, so a service restart does not break notebooks) before a clear
        error. The default outlasts a crash: JupyterHub notices a dead managed service within
        about 30 s and restarts it. Example: c.MlplatSettings.client_retry_seconds = 15""",
    )

    max_body_bytes = Int(
        1024 * 1024,
        config=True,
        help="""Largest request body the platform service accepts; larger ones are refused with
        413 before they are parsed. Example: c.MlplatSettings.max_body_bytes = 4 * 1024 * 1024""",
    )

    max_text_bytes = Int(
        4096,
        config=True,
        help="""Largest free-text field (an approval's reason, a reviewer's comment), in UTF-8
        bytes; longer ones are refused with 413. Example: c.MlplatSettings.max_text_bytes = 8192""",
    )

    idempotency_ttl_seconds = Float(
        24 * 3600,
        config=True,
        help="""How long the platform service remembers the answer to a mutating request, so a
        client retrying with the same Idempotency-Key gets it again instead of acting twice.
        Example: c.MlplatSettings.idempotency_ttl_seconds = 3600""",
    )

    hub_cache_seconds = Float(
        60.0,
        config=True,
        help="""The revocation bound: how long the platform service (and MLflow behind the hub)
        may act on what the Hub said about a token and its user's groups. Removing a user from
        a group (e.g. mlplat-reviewers), revoking a token or deleting a user takes effect
        within this many seconds; 0 asks the Hub on every request. Smaller is faster to revoke,
        larger asks the Hub less often.
        Example: c.MlplatSettings.hub_cache_seconds = 15""",
    )

    mlflow_platform_token = Unicode(
        config=True,
        help="""The platform's own secret for the hub's MLflow server (the ``mlplat-hub``
        MLflow app): a request bearing it acts as the MLflow user ``mlplat-platform``.
        Generated by the hub config; keep it out of config files.
        Env: MLPLAT_MLFLOW_PLATFORM_TOKEN. Example: c.MlplatSettings.mlflow_platform_token = "<secret>" """,
    )

    @default("mlflow_platform_token")
    def _default_mlflow_platform_token(self):
        return _env("MLPLAT_MLFLOW_PLATFORM_TOKEN", "")

    team_group_prefix = Unicode(
        "team-",
        config=True,
        help="""JupyterHub groups named <prefix><team> make their members part of <team>.
        Example: c.MlplatSettings.team_group_prefix = "team-" """,
    )

    reviewer_group = Unicode(
        "mlplat-reviewers",
        config=True,
        help="""Members of this JupyterHub group have the `reviewer` role (approve models).
        Example: c.MlplatSettings.reviewer_group = "ml-reviewers" """,
    )

    admin_group = Unicode(
        "mlplat-admins",
        config=True,
        help="""Members of this JupyterHub group have the `admin` role (platform admins).
        Example: c.MlplatSettings.admin_group = "ml-platform-team" """,
    )

    # ---- Platform store and governance ----

    store_url = Unicode(
        config=True,
        help="""SQLAlchemy URL of the platform database (approvals, audit log, ownership):
        SQLite embedded, PostgreSQL in Kubernetes (`postgresql://` uses psycopg 3).
        Env: MLPLAT_STORE_URL; default a SQLite file in the data directory.
        Example: c.MlplatSettings.store_url = "postgresql://mlplat:secret@db:5432/mlplat" """,
    )

    @default("store_url")
    def _default_store_url(self):
        return _env("MLPLAT_STORE_URL") or f"sqlite:///{Path(self.home) / 'platform.db'}"

    audit_key_file = Unicode(
        config=True,
        help="""File holding the secret that keys the audit chain's hashes (HMAC-SHA256);
        created owner-only on first use. Keep it out of users' reach and back it up: without
        it the log cannot be verified. Default: audit.key in the data directory.
        Example: c.MlplatSettings.audit_key_file = "/etc/mlplat/audit.key" """,
    )

    @default("audit_key_file")
    def _default_audit_key_file(self):
        return str(Path(self.home) / "audit.key")

    audit_checkpoint_file = Unicode(
        config=True,
        help="""File where the platform records the audit chain's newest event after each
        commit, so `audit verify` detects events cut off the end. Default: audit.head in the
        data directory. Example: c.MlplatSettings.audit_checkpoint_file = "/srv/mlplat/audit.head" """,
    )

    @default("audit_checkpoint_file")
    def _default_audit_checkpoint_file(self):
        return str(Path(self.home) / "audit.head")

    frozen_artifacts_dir = Unicode(
        config=True,
        help="""Folder of the frozen copies of requested models' artifacts: the platform copies
        a version's files here when it is requested for approval (content-addressed,
        sha256/<digest>/, owner-only); decisions bind to that copy. Keep it out of users'
        reach. Default: frozen/ in the data directory.
        Example: c.MlplatSettings.frozen_artifacts_dir = "/srv/mlplat/frozen" """,
    )

    @default("frozen_artifacts_dir")
    def _default_frozen_artifacts_dir(self):
        return str(Path(self.home) / "frozen")

    serving_python = Unicode(
        "",
        config=True,
        help="""Python of the serving environment that runs MLServer + mlserver-mlflow (built by
        `make install` beside the project's venv); empty means <this venv>-serving/bin/python.
        Example: c.MlplatSettings.serving_python = "/opt/mlplat/venv-serving/bin/python" """,
    )
    serving_dir = Unicode(
        config=True,
        help="""Folder of the local model servers: one subfolder per deployment version with
        its read-only model files, MLServer's log and working files. The model servers' OS
        accounts must be able to traverse to it, so when the platform runs as root it is not
        inside the (private) data directory: default /var/lib/mlplat-serving/<id of the data
        directory>, else deployments/ in the data directory.
        Example: c.MlplatSettings.serving_dir = "/srv/mlplat/deployments" """,
    )

    @default("serving_dir")
    def _default_serving_dir(self):
        if _root() and self.serving_account_prefix:
            return _shared_dir("mlplat-serving", self.home)
        return str(Path(self.home) / "deployments")

    serving_ready_timeout = Float(
        90.0,
        config=True,
        help="""Seconds a local model server has to load its model and answer ready; past it the
        deploy fails with the server's log. Example: c.MlplatSettings.serving_ready_timeout = 120""",
    )
    serving_stop_grace_seconds = Float(
        10.0,
        config=True,
        help="""Seconds a local model server gets to stop after SIGTERM before it is killed.
        Example: c.MlplatSettings.serving_stop_grace_seconds = 5""",
    )
    serving_account_prefix = Unicode(
        "mlplat-serve-",
        config=True,
        help="""When the platform runs as root, each team's model servers run as the OS account
        <prefix><team> (a model is the team's code, never run with the platform's rights);
        leaving it empty is refused as root (model servers would run as root). Without root,
        model servers run as the platform's own account.
        Example: c.MlplatSettings.serving_account_prefix = "mlplat-serve-" """,
    )

    serving_route_cache_seconds = Float(
        1.0,
        config=True,
        help="""Seconds the platform service routes predictions by a deployment's record
        without reading it again (a change made through this service applies at once; one
        made through another replica within this bound); 0 reads it on every request.
        Example: c.MlplatSettings.serving_route_cache_seconds = 0.5""",
    )
    serving_supervise_seconds = Float(
        10.0,
        config=True,
        help="""Seconds between the platform service's checks of the local model servers: one
        that died, or that no longer has its model ready, is restarted from its served copy
        (at most serving_max_restarts times in a row); 0 turns the checks off.
        Example: c.MlplatSettings.serving_supervise_seconds = 30""",
    )
    serving_max_restarts = Int(
        3,
        config=True,
        help="""Restarts in a row the supervisor gives a model server that keeps dying before it
        leaves it crashed for a person to look at (a redeploy starts it again and resets the
        count). Example: c.MlplatSettings.serving_max_restarts = 5""",
    )
    serving_storage_uri = Unicode(
        "",
        config=True,
        help="""Kubernetes mode: where the cluster reads the platform's frozen copies, i.e. the
        frozen_artifacts_dir as KServe's storage initializer sees it; a deployment's storageUri
        is <this>/sha256/<digest>/model. Required to deploy on Kubernetes.
        Example: c.MlplatSettings.serving_storage_uri = "pvc://mlplat-frozen" """,
    )
    serving_runtime_image = Unicode(
        "",
        config=True,
        help="""Kubernetes mode: the MLServer image of the mlplat ServingRuntime, with
        mlserver-mlflow and this project's mlflow version (the stock kserve-mlserver image has
        mlflow 2.x, which cannot load mlflow 3's default skops models). Required to deploy on
        Kubernetes. Example: c.MlplatSettings.serving_runtime_image = "registry.example.com/mlplat-mlserver:1.7.1" """,
    )
    kube_api_url = Unicode(
        "https://kubernetes.default.svc",
        config=True,
        help="""Kubernetes mode: the API server the platform service applies objects to (the
        in-cluster address by default). Example: c.MlplatSettings.kube_api_url = "https://10.0.0.1:6443" """,
    )
    kube_token_file = Unicode(
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
        config=True,
        help="""Kubernetes mode: file holding the bearer token of the platform service's account
        (read again every 10 minutes: projected tokens rotate). Example: c.MlplatSettings.kube_token_file = "/etc/mlplat/kube-token" """,
    )
    kube_ca_file = Unicode(
        "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
        config=True,
        help="""Kubernetes mode: CA bundle that signs the API server's certificate; empty
        verifies against the system's CAs. Example: c.MlplatSettings.kube_ca_file = "/etc/mlplat/ca.crt" """,
    )
    kube_ready_timeout = Float(
        300.0,
        config=True,
        help="""Kubernetes mode: seconds a deploy waits for its InferenceService to be Ready
        (image pull and model download included). Example: c.MlplatSettings.kube_ready_timeout = 600""",
    )
    profiles_dir = Unicode(
        config=True,
        help="""Folder of team profiles (namespace, image, resources, GPUs) that serving and jobs
        use for a team; default the profiles shipped in the package. Env: MLPLAT_PROFILES_DIR.
        Example: c.MlplatSettings.profiles_dir = "/srv/spawner_profiles" """,
    )

    @default("profiles_dir")
    def _default_profiles_dir(self):
        from .resources import default_profiles_dir

        return _env("MLPLAT_PROFILES_DIR") or str(default_profiles_dir())

    jobs_dir = Unicode(
        config=True,
        help="""Platform storage of jobs (root-only when the platform is root): notebook
        snapshots by SHA-256, and each run's log and executed notebook; default jobs/ in the
        data directory. Example: c.MlplatSettings.jobs_dir = "/srv/mlplat/jobs" """,
    )

    @default("jobs_dir")
    def _default_jobs_dir(self):
        return str(Path(self.home) / "jobs")

    jobs_work_dir = Unicode(
        config=True,
        help="""Folder of the running jobs' working folders (one per run, the owner's, removed
        after): the users' OS accounts must be able to traverse to it, so as root it is not in
        the data directory: default /var/lib/mlplat-jobs/<id of the data directory>, else
        jobs-work/ in the data directory. Example: c.MlplatSettings.jobs_work_dir = "/srv/mlplat/jobs-work" """,
    )

    @default("jobs_work_dir")
    def _default_jobs_work_dir(self):
        if _root():
            return _shared_dir("mlplat-jobs", self.home)
        return str(Path(self.home) / "jobs-work")

    jobs_account_prefix = Unicode(
        config=True,
        help="""When the platform runs as root, a job of user U runs as the OS account
        <prefix>U: the account U's server runs as (the hub passes its spawner's prefix). Env:
        MLPLAT_JOBS_ACCOUNT_PREFIX. Example: c.MlplatSettings.jobs_account_prefix = "jupyter-" """,
    )

    @default("jobs_account_prefix")
    def _default_jobs_account_prefix(self):
        return _env("MLPLAT_JOBS_ACCOUNT_PREFIX", "jupyter-")

    jobs_python = Unicode(
        config=True,
        help="""Python that runs jobs (papermill and the kernel), with this project installed;
        as root its folders must be readable by the users' accounts (the hub passes its
        spawner's Python). Env: MLPLAT_JOBS_PYTHON; default this Python.
        Example: c.MlplatSettings.jobs_python = "/opt/mlplat/venv/bin/python" """,
    )

    @default("jobs_python")
    def _default_jobs_python(self):
        return _env("MLPLAT_JOBS_PYTHON", sys.executable)

    notebook_root = Unicode(
        config=True,
        help="""Your root folder as a job sees it (the folder your server shows; default your
        home): notebooks you submit are named relative to it, and a job runs in the notebook's
        folder under it. Example: c.MlplatSettings.notebook_root = "/home/alice/work" """,
    )

    @default("notebook_root")
    def _default_notebook_root(self):
        return os.path.expanduser("~")

    jobs_workers = Int(
        2,
        config=True,
        help="""Jobs run at once by this platform service; more wait, queued.
        Example: c.MlplatSettings.jobs_workers = 4""",
    )
    jobs_timeout_seconds = Float(
        3600.0,
        config=True,
        help="""Seconds a job may run before it is stopped and marked failed.
        Example: c.MlplatSettings.jobs_timeout_seconds = 7200""",
    )
    jobs_min_interval_seconds = Float(
        300.0,
        config=True,
        help="""The shortest time a cron schedule may leave between two firings.
        Example: c.MlplatSettings.jobs_min_interval_seconds = 900""",
    )
    jobs_retention_days = Float(
        30.0,
        config=True,
        help="""Finished runs older than this are deleted with their logs and executed
        notebooks (their MLflow runs stay). Example: c.MlplatSettings.jobs_retention_days = 90""",
    )
    jobs_kernel = Unicode(
        "python3",
        config=True,
        help="""Jupyter kernel that runs jobs' notebooks.
        Example: c.MlplatSettings.jobs_kernel = "python3" """,
    )
    jobs_tick_seconds = Float(
        5.0,
        config=True,
        help="""Seconds between the scheduler's looks for due firings (and the workers' for
        queued runs when nothing woke them). Example: c.MlplatSettings.jobs_tick_seconds = 10""",
    )
    jobs_heartbeat_seconds = Float(
        10.0,
        config=True,
        help="""Seconds between a running job's heartbeats; a run whose heartbeat is three
        beats old (its service died) becomes interrupted.
        Example: c.MlplatSettings.jobs_heartbeat_seconds = 15""",
    )
    jobs_max_notebook_bytes = Int(
        20 * 1024 * 1024,
        config=True,
        help="""Largest notebook a job accepts, and largest executed notebook kept.
        Example: c.MlplatSettings.jobs_max_notebook_bytes = 52428800""",
    )
    kfp_api_url = Unicode(
        "",
        config=True,
        help="""The Kubeflow Pipelines API that `%mlplat pipeline submit --kfp` sends runs to
        (empty: only --local runs). Example: c.MlplatSettings.kfp_api_url = "http://ml-pipeline.kubeflow:8888" """,
    )
    kfp_token_file = Unicode(
        "",
        config=True,
        help="""A file with the bearer token the platform calls the KFP API with (read on each
        call: projected tokens rotate). Example: c.MlplatSettings.kfp_token_file = "/var/run/secrets/kubeflow/pipelines/token" """,
    )
    kfp_ca_file = Unicode(
        "",
        config=True,
        help="""CA bundle for the KFP API's TLS certificate (empty: the system's).
        Example: c.MlplatSettings.kfp_ca_file = "/etc/mlplat/kfp-ca.crt" """,
    )
    kfp_user_header = Unicode(
        "kubeflow-userid",
        config=True,
        help="""The header naming the user on the platform's calls to the KFP API (Kubeflow's
        multi-user mode trusts it from the platform's service account only; empty: none).
        Example: c.MlplatSettings.kfp_user_header = "x-goog-authenticated-user-email" """,
    )
    jobs_warm_starters = Bool(
        True,
        config=True,
        help="""Keep a warm job starter per job account: a process of that account with
        mlflow and papermill imported that forks each of its jobs (about 3 s less per job).
        Off, every job is a fresh Python process. The profile's environment applies to the
        job and its kernel either way, not to the starter's imports (a profile's PYTHONPATH
        reaches the kernel only). Example: c.MlplatSettings.jobs_warm_starters = False""",
    )
    jobs_warm_idle_seconds = Float(
        600.0,
        config=True,
        help="""Seconds a warm job starter with no job is kept before it is stopped.
        Example: c.MlplatSettings.jobs_warm_idle_seconds = 3600""",
    )
    store_timeout_seconds = Float(
        10.0,
        config=True,
        help="""How long a write waits for SQLite's lock, and a PostgreSQL connection for the
        server, before a clear "database unavailable" error.
        Example: c.MlplatSettings.store_timeout_seconds = 30""",
    )

    approval_metric = Unicode(
        "accuracy",
        config=True,
        help="""The run metric an approval request is judged on against the model's baseline.
        Example: c.MlplatSettings.approval_metric = "roc_auc" """,
    )

    approval_metric_greater_is_better = Bool(
        True,
        config=True,
        help="""Whether a higher `approval_metric` is better (False for losses such as rmse).
        Example: c.MlplatSettings.approval_metric_greater_is_better = False""",
    )

    approval_min_improvement = Float(
        0.0,
        config=True,
        help="""How much a version must beat the baseline's metric by (0 = at least equal;
        negative tolerates a small regression).
        Example: c.MlplatSettings.approval_min_improvement = 0.01""",
    )

    approval_min_metric = Float(
        None,
        allow_none=True,
        config=True,
        help="""An absolute floor (or ceiling, when lower is better) for the metric that every
        version must meet, baseline or not; None for no floor.
        Example: c.MlplatSettings.approval_min_metric = 0.8""",
    )

    approval_baseline = Enum(
        ["approved", "deployed", "none"],
        "approved",
        config=True,
        help="""Which version is the baseline of a request: `approved` (the latest approved or
        deployed version of the model for the same target), `deployed` (the latest deployed
        one) or `none` (only `approval_min_metric` applies). With no baseline yet the first
        version passes. Example: c.MlplatSettings.approval_baseline = "deployed" """,
    )

    approval_required_lineage = List(
        Unicode(),
        ["run_id", "notebook_hash", "code_version", "feature_refs", "data_source"],
        config=True,
        help="""Lineage fields a version must record for the "lineage complete" check.
        Example: c.MlplatSettings.approval_required_lineage = ["run_id", "code_version"]""",
    )

    high_risk_models = List(
        Unicode(),
        config=True,
        help="""Models flagged high risk by configuration (besides the per-model flag): never
        auto-approved, and two distinct reviewers must approve them.
        Example: c.MlplatSettings.high_risk_models = ["credit-scoring"]""",
    )

    staging_auto_approval = Bool(
        True,
        config=True,
        help="""Approve `staging` requests automatically when every check passes and the model
        is not high risk (`production` always needs people).
        Example: c.MlplatSettings.staging_auto_approval = False""",
    )


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
