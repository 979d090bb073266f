"""The hub's configuration on Kubernetes, inside the Zero to JupyterHub chart.

The chart (``helm/mlplat``) runs the hub image with jupyter-mlplat installed and adds this
to ``hub.extraConfig`` after the profile filter (see :data:`EXTRA_CONFIG`)::

    configure(c, namespace=os.environ["POD_NAMESPACE"], groups=get_config("custom.mlplat.groups"))

It registers the platform service and MLflow (run by the chart as their own Deployments,
so the hub only proxies to them), the roles the embedded hub gives them, the single-user
environment, and OIDC login whose ``groups`` claim becomes hub groups (teams). z2jh's own
settings (database, proxy, culler, KubeSpawner's image and storage) are left as they are.
"""

from __future__ import annotations

from collections.abc import Iterable

from traitlets import Unicode
from traitlets.config import Configurable

from ..errors import UsageError
from ..settings import MlplatSettings, get_settings
from .config import MLFLOW_SERVICE, SERVER_TOKEN_SCOPES, SERVICE_NAME, platform_roles

EXTRA_CONFIG_KEY = "mlplat-hub.py"
EXTRA_CONFIG = """\
# jupyter-mlplat's hub configuration (jupyter_mlplat.hub.z2jh): the platform service and
# MLflow, their roles, the single-user environment and OIDC groups as teams.
import os

from jupyter_mlplat.hub.z2jh import configure as _mlplat_configure

_mlplat_configure(
    c,
    namespace=os.environ["POD_NAMESPACE"],
    groups=get_config("custom.mlplat.groups", []),
)
"""


class MlplatKubeHub(Configurable):
    """Where the hub finds the platform's services in the cluster (``hub.config`` in values)."""

    platform_url = Unicode(
        "http://mlplat-platform:8080",
        config=True,
        help="""The platform service's in-cluster URL, as the hub reaches it (the chart's
        Service <fullname>-platform). Example: c.MlplatKubeHub.platform_url =
        "http://mlplat-platform:8080" """,
    )
    mlflow_url = Unicode(
        "http://mlplat-mlflow:5000",
        config=True,
        help="""MLflow's in-cluster URL, as the hub reaches it (the chart's Service
        <fullname>-mlflow). Example: c.MlplatKubeHub.mlflow_url = "http://mlplat-mlflow:5000" """,
    )
    proxy_url = Unicode(
        "",
        config=True,
        help="""The hub's proxy as users' pods (in the team namespaces) reach it; empty:
        http://proxy-public.<hub namespace>.svc.cluster.local. Kernels reach the platform
        and MLflow only through it, with their own tokens. Example:
        c.MlplatKubeHub.proxy_url = "http://proxy-public.jhub.svc.cluster.local" """,
    )


def configure(
    c,
    *,
    namespace: str,
    groups: Iterable[str],
    settings: MlplatSettings | None = None,
) -> None:
    """Add the platform to a z2jh hub's config ``c`` (from ``hub.extraConfig``)."""
    settings = settings or get_settings()
    knobs = MlplatKubeHub(config=c)
    missing = [
        env
        for env, value in (
            ("MLPLAT_SERVICE_TOKEN", settings.service_token),
            ("MLPLAT_MLFLOW_SERVICE_TOKEN", settings.mlflow_service_token),
        )
        if not value
    ]
    if missing:
        raise UsageError(
            f"The hub has no {' or '.join(missing)}: the chart sets them from its Secret "
            "(keys platform-token and mlflow-token); create that Secret as NOTES.txt says."
        )
    base_url = c.JupyterHub.get("base_url", "/") if "JupyterHub" in c else "/"
    base = base_url.rstrip("/")
    proxy = (knobs.proxy_url or f"http://proxy-public.{namespace}.svc.cluster.local").rstrip("/")

    _register_service(
        c,
        name=SERVICE_NAME,
        url=knobs.platform_url,
        token=settings.service_token,
        display=True,
    )
    _register_service(
        c,
        name=MLFLOW_SERVICE,
        url=knobs.mlflow_url,
        token=settings.mlflow_service_token,
        display=True,
        # The UI logs in with the hub (OAuth) without a confirmation page.
        oauth_no_confirm=True,
    )
    ours = {role["name"] for role in platform_roles()}
    roles = [r for r in (c.JupyterHub.get("load_roles") or []) if r.get("name") not in ours]
    c.JupyterHub.load_roles = [*roles, *platform_roles()]
    c.Spawner.server_token_scopes = list(SERVER_TOKEN_SCOPES)

    tracking = f"{proxy}{base}/services/{MLFLOW_SERVICE}"
    environment = dict(c.KubeSpawner.get("environment") or {})
    environment.update(
        {
            "MLPLAT_MODE": "kubernetes",
            "MLPLAT_TRACKING_URI": tracking,
            "MLFLOW_TRACKING_URI": tracking,
            # MLflow clients send it as 'Authorization: Bearer': the server's own hub token.
            "MLFLOW_TRACKING_TOKEN": _server_token,
            "MLPLAT_SERVICE_URL": f"{proxy}{base}/services/{SERVICE_NAME}",
            "MLPLAT_TRACKING_UI_URL": f"{base}/services/{MLFLOW_SERVICE}",
        }
    )
    c.KubeSpawner.environment = environment

    allowed = sorted(set(groups))
    if not allowed:
        raise UsageError(
            "custom.mlplat.groups is empty: render the profiles into the values with "
            "`mlplat profiles render --format helm-values` so the hub knows the teams."
        )
    c.JupyterHub.authenticator_class = "generic-oauth"
    c.GenericOAuthenticator.manage_groups = True
    c.GenericOAuthenticator.claim_groups_key = "groups"
    c.GenericOAuthenticator.allowed_groups = allowed
    if "scope" not in c.GenericOAuthenticator:
        c.GenericOAuthenticator.scope = ["openid", "profile", "email", "groups"]


def _register_service(c, *, name: str, url: str, token: str, **extra) -> None:
    """Our entry for service ``name``: z2jh's ``hub.services`` entry updated, or a new one.

    z2jh gives a service without ``apiToken`` a generated one; ours comes from the chart's
    Secret instead, so the platform's Deployment and the hub agree on it."""
    services = list(c.JupyterHub.get("services") or [])
    entry = next((s for s in services if s.get("name") == name), None)
    if entry is None:
        entry = {"name": name}
        services.append(entry)
    entry.setdefault("url", url)
    entry["api_token"] = token
    for key, value in extra.items():
        entry.setdefault(key, value)
    c.JupyterHub.services = services


def _server_token(spawner) -> str:
    return spawner.api_token
