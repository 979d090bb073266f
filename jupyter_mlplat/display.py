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
