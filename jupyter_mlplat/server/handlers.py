"""Handlers under ``<base_url>/mlplat/api``: HTTP in, the async platform client, JSON out.

``status`` answers what the kernel-side ``%mlplat status`` says. Every declared
platform endpoint (:data:`jupyter_mlplat.application.ENDPOINTS`) is also served here
at the same path (``api/approvals`` → ``mlplat/api/approvals``) for the side panel:
the handler only translates the request to :class:`~jupyter_mlplat.client.AsyncPlatformClient`
(which never blocks the server's event loop) and maps errors with the one error table.
Every handler is authenticated and authorized (``mlplat`` resource) and, being an
``APIHandler``, refuses cookie-authenticated writes without the XSRF token.
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

AUTH_RESOURCE = "mlplat"


class MlplatHandler(APIHandler):
    """Errors of the error table as ``{"error", "code"}`` with their status."""

    auth_resource = AUTH_RESOURCE

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
                data = {k: self.get_query_argument(k) for k in self.request.query_arguments}
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

    @web.authenticated
    @authorized
    async def get(self, **path_args) -> None:
        await self._serve(**path_args)

    @web.authenticated
    @authorized
    async def post(self, **path_args) -> None:
        await self._serve(**path_args)


def setup_handlers(web_app) -> None:
    from ..application import ENDPOINTS

    base = url_path_join(web_app.settings["base_url"], "mlplat")
    by_path: dict[str, dict] = {}
    for endpoint in ENDPOINTS.values():
        if not endpoint.public:
            by_path.setdefault(endpoint.pattern, {})[endpoint.method] = endpoint
    handlers = [(url_path_join(base, "api", "status"), StatusHandler)]
    handlers += [
        (url_path_join(base, pattern), PlatformHandler, {"endpoints": endpoints})
        for pattern, endpoints in by_path.items()
    ]
    web_app.add_handlers(".*$", handlers)
