"""The ``mlplat-hub`` MLflow app: MLflow's authorization app with hub identity.

Registered as the ``mlflow.app`` entry point ``mlplat-hub``; the hub starts
``mlflow server --app-name mlplat-hub`` with ``MLFLOW_AUTH_CONFIG_PATH`` naming an ini whose
``authorization_function`` is :func:`authenticate` and whose ``default_permission`` is
``NO_PERMISSIONS``. MLflow's own validators then decide every route (REST ``api/``,
``ajax-api/``, the artifact proxy, ``get-artifact``; searches are filtered) from the grants
in :mod:`.grants`; :mod:`.rules` adds what only the platform may do.

Browsers (the MLflow UI opened from Lab) log in through the hub: a page request without a
token is sent to the hub's OAuth authorize URL and comes back to ``oauth_callback``, which
stores the hub token in an HttpOnly cookie for this service's path only.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import threading
import time
from urllib.parse import urlencode

from flask import Response, g, redirect, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.datastructures import Authorization

from ..settings import get_settings
from . import TOKEN_COOKIE, rules
from .grants import Grants
from .hub_identity import HubUnavailable, TokenChecker, token_from

log = logging.getLogger(__name__)

STATE_COOKIE = "mlplat-mlflow-oauth-state"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
RECONCILE_MIN_SECONDS = 5.0

_state: dict = {}


def _checker() -> TokenChecker:
    return _state["checker"]


def current_user():
    """The caller of this request (checked once per request), or None."""
    if "mlplat_user" in g:
        return g.mlplat_user
    token, from_cookie = token_from(
        request.headers.get("Authorization", ""), request.cookies.get(TOKEN_COOKIE)
    )
    g.mlplat_from_cookie = from_cookie
    g.mlplat_user = _checker().user_for(token)
    return g.mlplat_user


def authenticate():
    """MLflow's ``authorization_function``: the hub user of the request, or a 401."""
    try:
        user = current_user()
    except HubUnavailable as exc:
        return _error(503, "TEMPORARILY_UNAVAILABLE", f"{exc}; try again in a moment.")
    if user is None:
        return _error(
            401,
            "UNAUTHENTICATED",
            "MLflow here needs a JupyterHub token: set MLFLOW_TRACKING_TOKEN (in a "
            "single-user server it is $JUPYTERHUB_API_TOKEN), or open MLflow from the hub.",
        )
    return Authorization("bearer", {"username": user.name})


def _error(status: int, code: str, message: str) -> Response:
    return Response(
        json.dumps({"error_code": code, "message": message}),
        status=status,
        mimetype="application/json",
    )


def _prefix() -> str:
    return get_settings().service_prefix.rstrip("/")


def _is_page_request() -> bool:
    return (
        request.method == "GET"
        and "text/html" in request.headers.get("Accept", "")
        and rules.api_route(request.path) is None
    )


def _same_origin() -> bool:
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    return origin.split("://", 1)[-1] == request.host


def _login_redirect() -> Response:
    oauth = _state["oauth"]
    verifier, challenge, method = oauth.generate_pkce_code_challenge()
    state = secrets.token_urlsafe(16)
    next_url = request.full_path if request.query_string else request.path
    signed = _state["serializer"].dumps({"state": state, "next": next_url, "verifier": verifier})
    query = urlencode(
        {"state": state, "code_challenge": challenge, "code_challenge_method": method}
    )
    response = redirect(f"{oauth.login_url}&{query}")
    response.set_cookie(
        STATE_COOKIE, signed, max_age=600, httponly=True, samesite="Lax",
        path=f"{_prefix()}/", secure=request.is_secure,
    )  # fmt: skip
    return response


def _oauth_callback() -> Response:
    try:
        saved = _state["serializer"].loads(request.cookies.get(STATE_COOKIE, ""), max_age=600)
    except BadSignature:
        return _error(400, "BAD_REQUEST", "The hub login expired or was not started here; "
                      "open MLflow again from the hub.")  # fmt: skip
    if not hmac.compare_digest(str(request.args.get("state", "")), saved["state"]):
        return _error(400, "BAD_REQUEST", "The hub login answered for another login; "
                      "open MLflow again from the hub.")  # fmt: skip
    code = request.args.get("code", "")
    if not code:
        return _error(400, "BAD_REQUEST", "The hub login gave no code; open MLflow again.")
    try:
        token = _state["oauth"].token_for_code(code, code_verifier=saved["verifier"], sync=True)
    except Exception as exc:
        return _error(503, "TEMPORARILY_UNAVAILABLE", f"JupyterHub refused the login ({exc}).")
    prefix = _prefix()
    next_url = saved.get("next") or ""
    if not next_url.startswith(f"{prefix}/") or next_url.startswith("//"):
        next_url = f"{prefix}/"
    response = redirect(next_url)
    response.set_cookie(
        TOKEN_COOKIE, token, httponly=True, samesite="Lax", path=f"{prefix}/",
        secure=request.is_secure,
    )  # fmt: skip
    # The state cookie is left to expire: MLflow's ASGI bridge passes one Set-Cookie only,
    # and a state without a fresh code from the hub is worth nothing.
    return response


def _before_request():
    """Runs before MLflow's own check: hub login for pages, platform-only rules."""
    from mlflow.server.auth import is_unprotected_route

    path = request.path
    if path == f"{_prefix()}/oauth_callback":
        return _oauth_callback()
    if is_unprotected_route(path):
        return None
    try:
        user = current_user()
    except HubUnavailable as exc:
        return _error(503, "TEMPORARILY_UNAVAILABLE", f"{exc}; try again in a moment.")
    if user is None:
        if _is_page_request():
            return _login_redirect()
        return None  # MLflow's check calls authenticate(), which answers 401
    if g.mlplat_from_cookie and request.method not in SAFE_METHODS and not _same_origin():
        return _error(403, "PERMISSION_DENIED", "Cross-site requests to MLflow are refused; "
                      "use MLflow from the hub's own pages.")  # fmt: skip
    body = request.get_json(silent=True) if request.is_json else None
    objection = rules.objection(user, request.method, path, body, _experiment_name)
    if objection:
        return _error(403, "PERMISSION_DENIED", objection)
    return None


def _experiment_name(experiment_id: str) -> str:
    from mlflow.server.handlers import _get_tracking_store

    try:
        return _get_tracking_store().get_experiment(experiment_id).name
    except Exception:
        return ""


def _after_create_experiment(response) -> None:
    """Replaces MLflow's 'creator gets MANAGE': the experiment's team gets EDIT."""
    experiment_id = (response.json or {}).get("experiment_id")
    body = request.get_json(silent=True) or {}
    if experiment_id:
        _state["grants"].grant_experiment(str(experiment_id), str(body.get("name") or ""))


def _after_request(response):
    """A version the platform registers for team T makes the model readable by T."""
    if response.status_code < 400 and request.method == "POST":
        route = rules.api_route(request.path)
        user = g.get("mlplat_user")
        if route == "model-versions/create" and user is not None and user.platform:
            body = request.get_json(silent=True) or {}
            tags = {t.get("key"): t.get("value") for t in body.get("tags") or []}
            _state["grants"].grant_model(str(body.get("name") or ""), tags.get("mlplat.team", ""))
    return response


def _reconcile_forever(grants: Grants, every: float) -> None:
    from mlflow.server.handlers import _get_model_registry_store, _get_tracking_store

    while True:
        try:
            grants.reconcile(_get_tracking_store(), _get_model_registry_store())
        except Exception:
            log.exception("Could not reconcile MLflow grants with experiment names")
        time.sleep(every)


def create_app():
    """The app factory MLflow's ``--app-name mlplat-hub`` loads (one per worker)."""
    import mlflow.server.auth as mlflow_auth
    from jupyterhub.services.auth import HubOAuth
    from mlflow.server import app as flask_app

    settings = get_settings()
    grants = Grants(mlflow_auth.store)
    _state.update(
        grants=grants,
        checker=TokenChecker(settings, on_new_answer=grants.sync_user),
        oauth=HubOAuth(api_url=settings.hub_api_url, api_token=settings.hub_api_token),
        serializer=URLSafeTimedSerializer(
            mlflow_auth.get_flask_server_secret_key(), salt="mlplat-oauth"
        ),
    )
    for table in (
        mlflow_auth.AFTER_REQUEST_HANDLERS,
        mlflow_auth.PARAMETERIZED_AFTER_REQUEST_HANDLERS,
    ):
        for key, handler in list(table.items()):
            if handler is mlflow_auth.set_can_manage_experiment_permission:
                table[key] = _after_create_experiment
    served = mlflow_auth.create_app(flask_app)
    flask_app.before_request_funcs.setdefault(None, []).insert(0, _before_request)
    flask_app.after_request(_after_request)
    every = max(RECONCILE_MIN_SECONDS, float(settings.hub_cache_seconds))
    threading.Thread(
        target=_reconcile_forever, args=(grants, every), name="mlplat-grants", daemon=True
    ).start()
    return served
