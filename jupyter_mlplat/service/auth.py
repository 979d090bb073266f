"""JupyterHub token authentication and identity for the platform service.

Every request must carry a JupyterHub token in ``Authorization: token <token>``
(``bearer`` works too); tokens in the URL are ignored. The token is checked with
the Hub through :class:`jupyterhub.services.auth.HubAuth`:

- no token, or a token the Hub does not recognise      → 401
- a valid token without ``access:services!service=<name>`` → 403

The caller's teams and roles come from their JupyterHub groups (see
:func:`jupyter_mlplat.identity.identity_from_hub_model`). A user's server token
usually may not read its own groups; then the service looks the user up with its
own token (``GET /hub/api/users/<name>``, scope ``read:users:groups``).

Revocation within one bound: the Hub's answer about a token and the owner's groups are
fetched together and cached together, per token, for ``MlplatSettings.hub_cache_seconds``
(counted from before the Hub was asked), and nowhere else on this path (HubAuth's own
cache is off). So a group change (removed from ``mlplat-reviewers``), a revoked token or a
deleted user (whose tokens the Hub deletes) takes effect for the service within that
bound; ``0`` asks the Hub on every request. Refusals are never cached.
"""

from __future__ import annotations

import hashlib
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
            # Off: HubAuth's 0 means "forever", and its cache would hold a token's answer
            # apart from the groups; both are cached below, together, for one bound.
            cache_max_age=0,
        )
        self.ttl = max(0.0, float(settings.hub_cache_seconds))
        # sha256(token) -> (monotonic expiry, the Hub's model of its owner, groups resolved)
        self._models: dict[bytes, tuple[float, dict]] = {}

    def forget(self) -> None:
        """Drop every cached answer (the next request of each token asks the Hub)."""
        self._models.clear()

    @staticmethod
    def token_from(headers: HTTPHeaders) -> str:
        match = HubAuth.auth_header_pat.match(headers.get("Authorization", ""))
        return match.group(1).strip() if match else ""

    async def hub_model(self, headers: HTTPHeaders) -> dict:
        """The Hub's model of the token's owner (with the token's ``scopes`` and, for a
        user, ``groups``), at most ``hub_cache_seconds`` old."""
        token = self.token_from(headers)
        if not token:
            raise Unauthenticated(
                "Send a JupyterHub token in the header 'Authorization: token <token>' "
                "(in a single-user server it is $JUPYTERHUB_API_TOKEN).",
            )
        key = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        asked = time.monotonic()
        hit = self._models.get(key)
        if hit is not None and hit[0] > asked:
            return hit[1]
        try:
            model = await self.hub_auth.user_for_token(token, use_cache=False, sync=False)
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
        if (model.get("kind") or "user") == "user" and "groups" not in model:
            model = {**model, "groups": await self.user_groups(model)}
        if self.ttl > 0:
            if len(self._models) >= 10_000:
                self._models = {k: v for k, v in self._models.items() if v[0] > asked}
            self._models[key] = (asked + self.ttl, model)
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
        groups = list(model.get("groups") or ()) if kind == "user" else []
        identity = identity_from_hub_model(
            {"name": model["name"], "kind": kind, "groups": groups}, self.settings
        )
        return Caller(identity=identity, kind=kind, scopes=scopes)

    async def user_groups(self, model: dict) -> list[str]:
        """A user's groups, looked up now with the service's own token (a user deleted
        since the token was checked has none)."""
        name = model["name"]
        url = f"{self.settings.hub_api_url.rstrip('/')}/users/{quote(name, safe='')}"
        try:
            response = await AsyncHTTPClient().fetch(
                url,
                headers={"Authorization": f"token {self.settings.hub_api_token}"},
                request_timeout=10,
            )
        except HTTPClientError as exc:
            if exc.code == 404:
                raise Unauthenticated(
                    f"JupyterHub no longer knows the user {name!r} (deleted); ask a platform "
                    "admin to add them again.",
                ) from exc
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
        return groups
