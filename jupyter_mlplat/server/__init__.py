"""Jupyter Server extension: REST endpoints for the JupyterLab side panel."""

from __future__ import annotations


def _load_jupyter_server_extension(serverapp) -> None:
    from .handlers import setup_handlers

    setup_handlers(serverapp.web_app)
    serverapp.log.info("jupyter_mlplat server extension loaded at /mlplat/api")
