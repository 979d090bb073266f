"""The application layer: what the platform does, one class per area, outside HTTP.

The platform service (:mod:`jupyter_mlplat.service`) and the client's in-process
transport (:mod:`jupyter_mlplat.client`) both call :meth:`Platform.call`; the
endpoint declarations of every area (:data:`ENDPOINTS`) are the one source for the
service's routes and the clients' methods. To add an area: a module here with an
:class:`~.endpoints.Area` subclass, listed in :data:`AREAS`.
"""

from __future__ import annotations

from ..api.base import ApiModel
from ..settings import MlplatSettings
from .core import CoreArea
from .endpoints import Area, Context, Endpoint, endpoint, parse_request
from .governance import GovernanceArea
from .jobs import JobsArea
from .pipelines import PipelinesArea
from .runs import RunsArea
from .serving import ServingArea

AREAS: tuple[type[Area], ...] = (
    CoreArea, GovernanceArea, ServingArea, JobsArea, PipelinesArea, RunsArea,
)  # fmt: skip
ENDPOINTS: dict[str, Endpoint] = {ep.name: ep for area in AREAS for ep in area.endpoints}


class Platform:
    """Every area for one settings object (one per process), sharing its backends."""

    def __init__(self, settings: MlplatSettings):
        from .resources import Resources

        self.settings = settings
        self.resources = Resources(settings)
        self.areas = {cls.name: cls(settings, self.resources) for cls in AREAS}

    def call(self, name: str, context: Context | None, request: ApiModel) -> ApiModel:
        """Run endpoint ``name`` for ``context`` on an already validated ``request``."""
        endpoint_ = ENDPOINTS[name]
        return getattr(self.areas[endpoint_.area], name)(context, request)

    def state_counts(self):
        """Job runs, approval requests and deployments by state (for /metrics)."""
        from ..store.counts import state_counts

        return state_counts(self.resources.store)

    def parse(self, name: str, data: dict) -> ApiModel:
        """``data`` validated as the request of endpoint ``name`` under these settings."""
        return parse_request(ENDPOINTS[name], data, max_text_bytes=self.settings.max_text_bytes)


__all__ = ["AREAS", "ENDPOINTS", "Area", "Context", "Endpoint", "Platform", "endpoint"]
