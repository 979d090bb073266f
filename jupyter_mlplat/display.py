"""Readable notebook and text views of platform objects (approval requests and lists).

Views wrap the pydantic models the client returns: attributes pass through
(``req.status``), ``repr`` is a short text summary and ``_repr_html_`` a table, so
a reviewer sees the checks with their inputs and every decision.
"""

from __future__ import annotations

import html
import json


def _e(value) -> str:
    return html.escape(str(value))


class Message:
    """A one-line result: shown as the plain sentence in a notebook and on the terminal."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other) -> bool:
        return isinstance(other, Message) and other.text == self.text


class _View:
    """Wraps a pydantic model; its attributes pass through (``view.status``)."""

    def __init__(self, model):
        self.model = model

    def __getattr__(self, name):
        return getattr(self.model, name)


class AuditVerifyView(_View):
    """The outcome of ``audit verify``."""

    def __repr__(self) -> str:
        r = self.model
        if r.ok:
            return f"Audit log intact: {r.events} events verified."
        return f"Audit log BROKEN at event {r.first_broken_seq}: {r.reason}"


class ApprovalView(_View):
    """One approval request with its checks and decisions."""

    def _headline(self) -> str:
        r = self.model
        progress = f"{r.approvals}/{r.approvals_required} approvals"
        risk = ", high risk" if r.high_risk else ""
        return (
            f"Request {r.id}: {r.model} v{r.version} → {r.target} is {r.status.upper()} "
            f"({progress}{risk}; requested by {r.requester})"
        )

    def __repr__(self) -> str:
        r = self.model
        lines = [self._headline()]
        if r.frozen_digest:
            lines.append(f"  frozen copy sha256 {r.frozen_digest} (run {r.run_id})")
        for check in r.checks:
            mark = "pass" if check.passed else "FAIL"
            lines.append(f"  [{mark}] {check.name}: {check.message}")
        for d in r.decisions:
            overrides = f" (overrides {', '.join(d.overrides)})" if d.overrides else ""
            lines.append(f"  {d.verdict} by {d.reviewer}{overrides}: {d.comment or '(no comment)'}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        r = self.model
        checks = "".join(
            f"<tr><td>{'✅' if c.passed else '❌'}</td><td>{_e(c.name)}</td>"
            f"<td>{_e(c.message)}</td><td><code>{_e(json.dumps(c.inputs, default=str))}</code>"
            "</td></tr>"
            for c in r.checks
        )
        decisions = "".join(
            f"<li><b>{_e(d.verdict)}</b> by {_e(d.reviewer)} at {_e(d.decided_at)}: "
            f"{_e(d.comment or '(no comment)')}</li>"
            for d in r.decisions
        )
        frozen = (
            f", frozen copy sha256 <code>{_e(r.frozen_digest)}</code>" if r.frozen_digest else ""
        )
        return (
            f"<p><b>{_e(self._headline())}</b><br>run <code>{_e(r.run_id)}</code>, artifact "
            f"sha256 <code>{_e(r.artifact_digest[:16])}…</code>{frozen}"
            f"{'<br>reason: ' + _e(r.reason) if r.reason else ''}</p>"
            "<table><tr><th></th><th>check</th><th>result</th><th>inputs</th></tr>"
            f"{checks}</table>"
            f"{'<ul>' + decisions + '</ul>' if decisions else '<p>No decisions yet.</p>'}"
        )


class ApprovalListView:
    """Approval requests as a table."""

    def __init__(self, requests):
        self.requests = [ApprovalView(r) for r in requests]

    def __len__(self) -> int:
        return len(self.requests)

    def __iter__(self):
        return iter(self.requests)

    def __getitem__(self, index):
        return self.requests[index]

    def __repr__(self) -> str:
        if not self.requests:
            return "No approval requests."
        return "\n".join(v._headline() for v in self.requests)

    def _repr_html_(self) -> str:
        if not self.requests:
            return "<p>No approval requests.</p>"
        rows = "".join(
            f"<tr><td>{r.id}</td><td>{_e(r.model)}</td><td>{_e(r.version)}</td>"
            f"<td>{_e(r.target)}</td><td>{_e(r.status)}</td><td>{_e(r.requester)}</td>"
            f"<td>{r.approvals}/{r.approvals_required}</td>"
            f"<td>{'✅' if r.checks_passed else '❌'}</td></tr>"
            for r in self.requests
        )
        return (
            "<table><tr><th>id</th><th>model</th><th>version</th><th>target</th>"
            "<th>status</th><th>requester</th><th>approvals</th><th>checks</th></tr>"
            f"{rows}</table>"
        )


class DeploymentView(_View):
    """One deployment: its traffic split, each version's server and where it comes from."""

    def __repr__(self) -> str:
        d = self.model
        split = ", ".join(f"v{t.version} {t.percent}% ({t.server})" for t in d.traffic)
        lines = [f"Deployment {d.name}: {d.status.upper()}" + (f" — {split}" if split else "")]
        for t in d.traffic:
            lines.append(
                f"  v{t.version}: approval #{t.approval_id}, frozen copy sha256 {t.digest}, "
                f"run {t.run_id}"
            )
            if t.log_tail:
                lines.append(f"    server log ends: {t.log_tail.strip().splitlines()[-1]}")
        p = d.provenance
        if p.get("notebook_hash") or p.get("feature_refs"):
            refs = ", ".join(p.get("feature_refs") or []) or "none"
            lines.append(f"  notebook sha256 {p.get('notebook_hash') or '?'}; features {refs}")
        if d.previous_version:
            lines.append(f"  rollback returns to v{d.previous_version}")
        lines.append(f"  V2 endpoint: <platform service>/{d.endpoint}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return f"<pre>{_e(repr(self))}</pre>"


class DeploymentListView:
    """Deployments as a table."""

    def __init__(self, items):
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __repr__(self) -> str:
        if not self.items:
            return "No deployments you can see."
        rows = []
        for d in self.items:
            split = ", ".join(f"v{t.version} {t.percent}% {t.server}" for t in d.traffic) or "-"
            rows.append(f"{d.name:32} {d.status:10} {d.team:12} {split}")
        return "\n".join([f"{'name':32} {'status':10} {'team':12} traffic", *rows])

    def _repr_html_(self) -> str:
        return f"<pre>{_e(repr(self))}</pre>"


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


class JobView(_View):
    """One job run: status, progress, where its notebook and MLflow run are, the failure."""

    def __repr__(self) -> str:
        j = self.model
        cells = f"{j.cells_done}/{j.cells_total} cells" if j.cells_total else "no cells run yet"
        lines = [f"Job run {j.id}: {j.status.upper()} — {j.notebook_path} ({cells})"]
        if j.reason:
            lines.append(f"  {j.reason}")
        if j.failed_cell:
            cell = j.failed_cell
            lines.append(
                f"  failing cell {cell.get('index')}: {cell.get('ename', '')}: "
                f"{str(cell.get('evalue', ''))[:200]}"
            )
        origin = (
            f"schedule {j.schedule_id}, firing {_when(j.fire_time)}" if j.schedule_id else "run now"
        )
        lines.append(
            f"  {origin}; owner {j.owner} (team {j.team}); snapshot sha256 {j.snapshot_digest}"
        )
        if j.parameters:
            lines.append(f"  parameters {json.dumps(j.parameters, sort_keys=True)}")
        lines.append(f"  queued {_when(j.created_at)}, started {_when(j.started_at)}, "
                     f"finished {_when(j.finished_at)}")  # fmt: skip
        if j.mlflow_run_id:
            lines.append(f"  MLflow run {j.mlflow_run_id} (experiment {j.team}/jobs)")
        if j.status in ("succeeded", "failed", "cancelled", "interrupted"):
            lines.append(f"  executed notebook: `%mlplat job show {j.id} --notebook`; log: "
                         f"`%mlplat job logs {j.id}`")  # fmt: skip
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return f"<pre>{_e(repr(self))}</pre>"


class _Table:
    columns: tuple[str, ...] = ()
    empty = "Nothing here."

    def __init__(self, items):
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __getitem__(self, index):
        return self.items[index]

    def row(self, item) -> tuple:
        raise NotImplementedError

    def __repr__(self) -> str:
        if not self.items:
            return self.empty
        rows = [tuple(str(v) for v in self.row(i)) for i in self.items]
        widths = [max(len(c), *(len(r[k]) for r in rows)) for k, c in enumerate(self.columns)]
        out = ["  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True))]
        out += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
        return "\n".join(line.rstrip() for line in out)

    def _repr_html_(self) -> str:
        if not self.items:
            return f"<p>{_e(self.empty)}</p>"
        head = "".join(f"<th>{_e(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{_e(v)}</td>" for v in self.row(i)) + "</tr>" for i in self.items
        )
        return f"<table><tr>{head}</tr>{body}</table>"


class JobListView(_Table):
    columns = ("run", "status", "notebook", "cells", "schedule", "owner", "queued", "reason")
    empty = "No job runs yet; `%mlplat job run NOTEBOOK` starts one."

    def row(self, j) -> tuple:
        cells = f"{j.cells_done}/{j.cells_total}" if j.cells_total else "-"
        return (j.id, j.status, j.notebook_path, cells, j.schedule_id or "-", j.owner,
                _when(j.created_at), (j.reason or "")[:60])  # fmt: skip


class PipelineRunView(_View):
    """One pipeline run: status, each task's state, and where its notebooks and MLflow
    runs are."""

    def __repr__(self) -> str:
        p = self.model
        done = sum(t.state in ("succeeded", "failed", "skipped") for t in p.tasks)
        where = "local (kfp.local)" if p.mode == "local" else f"Kubeflow run {p.kfp_run_id}"
        lines = [f"Pipeline run {p.id}: {p.status.upper()} — {p.name} ({done}/{len(p.tasks)} "
                 f"tasks, {where})"]  # fmt: skip
        if p.reason:
            lines.append(f"  {p.reason}")
        lines.append(f"  owner {p.owner} (team {p.team}); pipeline sha256 {p.pipeline_digest}")
        if p.arguments:
            lines.append(f"  arguments {json.dumps(p.arguments, sort_keys=True)}")
        lines.append(f"  queued {_when(p.created_at)}, started {_when(p.started_at)}, "
                     f"finished {_when(p.finished_at)}")  # fmt: skip
        if p.mlflow_run_id:
            lines.append(f"  MLflow run {p.mlflow_run_id} (experiment {p.experiment}), with the "
                         "compiled pipeline as pipeline/pipeline.yaml")  # fmt: skip
        for t in p.tasks:
            took = f" in {t.ended - t.started:.1f} s" if t.started and t.ended else ""
            extra = []
            if t.mlflow_run_id:
                extra.append(f"MLflow run {t.mlflow_run_id}")
            if t.notebook:
                extra.append(f"notebook: `%mlplat pipeline status {p.id} --notebook {t.name}`")
            plain = {
                k: v
                for k, v in t.outputs.items()
                if k not in ("executed_notebook", "mlflow_run_id")
            }
            if plain:
                extra.append(f"outputs {json.dumps(plain, sort_keys=True)[:200]}")
            lines.append(
                f"  - {t.name}: {t.state}{took}" + ("; " + "; ".join(extra) if extra else "")
            )
        if p.mode == "local" and p.status not in ("queued",):
            lines.append(f"  log: `%mlplat pipeline logs {p.id} [--task TASK]`")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return f"<pre>{_e(repr(self))}</pre>"


class PipelineRunListView(_Table):
    columns = ("run", "status", "pipeline", "tasks", "mode", "owner", "queued", "reason")
    empty = "No pipeline runs yet; `%mlplat pipeline submit FUNC` starts one."

    def row(self, p) -> tuple:
        done = sum(t.state in ("succeeded", "failed", "skipped") for t in p.tasks)
        return (p.id, p.status, p.name, f"{done}/{len(p.tasks)}", p.mode, p.owner,
                _when(p.created_at), (p.reason or "")[:60])  # fmt: skip


class ScheduleView(_View):
    def __repr__(self) -> str:
        s = self.model
        state = "PAUSED" if s.paused else f"next {_when(s.next_fire_at)}"
        lines = [
            f"Schedule {s.id} {s.name!r}: {s.cron} ({s.timezone}) — {state}",
            f"  {s.notebook_path}, snapshot sha256 {s.snapshot_digest}; owner {s.owner} "
            f"(team {s.team}); missed firings: {s.missed.replace('_', ' ')}",
        ]
        if s.parameters:
            lines.append(f"  parameters {json.dumps(s.parameters, sort_keys=True)}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return f"<pre>{_e(repr(self))}</pre>"


class ScheduleListView(_Table):
    columns = ("id", "name", "cron", "timezone", "next", "notebook", "owner")
    empty = "No schedules; `%mlplat job schedule NOTEBOOK --cron EXPR` makes one."

    def row(self, s) -> tuple:
        return (s.id, s.name, s.cron, s.timezone, "paused" if s.paused else _when(s.next_fire_at),
                s.notebook_path, s.owner)  # fmt: skip


class Progress:
    """A progress display updated in place: an ipywidgets bar in a notebook, one line per
    change on a terminal. Serves any long wait: a job's cells (:meth:`update`), a deploy's
    stages (:meth:`stage`)."""

    def __init__(self, description: str, in_notebook: bool):
        self.description = description
        self.bar = None
        self.last = None
        if in_notebook:
            try:
                import ipywidgets
                from IPython.display import display

                self.bar = ipywidgets.IntProgress(value=0, min=0, max=1, description="")
                self.label = ipywidgets.Label(description)
                display(ipywidgets.HBox([self.bar, self.label]))
            except Exception:  # noqa: BLE001 - no widgets here: plain text then
                self.bar = None

    def stage(self, text: str, elapsed: float | None = None, outcome: str = "") -> None:
        """An indeterminate wait (a deploy): what is happening and for how long. The
        terminal gets a line when ``text`` changes, not every second."""
        shown = f"{self.description}: {text}"
        if self.bar is not None:
            self.bar.max = 1
            self.bar.value = 1 if outcome else 0
            self.bar.bar_style = {"succeeded": "success", "failed": "danger"}.get(outcome, "info")
            self.label.value = shown + ("" if elapsed is None else f" ({elapsed:.0f} s)")
        elif text != self.last:
            suffix = "" if elapsed is None or not outcome else f" ({elapsed:.1f} s)"
            print(shown + suffix, flush=True)
        self.last = text

    def update(
        self, done: int, total: int, status: str, unit: str = "cells", detail: str = ""
    ) -> None:
        text = f"{self.description}: {status}, {done}/{total or '?'} {unit}" + (
            f" ({detail})" if detail else ""
        )
        if self.bar is not None:
            self.bar.max = max(1, total)
            self.bar.value = min(done, self.bar.max)
            self.bar.bar_style = {"succeeded": "success", "failed": "danger"}.get(status, "")
            self.label.value = text
        elif (done, total, status, detail) != self.last:
            print(text, flush=True)
        self.last = (done, total, status, detail)
