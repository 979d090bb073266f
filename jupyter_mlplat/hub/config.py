"""Everything the shipped hub config (``jupyter_mlplat/resources/jupyterhub_config.py``,
linked from the checkout's ``hub_config/``) sets, for both modes.

The hub config file only calls :func:`configure`. Knobs live on :class:`MlplatHub`
(set them in ``$MLPLAT_HOME/mlplat_config.py`` or in a config loaded before this one,
e.g. ``c.MlplatHub.port = 8000``) and on :class:`~jupyter_mlplat.settings.MlplatSettings`
(mode, data directory...). Nothing here is found relative to the source tree: shipped
files come from :mod:`jupyter_mlplat.resources`, programs from ``PATH`` or a knob.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from traitlets import Int, Unicode, default
from traitlets.config import Config, Configurable

from ..errors import MlplatError
from ..resources import default_profiles_dir
from ..settings import MlplatSettings, get_settings
from .secrets import ensure_private_dir, read_or_create_secret

PROXY_EXECUTABLE = "configurable-http-proxy"
SERVICE_NAME = "mlplat"
MLFLOW_SERVICE = "mlflow"
# MLflow 3 starts a job runner (8 processes, about 1.3 GB) by default; tracking needs none.
MLFLOW_SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


# A single-user server's own token may call the platform service for its user.
SERVER_TOKEN_SCOPES = (
    "users:activity!user",
    "access:servers!server",
    f"access:services!service={SERVICE_NAME}",
    f"access:services!service={MLFLOW_SERVICE}",
)


def platform_roles() -> list[dict]:
    """The hub roles of the platform service, MLflow and users, in both modes."""
    return [
        {
            "name": "mlplat-service",
            # tokens: a job gets a token of its owner (for MLflow and the platform only, for
            # the job's time), so it logs as them while their server is stopped.
            "scopes": ["read:users:name", "read:users:groups", "read:groups", "tokens"],
            "services": [SERVICE_NAME],
        },
        {
            # MLflow's authorization function asks the Hub about tokens and groups.
            "name": "mlplat-mlflow",
            "scopes": ["read:users:name", "read:users:groups"],
            "services": [MLFLOW_SERVICE],
        },
        {
            # Users reach the platform service and MLflow with their own tokens.
            "name": "user",
            "scopes": [
                "self",
                f"access:services!service={SERVICE_NAME}",
                f"access:services!service={MLFLOW_SERVICE}",
            ],
        },
    ]


class MlplatHub(Configurable):
    """Ports, folders and timeouts of the hub the platform runs in."""

    ip = Unicode(
        "127.0.0.1", config=True, help="""Public address. Example: c.MlplatHub.ip = "0.0.0.0" """
    )
    port = Int(8000, config=True, help="Public (proxy) port. Example: c.MlplatHub.port = 8000")
    hub_port = Int(8081, config=True, help="Hub API port. Example: c.MlplatHub.hub_port = 8081")
    proxy_api_port = Int(
        8001,
        config=True,
        help="configurable-http-proxy API port. Example: c.MlplatHub.proxy_api_port = 8001",
    )
    service_port = Int(
        8009, config=True, help="Platform service port. Example: c.MlplatHub.service_port = 8009"
    )
    mlflow_port = Int(
        5000, config=True, help="MLflow server port. Example: c.MlplatHub.mlflow_port = 5000"
    )
    idle_timeout = Int(
        3600,
        config=True,
        help="Seconds before the idle culler stops an unused server. Example: c.MlplatHub.idle_timeout = 7200",
    )
    cull_every = Int(
        600,
        config=True,
        help="Seconds between two idle culler checks (--cull-every). Example: c.MlplatHub.cull_every = 300",
    )
    profiles_dir = Unicode(
        config=True,
        help="""Folder of team profiles; default the profiles shipped in the package
        (jupyter_mlplat/resources/spawner_profiles).
        Example: c.MlplatHub.profiles_dir = "/srv/spawner_profiles" """,
    )

    @default("profiles_dir")
    def _default_profiles_dir(self):
        return str(default_profiles_dir())

    proxy_command = Unicode(
        "",
        config=True,
        help="""configurable-http-proxy executable; empty (the default) finds
        `configurable-http-proxy` on PATH (`make up` puts the one npm installs into
        node_modules/.bin there).
        Example: c.MlplatHub.proxy_command = "/usr/local/bin/configurable-http-proxy" """,
    )


def hub_knobs(settings: MlplatSettings | None = None, c: Config | None = None) -> MlplatHub:
    """The :class:`MlplatHub` knobs: ``$MLPLAT_HOME/mlplat_config.py`` (read by the
    settings), overridden by the hub config ``c`` when given."""
    settings = settings or get_settings()
    merged = Config()
    merged.merge(settings.config)
    if c is not None:
        merged.merge(c)
    return MlplatHub(config=merged)


def public_url(hub: MlplatHub) -> str:
    """The URL of the hub's public (proxy) port, as a browser on this machine reaches it."""
    host = hub.ip if hub.ip not in ("", "0.0.0.0", "::") else "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{hub.port}"


def find_proxy(hub: MlplatHub) -> str | None:
    """The configurable-http-proxy to run: ``c.MlplatHub.proxy_command``, else ``PATH``."""
    return shutil.which(hub.proxy_command or PROXY_EXECUTABLE)


def _fail(message: str):
    """Refuse to start the hub with one clear line (no traceback)."""
    print(f"jupyter-mlplat: {message}", file=sys.stderr)
    raise SystemExit(1)


def configure(c, settings: MlplatSettings | None = None) -> None:
    settings = settings or get_settings()
    # Knobs may come from $MLPLAT_HOME/mlplat_config.py (read by the settings) or from
    # the hub config itself; the hub config wins.
    hub = hub_knobs(settings, c)
    hub_dir = ensure_private_dir(Path(settings.home) / "hub")
    try:
        from ..profiles import load_profiles

        profiles = load_profiles(Path(hub.profiles_dir))
    except MlplatError as exc:
        _fail(str(exc))

    c.JupyterHub.ip = hub.ip
    c.JupyterHub.port = hub.port
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = hub.hub_port
    c.JupyterHub.db_url = f"sqlite:///{hub_dir / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(hub_dir / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(hub_dir / "jupyterhub.pid")
    proxy = find_proxy(hub)
    if proxy is None and settings.mode == "embedded":
        if hub.proxy_command:
            _fail(
                f"c.MlplatHub.proxy_command = {hub.proxy_command!r} is not an executable "
                "file; point it at configurable-http-proxy (npm install configurable-http-proxy)."
            )
        _fail(
            f"{PROXY_EXECUTABLE} is not on PATH; install it (`npm install -g "
            "configurable-http-proxy`; `make up` in the checkout puts node_modules/.bin on "
            "PATH) or set "
            'c.MlplatHub.proxy_command = "/path/to/configurable-http-proxy" in '
            f"{Path(settings.home) / 'mlplat_config.py'}."
        )
    c.ConfigurableHTTPProxy.command = [proxy or PROXY_EXECUTABLE]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{hub.proxy_api_port}"
    c.ConfigurableHTTPProxy.auth_token = read_or_create_secret(hub_dir / "proxy_token")
    c.ConfigurableHTTPProxy.pid_file = str(hub_dir / "proxy.pid")

    service_token = read_or_create_secret(hub_dir / "service-mlplat.token")
    mlflow_token = read_or_create_secret(hub_dir / "service-mlflow.token")
    # The platform's own MLflow identity (user mlplat-platform); kernels never see it.
    platform_mlflow_token = read_or_create_secret(hub_dir / "mlflow-platform.token")
    culler_token = read_or_create_secret(hub_dir / "service-idle-culler.token")
    service_url = f"http://127.0.0.1:{hub.service_port}"
    mlflow_url = f"http://127.0.0.1:{hub.mlflow_port}"
    public = public_url(hub)
    c.JupyterHub.services = [
        {
            "name": SERVICE_NAME,
            "url": service_url,
            "command": supervised(
                hub_dir / f"service-{SERVICE_NAME}.pgid",
                [sys.executable, "-m", "jupyter_mlplat.service"],
            ),
            "api_token": service_token,
            "environment": {
                "MLPLAT_HOME": settings.home,
                "MLPLAT_MODE": settings.mode,
                "MLPLAT_PROFILES_DIR": str(hub.profiles_dir),
                # Jobs run as the accounts, and with the Python, of the users' servers.
                "MLPLAT_JOBS_ACCOUNT_PREFIX": _spawner_knob(c, settings, "account_prefix")
                or "jupyter-",
                "MLPLAT_JOBS_PYTHON": _spawner_knob(c, settings, "python") or sys.executable,
                # The service reads version facts from MLflow itself, never from callers.
                "MLPLAT_TRACKING_URI": f"{mlflow_url}/services/{MLFLOW_SERVICE}",
                # Browsers reach MLflow through the hub's proxy, on the notebook's origin.
                "MLPLAT_TRACKING_UI_URL": f"{_hub_base_url(c).rstrip('/')}/services/{MLFLOW_SERVICE}",
                "MLFLOW_TRACKING_URI": "",
                "MLFLOW_TRACKING_TOKEN": platform_mlflow_token,
            },
            "display": True,
        },
        {
            "name": MLFLOW_SERVICE,
            "url": mlflow_url,
            "command": supervised(
                hub_dir / f"service-{MLFLOW_SERVICE}.pgid", _mlflow_command(settings, hub)
            ),
            "api_token": mlflow_token,
            # The UI logs in with the hub (OAuth) without a confirmation page.
            "oauth_no_confirm": True,
            "environment": {
                **MLFLOW_SERVER_ENV,
                **mlflow_auth_env(settings, hub_dir, platform_mlflow_token),
            },
            "display": True,
        },
        {
            "name": "idle-culler",
            "api_token": culler_token,
            "command": [
                sys.executable,
                "-m",
                "jupyterhub_idle_culler",
                f"--timeout={hub.idle_timeout}",
                f"--cull-every={hub.cull_every}",
            ],  # fmt: skip
        },
    ]
    c.JupyterHub.load_roles = [
        *platform_roles(),
        {
            "name": "idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        },
    ]
    c.Spawner.server_token_scopes = list(SERVER_TOKEN_SCOPES)

    tracking_uri = f"{public}/services/{MLFLOW_SERVICE}"
    env = {
        "MLPLAT_MODE": settings.mode,
        "MLPLAT_TRACKING_URI": tracking_uri,
        # Plain `import mlflow` in a new kernel logs to the platform too, not to a
        # private SQLite file until the first %mlplat call.
        "MLFLOW_TRACKING_URI": tracking_uri,
        # MLflow clients send it as 'Authorization: Bearer': the server's own hub token.
        "MLFLOW_TRACKING_TOKEN": _server_token,
        "MLPLAT_SERVICE_URL": f"{public}/services/{SERVICE_NAME}",
        "MLPLAT_FEATURE_REPO": settings.feature_repo,
    }
    if settings.mode == "kubernetes":
        _configure_kubernetes(c, profiles, env)
    else:
        _configure_embedded(c, settings, hub, hub_dir, env)


def _spawner_knob(c, settings: MlplatSettings, key: str):
    """A MlplatLocalSpawner knob from the hub config, else from mlplat_config.py, else None."""
    if key in c.MlplatLocalSpawner:
        return c.MlplatLocalSpawner[key]
    own = Config()
    own.merge(settings.config)
    return own.MlplatLocalSpawner.get(key)


def _server_token(spawner) -> str:
    return spawner.api_token


MLFLOW_AUTH_INI = """\
# Written by jupyter-mlplat at each hub start: MLflow's auth app behind hub identity.
[mlflow]
default_permission = NO_PERMISSIONS
database_uri = {database_uri}
admin_username = mlplat-platform
authorization_function = jupyter_mlplat.mlflow_auth.app:authenticate
grant_default_workspace_access = false
"""


def _hub_base_url(c: Config) -> str:
    value = c.JupyterHub.get("base_url") if "JupyterHub" in c else None
    return value if isinstance(value, str) and value else "/"


def mlflow_auth_env(settings: MlplatSettings, hub_dir: Path, platform_token: str) -> dict:
    """The environment of the MLflow server: its auth config and secrets (files 0600)."""
    from .secrets import write_private

    ini = hub_dir / "mlflow-auth.ini"
    database = f"sqlite:///{Path(settings.home) / 'mlflow-auth.db'}"
    write_private(ini, MLFLOW_AUTH_INI.format(database_uri=database))
    return {
        "MLFLOW_AUTH_CONFIG_PATH": str(ini),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": read_or_create_secret(hub_dir / "mlflow-flask.key"),
        # Bootstraps the admin user mlplat-platform; nobody logs in with a password.
        "MLFLOW_AUTH_ADMIN_PASSWORD": read_or_create_secret(hub_dir / "mlflow-admin.password"),
        "MLFLOW_BASIC_AUTH_FAIL_CLOSED": "true",
        "MLPLAT_MLFLOW_PLATFORM_TOKEN": platform_token,
        "MLPLAT_HOME": settings.home,
    }


def supervised(pidfile: Path, command: list[str]) -> list[str]:
    """``command`` run by :mod:`jupyter_mlplat.hub.supervise` as its own process group."""
    return [sys.executable, "-m", "jupyter_mlplat.hub.supervise", "--pidfile", str(pidfile),
            "--", *command]  # fmt: skip


def _mlflow_command(settings: MlplatSettings, hub: MlplatHub) -> list[str]:
    home = Path(settings.home)
    return [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{home / 'mlflow-server.db'}",
        "--artifacts-destination", str(home / "mlartifacts"),
        "--host", "127.0.0.1", "--port", str(hub.mlflow_port), "--workers", "1",
        "--static-prefix", f"/services/{MLFLOW_SERVICE}",
        "--app-name", "mlplat-hub",
        # Keep-alive connections (the proxy's, a browser's) must not hold up a hub stop.
        "--uvicorn-opts", "--timeout-graceful-shutdown 5",
        "--allowed-hosts", f"127.0.0.1:{hub.mlflow_port},localhost:{hub.mlflow_port},"
        f"{hub.ip}:{hub.port},localhost:{hub.port},127.0.0.1:{hub.port}",
    ]  # fmt: skip


def _configure_embedded(c, settings, hub: MlplatHub, hub_dir: Path, env: dict) -> None:
    from .accounts import shared_account_announcement
    from .spawner import MlplatLocalSpawner, running_as_root
    from .users import ensure_demo_users

    # The data dir, its secrets, databases and artifacts are the platform's alone (the
    # shipped hub config also sets umask 077 for the hub and the services it starts).
    ensure_private_dir(Path(settings.home))
    isolating = running_as_root()
    users_file = hub_dir / "users.yaml"
    ensure_demo_users(users_file, hub_dir / "demo-passwords.txt")
    c.JupyterHub.authenticator_class = "jupyter_mlplat.hub.authenticator.MlplatFileAuthenticator"
    c.MlplatFileAuthenticator.users_file = str(users_file)
    # Who may log in is decided by the users file (check_allowed), not allow lists.
    c.Authenticator.any_allow_config = True
    c.JupyterHub.spawner_class = MlplatLocalSpawner
    # Spawner knobs may come from $MLPLAT_HOME/mlplat_config.py too; the hub config wins.
    own = Config()
    own.merge(settings.config)
    for key, value in own.MlplatLocalSpawner.items():
        if key not in c.MlplatLocalSpawner:
            c.MlplatLocalSpawner[key] = value
    c.MlplatLocalSpawner.profiles_dir = hub.profiles_dir
    c.MlplatLocalSpawner.feature_repo = settings.feature_repo
    if isolating:
        # Users cannot read the data dir: each home gets its own kernel config.
        c.Spawner.environment = env
    else:
        if "home_dir_template" not in c.MlplatLocalSpawner:
            c.MlplatLocalSpawner.home_dir_template = str(
                Path(settings.home) / "users" / "{username}"
            )
        c.Spawner.environment = {**env, "IPYTHONDIR": str(Path(settings.home) / "ipython")}
        template_vars = dict(c.JupyterHub.template_vars) if "template_vars" in c.JupyterHub else {}
        c.JupyterHub.template_vars = {
            **template_vars,
            "announcement": shared_account_announcement(),
        }
    c.Spawner.default_url = "/lab"
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 120


def _configure_kubernetes(c, profiles, env: dict) -> None:
    """KubeSpawner with per-user team profiles; OAuth/OIDC login whose groups become teams.

    The OIDC provider is configured in the chart (``hub.config.GenericOAuthenticator``:
    client id/secret, authorize/token/userdata URLs); groups come from the ``groups``
    claim (``claim_groups_key``) and are managed by the authenticator, so a claim value
    ``team-churn`` makes the user a member of team ``churn``.
    """
    from ..profiles.render import kubespawner_profile_list

    def profile_list(spawner):
        groups = [g.name for g in spawner.user.groups]
        return kubespawner_profile_list(profiles, groups=groups)

    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    c.KubeSpawner.profile_list = profile_list
    c.KubeSpawner.environment = env
    c.KubeSpawner.enable_user_namespaces = False
    c.JupyterHub.authenticator_class = "generic-oauth"
    c.GenericOAuthenticator.manage_groups = True
    c.GenericOAuthenticator.claim_groups_key = "groups"
    c.GenericOAuthenticator.allowed_groups = sorted(profiles.known_groups())
    c.GenericOAuthenticator.scope = ["openid", "profile", "email", "groups"]
