"""Production notebooks: run now, cron schedules, runs' status, logs and outputs (issue 10).

A notebook arrives as its content, read in the user's own server (as them): the platform
never opens a path a user names. It is snapshotted (outputs stripped, SHA-256) into the
platform's storage, its parameters are checked against its ``parameters`` cell, and the
run is queued in the store; the service's workers (:mod:`..jobs.workers`) run it as its
owner, and its scheduler claims the firings of schedules (:mod:`..jobs.schedules`).
"""

from __future__ import annotations

from pathlib import Path

from ..api.jobs import (
    CreateJob,
    CreateSchedule,
    DescribeJob,
    DescribeJobById,
    DescribeJobLogs,
    DescribeJobNotebook,
    DescribeSchedule,
    DescribeScheduleById,
    ListJobs,
    ListJobsResponse,
    ListSchedules,
    ListSchedulesResponse,
    RerunJob,
)
from .endpoints import Area, Context, endpoint, page_of

LOG_LIMIT = 256 * 1024  # the end of a longer log is shown
PIPELINE_SUFFIX = ".yaml"  # a pipeline's snapshot: its IR YAML


class JobsArea(Area):
    name = "jobs"

    @property
    def workers(self):
        return self.resources.job_workers_for(self.spec_for)

    # ---- helpers ----

    def _owner(self, context: Context, team: str | None) -> str:
        from ..errors import PermissionDenied
        from ..jobs.runs import check_team

        if context.kind != "user":
            raise PermissionDenied("Jobs run as a user: send a user's token, not a service's.")
        return check_team(context.identity, team)

    def _profile(self, team: str, slug: str):
        """The profile a job of ``team`` runs in: ``slug`` if the team may use it, else the
        team's default."""
        from ..errors import UsageError

        profiles = self._profiles()
        group = f"team-{team}"
        if slug:
            profile = profiles.get(slug)
            if profile is None or not profile.allowed_for([group]):
                allowed = [p.slug for p in profiles.profiles if p.allowed_for([group])]
                raise UsageError(
                    f"Team {team} has no profile {slug!r}; use one of: "
                    f"{', '.join(allowed) or 'none'}."
                )
            return profile
        allowed = [p for p in profiles.profiles if p.allowed_for([group])]
        return next((p for p in allowed if p.default), allowed[0] if allowed else None)

    def _profiles(self):
        """The team profiles, read again only when a file of the folder changed (parsing
        and validating them costs ~40 ms, paid by every submission and run otherwise)."""
        from ..profiles import load_profiles

        folder = Path(self.settings.profiles_dir)
        try:
            stamp = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()))
        except OSError:
            stamp = None
        cached = getattr(self, "_profiles_cache", None)
        if stamp is None or cached is None or cached[0] != stamp:
            cached = self._profiles_cache = (stamp, load_profiles(folder))
        return cached[1]

    def _snapshot(self, notebook: dict, parameters: dict) -> tuple[str, dict]:
        """Store the notebook's snapshot; its digest and the checked parameters."""
        from ..errors import TooLarge, UsageError
        from ..jobs import notebooks

        try:
            import nbformat

            nb = nbformat.from_dict(notebook)
            nbformat.validate(nb)
        except Exception as exc:  # nbformat raises several kinds for a broken notebook
            raise UsageError(
                f"The notebook is not a valid Jupyter notebook (nbformat 4): {exc}"[:400]
            ) from None
        checked = notebooks.check_parameters(nb, parameters)
        content, digest = notebooks.snapshot_content(nb)
        if len(content) > self.settings.jobs_max_notebook_bytes:
            raise TooLarge(
                f"The notebook is {len(content)} bytes without outputs, more than the "
                f"limit of {self.settings.jobs_max_notebook_bytes}; make it smaller."
            )
        notebooks.store_snapshot(self._snapshots(), content, digest)
        return digest, checked

    def _snapshots(self) -> Path:
        return Path(self.settings.jobs_dir) / "snapshots"

    def spec_for(self, run):
        """What the runner needs for ``run`` (called by the workers)."""
        from ..jobs import notebooks
        from ..jobs.runner import RunSpec

        profile = self._profile(run.team, run.profile) if run.profile else None
        if profile is None:
            profile = self._profile(run.team, "")
        schedule = ""
        if run.schedule_id is not None:
            from ..store.models import JobSchedule

            with self.resources.store.session() as session:
                row = session.get(JobSchedule, run.schedule_id)
                schedule = row.name if row is not None else ""
        experiment, suffix = "", notebooks.NOTEBOOK_SUFFIX
        if run.kind == "pipeline":
            from ..store.models import PipelineRun

            with self.resources.store.session() as session:
                experiment = session.get(PipelineRun, run.id).experiment
            suffix = PIPELINE_SUFFIX
        return RunSpec(
            run_id=run.id, owner=run.owner, team=run.team,
            snapshot=notebooks.load_snapshot(self._snapshots(), run.snapshot_digest, suffix),
            parameters=dict(run.parameters or {}), notebook_path=run.notebook_path,
            environment=dict(profile.environment) if profile else {}, schedule=schedule,
            digest=run.snapshot_digest, kind=run.kind, experiment=experiment,
        )  # fmt: skip

    def tick(self) -> list:
        """One round of the scheduler (the service runs it every ``jobs_tick_seconds``):
        claim due firings, wake the workers, prune old runs."""
        from ..jobs import runs, schedules

        made = schedules.fire_due(self.resources.store)
        if any(r.status == runs.QUEUED for r in made):
            self.workers.wake()
        return made

    def prune(self) -> list[int]:
        """Delete runs past ``jobs_retention_days`` with their files (the service runs it)."""
        import shutil

        from ..jobs import runs

        removed = runs.prune(self.resources.store, self.settings.jobs_retention_days)
        for run_id in removed:
            shutil.rmtree(self.resources.job_runner.run_dir(run_id), ignore_errors=True)
        return removed

    @staticmethod
    def _describe(row) -> DescribeJob:
        return DescribeJob(
            id=row.id, status=row.status, reason=row.reason or "", owner=row.owner,
            team=row.team, notebook_path=row.notebook_path,
            snapshot_digest=row.snapshot_digest, parameters=row.parameters or {},
            profile=row.profile or "", schedule_id=row.schedule_id, fire_time=row.fire_time,
            cells_done=row.cells_done, cells_total=row.cells_total,
            failed_cell=row.failed_cell, mlflow_run_id=row.mlflow_run_id or "",
            created_at=row.created_at, started_at=row.started_at, finished_at=row.finished_at,
        )  # fmt: skip

    @staticmethod
    def _describe_schedule(row) -> DescribeSchedule:
        return DescribeSchedule(
            id=row.id, name=row.name, owner=row.owner, team=row.team,
            notebook_path=row.notebook_path, snapshot_digest=row.snapshot_digest,
            parameters=row.parameters or {}, profile=row.profile or "", cron=row.cron,
            timezone=row.timezone, missed=row.missed, paused=row.paused,
            next_fire_at=None if row.paused else row.next_fire_at, created_at=row.created_at,
        )  # fmt: skip

    # ---- runs ----

    @endpoint("POST", "api/jobs", CreateJob, DescribeJob, status=201)
    def run_job(self, context: Context, request: CreateJob) -> DescribeJob:
        """Run a notebook now (queued for the workers); its run, at once."""
        from ..jobs import runs

        team = self._owner(context, request.team)
        profile = self._profile(team, request.profile)
        digest, parameters = self._snapshot(request.notebook, request.parameters)
        row = runs.submit(
            self.resources.store, owner=context.identity.user, team=team,
            notebook_path=request.notebook_path, digest=digest, parameters=parameters,
            profile=profile.slug if profile else "",
        )  # fmt: skip
        self.workers.start()
        self.workers.wake()
        return self._describe(row)

    @endpoint("POST", "api/jobs/{run_id}/rerun", RerunJob, DescribeJob, status=201)
    def rerun_job(self, context: Context, request: RerunJob) -> DescribeJob:
        """Run a run's notebook snapshot again, as you, in its team and profile, with some
        parameters changed (checked against the snapshot's parameters cell)."""
        import nbformat

        from ..jobs import notebooks, runs

        row = runs.get(self.resources.store, context.identity, request.run_id, "notebook")
        team = self._owner(context, row.team)
        profile = self._profile(team, row.profile)
        snapshot = notebooks.load_snapshot(self._snapshots(), row.snapshot_digest)
        nb = nbformat.reads(snapshot.decode("utf-8"), as_version=4)
        parameters = notebooks.check_parameters(
            nb, {**(row.parameters or {}), **request.parameters}
        )
        new = runs.submit(
            self.resources.store, owner=context.identity.user, team=team,
            notebook_path=row.notebook_path, digest=row.snapshot_digest, parameters=parameters,
            profile=profile.slug if profile else "",
        )  # fmt: skip
        self.workers.start()
        self.workers.wake()
        return self._describe(new)

    @endpoint("GET", "api/jobs", ListJobs, ListJobsResponse)
    def list_jobs(self, context: Context, request: ListJobs) -> ListJobsResponse:
        """Your teams' runs, newest first."""
        from ..jobs import runs

        rows = runs.list_for(
            self.resources.store, context.identity, schedule_id=request.schedule_id,
            after=request.after() or None, limit=request.limit + 1, status=request.status,
        )  # fmt: skip
        return page_of(rows, request.limit, self._describe, ListJobsResponse)

    @endpoint("GET", "api/jobs/{run_id}", DescribeJobById, DescribeJob)
    def show_job(self, context: Context, request: DescribeJobById) -> DescribeJob:
        from ..jobs import runs

        return self._describe(
            runs.get(self.resources.store, context.identity, request.run_id, "notebook")
        )

    @endpoint("GET", "api/jobs/{run_id}/logs", DescribeJobById, DescribeJobLogs)
    def job_logs(self, context: Context, request: DescribeJobById) -> DescribeJobLogs:
        """The run's log (papermill's and the cells' output), its last 256 KiB."""
        from ..jobs import runs

        row = runs.get(self.resources.store, context.identity, request.run_id, "notebook")
        path = self.resources.job_runner.log_of(row.id)
        try:
            with open(path, "rb") as log:
                size = log.seek(0, 2)
                log.seek(max(0, size - LOG_LIMIT))
                data = log.read()
        except FileNotFoundError:
            return DescribeJobLogs(run_id=row.id, text="", truncated=False)
        return DescribeJobLogs(
            run_id=row.id, text=data.decode("utf-8", "replace"), truncated=size > LOG_LIMIT
        )

    @endpoint("GET", "api/jobs/{run_id}/notebook", DescribeJobById, DescribeJobNotebook)
    def job_notebook(self, context: Context, request: DescribeJobById) -> DescribeJobNotebook:
        """The executed notebook of a finished run (the failing cell has its error)."""
        import json

        from ..jobs import runs

        row = runs.get(self.resources.store, context.identity, request.run_id, "notebook")
        path = self.resources.job_runner.output_of(row.id)
        try:
            notebook = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            notebook = None
        return DescribeJobNotebook(run_id=row.id, notebook=notebook)

    @endpoint("POST", "api/jobs/{run_id}/cancel", DescribeJobById, DescribeJob)
    def cancel_job(self, context: Context, request: DescribeJobById) -> DescribeJob:
        """Cancel a queued run, or stop a running one (its status follows shortly)."""
        from ..jobs import runs

        row = runs.request_cancel(self.resources.store, context.identity, request.run_id)
        if row.status == runs.RUNNING and self.resources.has_job_workers:
            self.workers.cancel(row.id)
        return self._describe(row)

    # ---- schedules ----

    @endpoint("POST", "api/schedules", CreateSchedule, DescribeSchedule, status=201)
    def create_schedule(self, context: Context, request: CreateSchedule) -> DescribeSchedule:
        """Run a notebook snapshot on a cron schedule, as you, from the platform service."""
        from ..jobs import schedules

        team = self._owner(context, request.team)
        profile = self._profile(team, request.profile)
        digest, parameters = self._snapshot(request.notebook, request.parameters)
        row = schedules.create(
            self.resources.store, context.identity, name=request.name, team=team,
            notebook_path=request.notebook_path, digest=digest, parameters=parameters,
            profile=profile.slug if profile else "", expression=request.cron,
            timezone=request.timezone, missed=request.missed,
            min_interval=self.settings.jobs_min_interval_seconds,
        )  # fmt: skip
        return self._describe_schedule(row)

    @endpoint("GET", "api/schedules", ListSchedules, ListSchedulesResponse)
    def list_schedules(self, context: Context, request: ListSchedules) -> ListSchedulesResponse:
        from ..jobs import schedules

        rows = [r for r in schedules.list_for(self.resources.store, context.identity)]
        rows = [r for r in rows if r.id > request.after()]
        page = rows[: request.limit]
        more = len(rows) > request.limit
        return ListSchedulesResponse(
            items=[self._describe_schedule(r) for r in page],
            next_cursor=str(page[-1].id) if more else None,
        )

    @endpoint("GET", "api/schedules/{schedule_id}", DescribeScheduleById, DescribeSchedule)
    def show_schedule(self, context: Context, request: DescribeScheduleById) -> DescribeSchedule:
        from ..jobs import schedules

        row = schedules.get(self.resources.store, context.identity, request.schedule_id)
        return self._describe_schedule(row)

    @endpoint("POST", "api/schedules/{schedule_id}/pause", DescribeScheduleById, DescribeSchedule)
    def pause_schedule(self, context: Context, request: DescribeScheduleById) -> DescribeSchedule:
        """Stop firing (runs under way finish)."""
        from ..jobs import schedules

        row = schedules.set_paused(
            self.resources.store, context.identity, request.schedule_id, True
        )
        return self._describe_schedule(row)

    @endpoint("POST", "api/schedules/{schedule_id}/resume", DescribeScheduleById, DescribeSchedule)
    def resume_schedule(self, context: Context, request: DescribeScheduleById) -> DescribeSchedule:
        """Fire again, from the next time after now."""
        from ..jobs import schedules

        row = schedules.set_paused(
            self.resources.store, context.identity, request.schedule_id, False
        )
        return self._describe_schedule(row)

    @endpoint("POST", "api/schedules/{schedule_id}/delete", DescribeScheduleById, DescribeSchedule)
    def delete_schedule(self, context: Context, request: DescribeScheduleById) -> DescribeSchedule:
        """Remove the schedule (its runs stay)."""
        from ..jobs import schedules

        row = schedules.delete(self.resources.store, context.identity, request.schedule_id)
        return self._describe_schedule(row)
