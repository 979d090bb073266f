"""Handlers under ``<base_url>/mlplat/api``: parse, call the fluent API, answer JSON."""

from __future__ import annotations

import asyncio
import dataclasses
import json

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

AUTH_RESOURCE = "mlplat"


class StatusHandler(APIHandler):
    """``GET /mlplat/api/status``: identity, teams and backends as the server sees them."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self) -> None:
        from .. import fluent

        status = await asyncio.to_thread(fluent.status)
        self.finish(json.dumps(dataclasses.asdict(status)))


def setup_handlers(web_app) -> None:
    base = url_path_join(web_app.settings["base_url"], "mlplat", "api")
    web_app.add_handlers(".*$", [(url_path_join(base, "status"), StatusHandler)])
