"""JupyterHub token authentication and identity for the platform service.

Every request must carry a JupyterHub token in ``Authorization: token <token>``
(``bearer`` works too); tokens in the URL are ignored. The token is checked with
the Hub through :class:`jupyterhub.services.auth.HubAuth`:

- no token, or a token the Hub does not recognise      → 401
- a valid token without ``access:services!service=<name>`` → 403

The caller's teams and roles come from their JupyterHub groups (see
:func:`jupyter_mlplat.identity.identity_from_hub_model`). A user's server token
usually may not read its own groups; then the service looks the user up with its
own token (``GET /hub/api/users/<name>``, scope ``read:users:groups``). Both the
Hub's answer about a token and a user's groups are cached for
``MlplatSettings.hub_cache_seconds``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from urllib.parse import quote

from jupyterhub.services.auth import HubAuth, check_scopes
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.httputil import HTTPHeaders
from tornado.web import HTTPError

from ..errors import MlplatError, PermissionDenied, ServiceUnavailable, Unauthenticated
from ..identity import ROLE_ADMIN, Identity, identity_from_hub_model
from ..settings import MlplatSettings


class HubMisconfigured(MlplatError):
    """JupyterHub answered, but refuses the platform service what it needs (500)."""


@dataclass(frozen=True)
class Caller:
    """Who sent a request: their identity, ``user`` or ``service``, and the token's scopes."""

    identity: Identity
    kind: str
    scopes: frozenset[str]

    def has_scope(self, scope: str) -> bool:
        return bool(check_scopes({scope}, set(self.scopes)))

    @property
    def is_admin(self) -> bool:
        return self.identity.has_role(ROLE_ADMIN)


class HubAuthenticator:
    """Turns the token of a request into a :class:`Caller`, asking JupyterHub."""

    def __init__(self, settings: MlplatSettings, hub_auth: HubAuth | None = None):
        self.settings = settings
        self.access_scope = f"access:services!service={settings.service_name}"
        self.hub_auth = hub_auth or HubAuth(
            api_url=settings.hub_api_url,
            api_token=settings.hub_api_token,
            base_url=settings.service_prefix,
            access_scopes={self.access_scope},
            cache_max_age=max(0, int(settings.hub_cache_seconds)),
        )
        self._groups: dict[str, tuple[float, list[str]]] = {}

    @staticmethod
    def token_from(headers: HTTPHeaders) -> str:
        match = HubAuth.auth_header_pat.match(headers.get("Authorization", ""))
        return match.group(1).strip() if match else ""

    async def hub_model(self, headers: HTTPHeaders) -> dict:
        """The Hub's model of the token's owner (with the token's ``scopes``)."""
        token = self.token_from(headers)
        if not token:
            raise Unauthenticated(
                "Send a JupyterHub token in the header 'Authorization: token <token>' "
                "(in a single-user server it is $JUPYTERHUB_API_TOKEN).",
            )
        try:
            model = await self.hub_auth.user_for_token(token, sync=False)
        except HTTPError as exc:
            raise ServiceUnavailable(
                f"JupyterHub at {self.settings.hub_api_url} could not check the token "
                f"({exc.get_message() or exc.status_code}); try again in a moment.",
            ) from exc
        if not model:
            raise Unauthenticated(
                "JupyterHub does not recognise this token (expired, revoked or mistyped); "
                "use $JUPYTERHUB_API_TOKEN or request a new token from the Hub.",
            )
        return model

    async def authenticate(self, headers: HTTPHeaders, *, require_access: bool = True) -> Caller:
        """The caller of a request; raises Unauthenticated (401), PermissionDenied (403) or
        ServiceUnavailable (503) otherwise."""
        model = await self.hub_model(headers)
        kind = model.get("kind") or "user"
        scopes = frozenset(model.get("scopes") or ())
        if require_access and not check_scopes({self.access_scope}, set(scopes)):
            raise PermissionDenied(
                f"This token of {kind} {model.get('name')!r} does not grant access to the "
                f"platform service; it needs the scope {self.access_scope}.",
            )
        groups: list[str] = []
        if kind == "user":
            groups = model["groups"] if "groups" in model else await self.user_groups(model)
        identity = identity_from_hub_model(
            {"name": model["name"], "kind": kind, "groups": groups}, self.settings
        )
        return Caller(identity=identity, kind=kind, scopes=scopes)

    async def user_groups(self, model: dict) -> list[str]:
        """A user's groups, looked up with the service's own token (cached)."""
        name = model["name"]
        cached = self._groups.get(name)
        now = time.monotonic()
        if cached and cached[0] > now:
            return cached[1]
        url = f"{self.settings.hub_api_url.rstrip('/')}/users/{quote(name, safe='')}"
        try:
            response = await AsyncHTTPClient().fetch(
                url,
                headers={"Authorization": f"token {self.settings.hub_api_token}"},
                request_timeout=10,
            )
        except HTTPClientError as exc:
            raise HubMisconfigured(
                f"JupyterHub refused to tell the platform service the groups of {name!r} "
                f"(HTTP {exc.code}); grant the service the scope read:users:groups.",
            ) from exc
        except OSError as exc:
            raise ServiceUnavailable(
                f"JupyterHub at {self.settings.hub_api_url} is unreachable ({exc}); "
                "try again in a moment.",
            ) from exc
        groups = json.loads(response.body).get("groups")
        if groups is None:
            raise HubMisconfigured(
                f"JupyterHub did not show the platform service the groups of {name!r}; "
                "grant the service the scope read:users:groups.",
            )
        if self.settings.hub_cache_seconds > 0:
            if len(self._groups) >= 10_000:
                self._groups = {k: v for k, v in self._groups.items() if v[0] > now}
            self._groups[name] = (now + self.settings.hub_cache_seconds, groups)
        return groups
