"""Feast features for notebooks: the churn demo repo and online / historical retrieval.

Importing this package does not import Feast (it takes seconds); Feast is loaded on the
first retrieval or when the demo repo is created.
"""

from .catalog import FeatureRepoUnavailable, parse_refs
from .retrieval import (
    FeatureResult,
    FeatureRetriever,
    clear_retrievers,
    get_features,
    get_retriever,
)

__all__ = [
    "FeatureRepoUnavailable",
    "FeatureResult",
    "FeatureRetriever",
    "clear_retrievers",
    "create_demo_repo",
    "get_features",
    "get_retriever",
    "parse_refs",
]


def __getattr__(name: str):
    # Imported on demand so that `python -m jupyter_mlplat.features.demo_repo` does not find
    # its own module already imported by this package.
    if name == "create_demo_repo":
        from .demo_repo import create_demo_repo

        return create_demo_repo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
