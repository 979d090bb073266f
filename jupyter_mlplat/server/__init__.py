"""Jupyter Server extension: the side panel's REST endpoints under ``/mlplat/api``."""

from __future__ import annotations

from .app import MlplatExtension

__all__ = ["MlplatExtension"]
