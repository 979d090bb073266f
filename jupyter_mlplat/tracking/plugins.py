"""Keep MLflow's first request from importing all of Feast.

Feast registers an ``mlflow.request_header_provider`` entry point. MLflow loads
every such plugin on its first HTTP request, and loading Feast's imports the
whole ``feast`` package (about 9 s here). The provider only adds a header while
Feast itself has set a token, which needs Feast imported anyway, so we register a
stand-in that delegates to Feast's provider once Feast is loaded.
"""

from __future__ import annotations

import sys

_FEAST_AUTH_MODULE = "feast.infra.data_sources.mlflow.auth"


class DeferredFeastHeaderProvider:
    """Feast's MLflow header provider, consulted only when Feast is already imported."""

    def _delegate(self):
        module = sys.modules.get(_FEAST_AUTH_MODULE)
        return module.FeastMLflowHeaderProvider() if module is not None else None

    def in_context(self) -> bool:
        delegate = self._delegate()
        return bool(delegate and delegate.in_context())

    def request_headers(self) -> dict[str, str]:
        delegate = self._delegate()
        return delegate.request_headers() if delegate else {}


def defer_feast_header_provider() -> None:
    """Load MLflow's header-provider registry without importing Feast (idempotent)."""
    if "mlflow.tracking.request_header.registry" in sys.modules:
        return
    import mlflow.utils.plugins as plugins

    original = plugins._get_entry_points

    def without_feast(group: str):
        points = original(group)
        if group != "mlflow.request_header_provider":
            return points
        return [point for point in points if not point.value.startswith(_FEAST_AUTH_MODULE)]

    plugins._get_entry_points = without_feast
    try:
        from mlflow.tracking.request_header import registry
    finally:
        plugins._get_entry_points = original
    if any(
        p.value.startswith(_FEAST_AUTH_MODULE) for p in original("mlflow.request_header_provider")
    ):
        registry._request_header_provider_registry.register(DeferredFeastHeaderProvider)


# ---- telling autologged models from the ones users log themselves ----

# Tag on LoggedModels (and runs) created while an MLflow autologging integration is
# running, holding the integration's name ("sklearn"). MLflow 3 itself marks neither: an
# autologged and an explicit ``mlflow.sklearn.log_model(m, name="model")`` get the same
# tags and params, so registration could not tell them apart.
AUTOLOGGED_TAG = "mlplat.autologged"
_SAFETY_MODULE = "mlflow.utils.autologging_utils.safety"


class AutologgedModelContext:
    """An MLflow run-context provider: ``mlplat.autologged=<integration>`` while an
    autologging session is active (MLflow resolves these tags for every new LoggedModel
    and run)."""

    def _session(self):
        module = sys.modules.get(_SAFETY_MODULE)
        manager = getattr(module, "_AutologgingSessionManager", None)
        return manager.active_session() if manager is not None else None

    def in_context(self) -> bool:
        return self._session() is not None

    def tags(self) -> dict[str, str]:
        session = self._session()
        if session is None:
            return {}
        return {AUTOLOGGED_TAG: str(getattr(session, "integration", "") or "autolog")}


def mark_autologged_models() -> None:
    """Register :class:`AutologgedModelContext` with MLflow (idempotent)."""
    from mlflow.tracking.context import registry

    providers = registry._run_context_provider_registry
    if not any(isinstance(p, AutologgedModelContext) for p in providers):
        providers.register(AutologgedModelContext)
