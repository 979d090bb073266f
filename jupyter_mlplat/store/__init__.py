"""Platform state in SQL: SQLAlchemy models and Alembic migrations (SQLite or PostgreSQL)."""

from __future__ import annotations

from .db import Store, get_store, reset_stores, safe_url, upgrade

__all__ = ["Store", "get_store", "reset_stores", "safe_url", "upgrade"]
