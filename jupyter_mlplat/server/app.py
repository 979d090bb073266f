"""The server extension as an ``ExtensionApp`` (named ``jupyter_mlplat``).

Enabled by the ``jupyter-config`` file the wheel installs
(``etc/jupyter/jupyter_server_config.d/jupyter_mlplat.json``); its handlers come from
:func:`.handlers.handler_specs`, one per path of the platform's declared endpoints.
"""

from __future__ import annotations

from jupyter_server.extension.application import ExtensionApp


class MlplatExtension(ExtensionApp):
    """Serves ``<base_url>/mlplat/api/…`` from the user's own Jupyter server."""

    name = "jupyter_mlplat"
    description = "REST endpoints of the jupyter-mlplat side panel"
    load_other_extensions = True

    def initialize_handlers(self) -> None:
        from .handlers import handler_specs

        self.handlers.extend(handler_specs())

    def initialize_settings(self) -> None:
        self.log.info("jupyter_mlplat: the side panel's API is at /mlplat/api")
