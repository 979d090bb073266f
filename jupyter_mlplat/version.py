"""The package version (one place; the root package and the service report it)."""

__version__ = "0.1.0"
