"""Who sent a request to MLflow: a JupyterHub token checked with the Hub, cached briefly.

The answer about a token (its owner, their groups) is kept for
``MlplatSettings.hub_cache_seconds``, so a revoked token, a deleted user or a group change
reaches MLflow within that time; a token is never trusted longer.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote

import requests
from jupyterhub.services.auth import HubAuth, check_scopes

from ..identity import ROLE_ADMIN, ROLE_REVIEWER, identity_from_hub_model
from ..settings import MlplatSettings
from . import PLATFORM_USER


class HubUnavailable(Exception):
    """JupyterHub could not be asked about a token (503)."""


@dataclass(frozen=True)
class HubUser:
    """A caller as MLflow's grants need it."""

    name: str
    teams: tuple[str, ...]
    reader: bool  # reviewers and admins read every experiment and model
    platform: bool = False


PLATFORM = HubUser(PLATFORM_USER, (), True, platform=True)


class TokenChecker:
    """Turns a bearer token into a :class:`HubUser`, or ``None`` when nobody holds it."""

    def __init__(self, settings: MlplatSettings, *, on_new_answer=None):
        self.settings = settings
        self.ttl = max(0.0, float(settings.hub_cache_seconds))
        self.access_scope = f"access:services!service={settings.service_name}"
        self.hub_auth = HubAuth(
            api_url=settings.hub_api_url,
            api_token=settings.hub_api_token,
            cache_max_age=0,  # cached here, with the groups, for one bound
        )
        # Called with each HubUser the Hub vouched for (outside the cache): grants follow.
        self.on_new_answer = on_new_answer
        self._cache: dict[bytes, tuple[float, HubUser | None]] = {}
        self._lock = threading.Lock()

    def user_for(self, token: str) -> HubUser | None:
        if not token:
            return None
        platform = self.settings.mlflow_platform_token
        if platform and hmac.compare_digest(token.encode(), platform.encode()):
            return PLATFORM
        key = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit and hit[0] > now:
            return hit[1]
        user = self._ask_hub(token)
        if user is not None and self.on_new_answer is not None:
            self.on_new_answer(user)
        if self.ttl > 0:
            with self._lock:
                if len(self._cache) >= 10_000:
                    self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                self._cache[key] = (now + self.ttl, user)
        return user

    def _ask_hub(self, token: str) -> HubUser | None:
        try:
            model = self.hub_auth.user_for_token(token, use_cache=False, sync=True)
        except Exception as exc:  # tornado HTTPError or a connection error
            raise HubUnavailable(f"JupyterHub could not check the token ({exc})") from exc
        if not model or model.get("kind", "user") != "user":
            return None
        if not check_scopes({self.access_scope}, set(model.get("scopes") or ())):
            return None
        if model["name"] == PLATFORM_USER:
            return None  # that MLflow name belongs to the platform, never to a hub user
        groups = model["groups"] if "groups" in model else self._groups(model["name"])
        identity = identity_from_hub_model(
            {"name": model["name"], "kind": "user", "groups": groups}, self.settings
        )
        reader = identity.has_role(ROLE_REVIEWER) or identity.has_role(ROLE_ADMIN)
        return HubUser(identity.user, tuple(identity.teams), reader)

    def _groups(self, name: str) -> list[str]:
        url = f"{self.settings.hub_api_url.rstrip('/')}/users/{quote(name, safe='')}"
        try:
            response = requests.get(
                url, headers={"Authorization": f"token {self.settings.hub_api_token}"}, timeout=10
            )
        except requests.RequestException as exc:
            raise HubUnavailable(f"JupyterHub is unreachable ({exc})") from exc
        if response.status_code == 404:
            return []
        if response.status_code != 200 or "groups" not in response.json():
            raise HubUnavailable(
                f"JupyterHub refused the MLflow service the groups of {name!r} "
                f"(HTTP {response.status_code}); grant it the scope read:users:groups"
            )
        return response.json()["groups"]


def token_from(authorization: str, cookie: str | None) -> tuple[str, bool]:
    """The token of a request and whether it came from the cookie (``Bearer``/``token``
    header first)."""
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip(), False
    if cookie:
        return cookie, True
    return "", False
