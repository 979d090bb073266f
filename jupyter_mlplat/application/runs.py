"""Experiments and runs of the caller's teams (the side panel's Runs tab).

MLflow is read with the platform's client; what a caller sees is decided by their teams
(from their token) and each experiment's name, in :mod:`..tracking.search`.
"""

from __future__ import annotations

from ..api.runs import (
    DescribeRun,
    DescribeRunById,
    DescribeRunNotebook,
    ListExperiments,
    ListExperimentsResponse,
    ListRuns,
    ListRunsResponse,
)
from .endpoints import Area, Context, endpoint


class RunsArea(Area):
    name = "runs"

    def _client(self):
        from ..governance.registry import _client

        return _client(self.settings)

    def _teams(self, context: Context, team: str | None = None) -> list[str]:
        from ..errors import PermissionDenied

        teams = list(context.identity.teams)
        if team is None:
            return teams
        if team not in teams:
            raise PermissionDenied(
                f"You are not a member of team {team!r}; your teams are "
                f"{', '.join(teams) or 'none'}."
            )
        return [team]

    @property
    def _ui(self) -> str:
        return self.settings.tracking_ui_url

    @endpoint("GET", "api/experiments", ListExperiments, ListExperimentsResponse)
    def list_experiments(self, context: Context, request: ListExperiments):
        """Your teams' experiments (``<team>/<name>``), by name."""
        from ..tracking import search
        from ..tracking.connection import translated_errors

        with translated_errors(self.settings):
            return search.list_experiments(
                self._client(), self._teams(context, request.team), self._ui
            )

    @endpoint("GET", "api/runs", ListRuns, ListRunsResponse)
    def list_runs(self, context: Context, request: ListRuns) -> ListRunsResponse:
        """A page of your teams' runs, filtered and ordered by MLflow's search."""
        from ..tracking import search
        from ..tracking.connection import translated_errors

        with translated_errors(self.settings):
            return search.search_runs(
                self._client(), self._teams(context), self._ui,
                experiment_id=request.experiment_id, filter_=request.filter,
                order=request.order, cursor=request.cursor, limit=request.limit,
            )  # fmt: skip

    @endpoint("GET", "api/runs/{run_id}", DescribeRunById, DescribeRun)
    def show_run(self, context: Context, request: DescribeRunById) -> DescribeRun:
        """One of your teams' runs: all its parameters, metric histories, provenance tags."""
        from ..tracking import search
        from ..tracking.connection import translated_errors

        with translated_errors(self.settings):
            return search.describe_run(
                self._client(), self._teams(context), self._ui, request.run_id
            )

    @endpoint("GET", "api/runs/{run_id}/notebook", DescribeRunById, DescribeRunNotebook)
    def run_notebook(self, context: Context, request: DescribeRunById) -> DescribeRunNotebook:
        """The notebook as it was saved when the run started."""
        from ..tracking import search
        from ..tracking.connection import translated_errors

        with translated_errors(self.settings):
            return search.run_notebook(
                self._client(), self._teams(context), request.run_id,
                self.settings.jobs_max_notebook_bytes,
            )  # fmt: skip
