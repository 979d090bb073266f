"""Feast fixtures: the churn demo repo, created once per test session.

Import from conftest.py (``from tests.features_fixtures import *  # noqa``) or from a test
module. Feast is imported only when a fixture is first used.
"""

from __future__ import annotations

import pytest

__all__ = ["demo_feature_repo", "feast_store"]


@pytest.fixture(scope="session")
def demo_feature_repo(tmp_path_factory):
    """Path of a demo feature repo: files written, applied and materialized."""
    from jupyter_mlplat.features import create_demo_repo

    return create_demo_repo(tmp_path_factory.mktemp("features") / "feature_repo")


@pytest.fixture(scope="session")
def feast_store(demo_feature_repo):
    """Feast's own ``FeatureStore`` on the demo repo: the reference our results must match."""
    from feast import FeatureStore

    return FeatureStore(repo_path=str(demo_feature_repo))
