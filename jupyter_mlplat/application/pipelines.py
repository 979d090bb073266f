"""Kubeflow pipelines from notebooks: submit, runs with their tasks, logs, cancel (issue 11).

A pipeline arrives compiled (IR YAML, made in the user's kernel) with its arguments; the
service parses it and checks the arguments again (:mod:`..pipelines.ir`), snapshots the YAML
by SHA-256 and records the run: a job run of kind ``pipeline`` with its tasks. ``local``
runs go through the jobs' worker pool as the owner (:mod:`..jobs.runner` →
:mod:`..pipelines.local_run`, kfp.local), so they outlive the user's server; ``kfp`` runs
are submitted to a Kubeflow Pipelines API in the team's namespace, and their status is
read from it (on each look, and by the scheduler's round).
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from ..api.pipelines import (
    CreatePipelineRun,
    DescribePipelineLogs,
    DescribePipelineRun,
    DescribePipelineRunById,
    DescribePipelineTaskLogs,
    DescribePipelineTaskNotebook,
    DescribePipelineTaskNotebookById,
    ListPipelineRuns,
    ListPipelineRunsResponse,
    PipelineTask,
)
from .endpoints import Area, Context, endpoint, page_of
from .jobs import LOG_LIMIT, PIPELINE_SUFFIX, JobsArea

KFP_WORKER = "kfp:"  # a kfp run's JobRun.worker: no worker of ours runs it


class PipelinesArea(Area):
    name = "pipelines"

    def __init__(self, settings, resources) -> None:
        super().__init__(settings, resources)
        self.jobs = JobsArea(settings, resources)  # owner, profiles, snapshots, the pool

    # ---- helpers ----

    def _row(self, run_id: int):
        from ..store.models import PipelineRun

        with self.resources.store.session() as session:
            row = session.get(PipelineRun, run_id)
            if row is not None:
                session.expunge(row)
        return row

    def _describe(self, run, pipeline) -> DescribePipelineRun:
        tasks = []
        for task in pipeline.tasks or []:
            facts = {k: task[k] for k in ("name", "state", "started", "ended") if k in task}
            tasks.append(PipelineTask(
                **facts, outputs=task.get("outputs") or {},
                mlflow_run_id=task.get("mlflow_run_id", ""), notebook=bool(task.get("notebook")),
            ))  # fmt: skip
        return DescribePipelineRun(
            id=run.id, name=pipeline.pipeline_name, status=run.status, reason=run.reason or "",
            owner=run.owner, team=run.team, mode=pipeline.mode, experiment=pipeline.experiment,
            arguments=run.parameters or {}, pipeline_digest=run.snapshot_digest,
            kfp_run_id=pipeline.kfp_run_id, mlflow_run_id=run.mlflow_run_id or "", tasks=tasks,
            created_at=run.created_at, started_at=run.started_at, finished_at=run.finished_at,
        )  # fmt: skip

    def _get(self, context: Context, run_id: int):
        from ..jobs import runs

        run = runs.get(self.resources.store, context.identity, run_id, "pipeline")
        pipeline = self._row(run.id)
        if pipeline.mode == "kfp" and run.status == runs.RUNNING:
            run, pipeline = self._refresh(run, pipeline)
        return run, pipeline

    def _experiment(self, team: str, given: str) -> str:
        """MLflow experiments are the team's (``<team>/NAME``)."""
        if not given:
            return f"{team}/pipelines"
        return given if given.startswith(f"{team}/") else f"{team}/{given}"

    def _kfp(self, team: str, user: str):
        from ..errors import ServiceUnavailable, UsageError
        from ..pipelines.kfp_api import KfpApi

        settings = self.settings
        if not settings.kfp_api_url:
            # Not a dependency that is down (503, which clients retry): none is configured.
            raise UsageError(
                "No Kubeflow Pipelines API is configured (kfp_api_url); run with --local, or "
                "ask the platform team to set c.MlplatSettings.kfp_api_url."
            )
        profile = self.jobs._profile(team, "")
        namespace = profile.namespace if profile is not None else team
        token = ""
        if settings.kfp_token_file:
            try:
                token = Path(settings.kfp_token_file).read_text().strip()
            except OSError as exc:
                raise ServiceUnavailable(
                    f"The Kubeflow Pipelines token file (kfp_token_file) cannot be read: {exc}."
                ) from None
        return KfpApi(
            settings.kfp_api_url, namespace=namespace, user=user, token=token,
            ca_file=settings.kfp_ca_file, user_header=settings.kfp_user_header,
        )  # fmt: skip

    def _refresh(self, run, pipeline):
        """A kfp run's status and tasks as the KFP API has them now."""
        from ..jobs import runs
        from ..store.models import JobRun, PipelineRun, utcnow

        status, tasks = self._kfp(run.team, run.owner).status(pipeline.kfp_run_id)
        with self.resources.store.transaction() as session:
            session.get(PipelineRun, run.id).tasks = tasks
            row = session.get(JobRun, run.id)
            if status != runs.RUNNING and row.status == runs.RUNNING:
                row.status, row.finished_at = status, utcnow()
                if status == "failed":
                    failed = next((t["name"] for t in tasks if t["state"] == "failed"), "")
                    row.reason = f"the task {failed} failed" if failed else "failed in KFP"
        return runs.find(self.resources.store, run.id), self._row(run.id)

    def sync_kfp(self) -> int:
        """Refresh the kfp runs still running (the scheduler's round); how many."""
        from sqlalchemy import select

        from ..errors import MlplatError
        from ..store.models import JobRun

        if not self.settings.kfp_api_url:
            return 0
        with self.resources.store.session() as session:
            rows = list(session.scalars(select(JobRun).where(
                JobRun.kind == "pipeline", JobRun.status == "running",
                JobRun.worker.startswith(KFP_WORKER),
            )))  # fmt: skip
            for row in rows:
                session.expunge(row)
        for row in rows:
            try:
                self._refresh(row, self._row(row.id))
            except MlplatError:
                continue  # the API is away: the next round tries again
        return len(rows)

    # ---- endpoints ----

    @endpoint("POST", "api/pipelines", CreatePipelineRun, DescribePipelineRun, status=201)
    def submit_pipeline(self, context: Context, request: CreatePipelineRun) -> DescribePipelineRun:
        """Run a compiled pipeline: locally in the platform's pool, or on Kubeflow."""
        from ..jobs import notebooks, runs
        from ..pipelines import ir

        team = self.jobs._owner(context, request.team)
        profile = self.jobs._profile(team, request.profile)
        spec = ir.parse(request.pipeline_yaml, self.settings.jobs_max_notebook_bytes)
        arguments = ir.check_arguments(spec, request.arguments)
        experiment = self._experiment(team, request.experiment)
        content = request.pipeline_yaml.encode("utf-8")
        digest = hashlib.sha256(content).hexdigest()
        pipeline = {
            "pipeline_name": request.name, "mode": request.mode, "experiment": experiment,
            "kfp_run_id": "", "tasks": [{"name": t, "state": "pending"} for t in ir.planned_tasks(spec)],
        }  # fmt: skip
        common = dict(
            owner=context.identity.user, team=team, notebook_path=request.name, digest=digest,
            parameters=arguments, profile=profile.slug if profile else "", pipeline=pipeline,
        )  # fmt: skip
        if request.mode == "local":
            ir.check_local(spec)
            notebooks.store_snapshot(self.jobs._snapshots(), content, digest, PIPELINE_SUFFIX)
            row = runs.submit(self.resources.store, **common)
            self.jobs.workers.start()
            self.jobs.workers.wake()
        else:
            api = self._kfp(team, context.identity.user)
            notebooks.store_snapshot(self.jobs._snapshots(), content, digest, PIPELINE_SUFFIX)
            with tempfile.TemporaryDirectory(prefix="mlplat-kfp-") as folder:
                path = Path(folder) / "pipeline.yaml"
                path.write_bytes(content)
                pipeline["kfp_run_id"] = api.submit(path, arguments, request.name, experiment)
            row = runs.submit(
                self.resources.store, **common, status=runs.RUNNING,
                worker=KFP_WORKER + pipeline["kfp_run_id"][:90],
            )  # fmt: skip
        return self._describe(row, self._row(row.id))

    @endpoint("GET", "api/pipelines", ListPipelineRuns, ListPipelineRunsResponse)
    def list_pipeline_runs(
        self, context: Context, request: ListPipelineRuns
    ) -> ListPipelineRunsResponse:
        """Your teams' pipeline runs, newest first."""
        from ..jobs import runs

        rows = runs.list_for(
            self.resources.store, context.identity, after=request.after() or None,
            limit=request.limit + 1, status=request.status, kind="pipeline",
        )  # fmt: skip
        describe = lambda row: self._describe(row, self._row(row.id))  # noqa: E731
        return page_of(rows, request.limit, describe, ListPipelineRunsResponse)

    @endpoint("GET", "api/pipelines/{run_id}", DescribePipelineRunById, DescribePipelineRun)
    def show_pipeline_run(
        self, context: Context, request: DescribePipelineRunById
    ) -> DescribePipelineRun:
        """One run: its status and tasks (a kfp run's read from the KFP API)."""
        return self._describe(*self._get(context, request.run_id))

    @endpoint("GET", "api/pipelines/{run_id}/logs", DescribePipelineTaskLogs, DescribePipelineLogs)
    def pipeline_logs(
        self, context: Context, request: DescribePipelineTaskLogs
    ) -> DescribePipelineLogs:
        """The run's log (kfp.local's and its tasks' output), or one task's."""
        from ..errors import NotFoundError, UsageError

        run, pipeline = self._get(context, request.run_id)
        if pipeline.mode == "kfp":
            raise UsageError(
                f"Pipeline run {run.id} runs on Kubeflow (run {pipeline.kfp_run_id}); its logs "
                "are in the Kubeflow Pipelines UI."
            )
        try:
            data = self.resources.job_runner.log_of(run.id).read_bytes()
        except FileNotFoundError:
            data = b""
        text = data.decode("utf-8", "replace")
        if request.task:
            begin, end = f"MLPLAT_TASK_BEGIN {request.task}\n", f"MLPLAT_TASK_END {request.task} "
            start = text.find(begin)
            if start < 0:
                names = ", ".join(t["name"] for t in pipeline.tasks or []) or "none yet"
                raise NotFoundError(
                    f"Task {request.task} of pipeline run {run.id} has no log; its tasks: {names}."
                )
            stop = text.find(end, start)
            text = text[start + len(begin) : stop if stop >= 0 else len(text)]
        truncated = len(text) > LOG_LIMIT
        return DescribePipelineLogs(
            run_id=run.id, task=request.task, text=text[-LOG_LIMIT:], truncated=truncated
        )

    @endpoint(
        "GET", "api/pipelines/{run_id}/tasks/{task}/notebook", DescribePipelineTaskNotebookById,
        DescribePipelineTaskNotebook,
    )  # fmt: skip
    def pipeline_task_notebook(
        self, context: Context, request: DescribePipelineTaskNotebookById
    ) -> DescribePipelineTaskNotebook:
        """The executed notebook of a notebook step (None if it has none, or not yet)."""
        import json

        run, _ = self._get(context, request.run_id)
        path = self.resources.job_runner.task_notebook_of(run.id, request.task)
        try:
            notebook = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            notebook = None
        return DescribePipelineTaskNotebook(run_id=run.id, task=request.task, notebook=notebook)

    @endpoint("POST", "api/pipelines/{run_id}/cancel", DescribePipelineRunById, DescribePipelineRun)
    def cancel_pipeline_run(
        self, context: Context, request: DescribePipelineRunById
    ) -> DescribePipelineRun:
        """Cancel a queued run, or stop a running one (its status follows shortly)."""
        from ..jobs import runs
        from ..store.models import JobRun, utcnow

        run, pipeline = self._get(context, request.run_id)
        if pipeline.mode == "kfp" and run.status == runs.RUNNING:
            runs.check_may_cancel(context.identity, run)
            self._kfp(run.team, run.owner).cancel(pipeline.kfp_run_id)
            with self.resources.store.transaction() as session:
                row = session.get(JobRun, run.id)
                if row.status == runs.RUNNING:
                    row.status, row.finished_at = runs.CANCELLED, utcnow()
                    row.reason = f"cancelled by {context.identity.user}"
        else:
            row = runs.request_cancel(self.resources.store, context.identity, run.id)
            if row.status == runs.RUNNING and self.resources.has_job_workers:
                self.jobs.workers.cancel(row.id)
        return self._describe(runs.find(self.resources.store, run.id), self._row(run.id))
