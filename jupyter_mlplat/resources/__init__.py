"""Files shipped inside the package: default team profiles, the hub config, examples.

The checkout's ``spawner_profiles/``, ``example_notebooks/`` and
``hub_config/jupyterhub_config.py`` are links to these, so an installed wheel and the
repository read the same files.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def resource_path(name: str) -> Path:
    """The path of a shipped file or folder (``"spawner_profiles"``, ``"jupyterhub_config.py"``)."""
    return Path(str(files(__name__).joinpath(name)))


def default_profiles_dir() -> Path:
    return resource_path("spawner_profiles")


def hub_config_file() -> Path:
    return resource_path("jupyterhub_config.py")


def example_notebooks_dir() -> Path:
    return resource_path("example_notebooks")
