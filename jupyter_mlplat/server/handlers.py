"""Handlers under ``<base_url>/mlplat/api``: HTTP in, the async platform client, JSON out.

``status`` answers what the kernel-side ``%mlplat status`` says. Every declared
platform endpoint (:data:`jupyter_mlplat.application.ENDPOINTS`) is also served here
at the same path (``api/approvals`` → ``mlplat/api/approvals``) for the side panel:
the handler only translates the request to :class:`~jupyter_mlplat.client.AsyncPlatformClient`
(which never blocks the server's event loop, and calls the platform with this server's
user's token, so the platform decides on that user) and maps errors with the one error
table. Every handler is authenticated and authorized, on the resource
``mlplat:<area>`` (``mlplat:runs``, ``mlplat:governance``, ``mlplat:serving``,
``mlplat:jobs``, ``mlplat:pipelines``, ``mlplat:core``; ``mlplat:status``) with the
method's action (``read`` for GET, ``write`` for POST), and, being an ``APIHandler``,
refuses cookie-authenticated writes without the XSRF token.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from ..errors import MlplatError, UsageError

AUTH_PREFIX = "mlplat"


class MlplatHandler(APIHandler):
    """Errors of the error table as ``{"error", "code"}`` with their status."""

    auth_resource = f"{AUTH_PREFIX}:status"

    def write_mlplat_error(self, exc: MlplatError) -> None:
        self.set_status(exc.http_status)
        self.finish(json.dumps({"error": str(exc), "code": exc.code}))


class StatusHandler(MlplatHandler):
    """``GET /mlplat/api/status``: identity, teams and backends as the server sees them."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        from .. import fluent

        status = await asyncio.to_thread(fluent.status)
        self.finish(json.dumps(dataclasses.asdict(status)))


class PlatformHandler(MlplatHandler):
    """One path of the platform's API, each HTTP method an endpoint, via the async client."""

    def initialize(self, endpoints: dict) -> None:
        self.endpoints = endpoints

    def _client(self):
        client = self.settings.get("mlplat_client")
        if client is None:
            from ..client import AsyncPlatformClient

            client = self.settings["mlplat_client"] = AsyncPlatformClient()
        return client

    async def _serve(self, **path_args) -> None:
        endpoint = self.endpoints.get(self.request.method)
        if endpoint is None:
            raise web.HTTPError(405)
        try:
            if endpoint.method == "GET":
                # A bare `&1764…` (a browser cache buster) or the server's own `token` is not
                # a field of the request; anything else unknown is refused by the model.
                data = {
                    k: value
                    for k in self.request.query_arguments
                    if k != "token" and (value := self.get_query_argument(k)) != ""
                }
            else:
                data = json.loads(self.request.body or b"{}")
                if not isinstance(data, dict):
                    raise UsageError("The request body must be a JSON object.")
            result = await getattr(self._client(), endpoint.name)(**data, **path_args)
        except TypeError as exc:
            self.write_mlplat_error(UsageError(f"Invalid request: {exc}."))
            return
        except ValueError:
            self.write_mlplat_error(UsageError("The request body is not JSON."))
            return
        except MlplatError as exc:
            self.write_mlplat_error(exc)
            return
        self.set_status(endpoint.status)
        self.finish(result.model_dump_json())


_HANDLERS: dict[str, type[PlatformHandler]] = {}


def handler_for(area: str) -> type[PlatformHandler]:
    """The handler class of one area, authorized on ``mlplat:<area>``. One class each, with
    its own decorated methods: ``@authorized`` keeps the first resource it reads from
    ``self.auth_resource`` for good, so one class shared by areas would ask about one."""
    if area not in _HANDLERS:
        resource = f"{AUTH_PREFIX}:{area}"

        class AreaHandler(PlatformHandler):
            auth_resource = resource

            @web.authenticated
            @authorized(resource=resource)
            async def get(self, **path_args) -> None:
                await self._serve(**path_args)

            @web.authenticated
            @authorized(resource=resource)
            async def post(self, **path_args) -> None:
                await self._serve(**path_args)

        AreaHandler.__name__ = AreaHandler.__qualname__ = f"{area.title()}Handler"
        _HANDLERS[area] = AreaHandler
    return _HANDLERS[area]


def handler_specs() -> list[tuple]:
    """``(pattern, handler, kwargs)`` for every path, below the server's base URL."""
    from ..application import ENDPOINTS

    by_path: dict[str, dict] = {}
    for endpoint in ENDPOINTS.values():
        if not endpoint.public:
            by_path.setdefault(endpoint.pattern, {})[endpoint.method] = endpoint
    specs: list[tuple] = [(url_path_join("/mlplat", "api", "status"), StatusHandler)]
    for pattern, endpoints in by_path.items():
        (area,) = {e.area for e in endpoints.values()}
        specs.append(
            (url_path_join("/mlplat", pattern), handler_for(area), {"endpoints": endpoints})
        )
    return specs
