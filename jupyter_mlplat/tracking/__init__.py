"""MLflow tracking: team-scoped experiments, runs with provenance, batched metrics."""

from .connection import check_reachable, forget_health
from .runs import ExperimentInfo, LogResult, RunInfo, Tracker

__all__ = ["ExperimentInfo", "LogResult", "RunInfo", "Tracker", "check_reachable", "forget_health"]
