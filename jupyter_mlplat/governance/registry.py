"""MLflow's model registry: registering a run's model, reading a version, mirroring outcomes.

The platform store is the source of truth for ownership and approvals; MLflow only
mirrors outcomes (version tags and the ``staging`` / ``production`` aliases).
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ..errors import NotFoundError, PermissionDenied, UsageError

MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}\Z")
TARGETS = ("staging", "production")


class DescribeModelVersion(BaseModel):
    """A registered model version (``POST /api/models`` answers this)."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    model: str
    version: str
    run_id: str
    source: str
    artifact_digest: str

    def __repr__(self) -> str:
        return (
            f"Registered {self.model} version {self.version} from run {self.run_id} "
            f"(artifact sha256 {self.artifact_digest[:12]}…)"
        )


def check_model_name(name: str) -> str:
    if not isinstance(name, str) or not MODEL_NAME.match(name):
        raise UsageError(
            f"{name!r} is not a valid model name; use letters, digits, '_', '-' or '.' "
            "(up to 128 characters)."
        )
    return name


def artifact_digest(client, source: str) -> str:
    """SHA-256 over the model's files (relative path and content, in sorted order)."""
    import mlflow.artifacts

    with tempfile.TemporaryDirectory(prefix="mlplat-digest-") as tmp:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=source, dst_path=tmp, tracking_uri=client.tracking_uri
            )
        )
        digest = hashlib.sha256()
        files = sorted(p for p in local.rglob("*") if p.is_file()) if local.is_dir() else [local]
        for path in files:
            rel = path.relative_to(local).as_posix() if local.is_dir() else path.name
            digest.update(rel.encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()


def model_uri_for_run(client, run_id: str, artifact_path: str | None) -> str:
    """``runs:/<run>/<path>`` when a path is given, else the run's one logged model."""
    import mlflow

    run = client.get_run(run_id)
    if artifact_path:
        return f"runs:/{run_id}/{artifact_path.strip('/')}"
    models = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run_id}'",
        output_format="list",
    )
    if not models:
        raise NotFoundError(
            f"Run {run_id} has no logged model; log one (autolog or mlflow.<flavor>.log_model) "
            "or pass --artifact PATH."
        )
    if len(models) > 1:
        names = ", ".join(sorted(m.name for m in models))
        raise UsageError(
            f"Run {run_id} logged several models ({names}); say which with --artifact NAME."
        )
    return f"models:/{models[0].model_id}"


def run_team(client, run_id: str) -> str:
    try:
        run = client.get_run(run_id)
    except Exception as exc:  # MLflow raises its own exception types for a missing run
        raise NotFoundError(f"There is no MLflow run {run_id!r}; check the run id.") from exc
    return run.data.tags.get("mlplat.team", "")


def register(client, run_id: str, model: str, artifact_path: str | None, team: str):
    """Register the run's model under ``model``; the run must belong to ``team``."""
    import mlflow

    check_model_name(model)
    owner = run_team(client, run_id)
    if owner != team:
        raise PermissionDenied(
            f"Run {run_id} belongs to team {owner or 'unknown'!r}, not {team!r}; register "
            "models from your own team's runs."
        )
    uri = model_uri_for_run(client, run_id, artifact_path)
    version = mlflow.register_model(uri, model, tags={"mlplat.team": team})
    digest = artifact_digest(client, version.source)
    client.set_model_version_tag(model, version.version, "mlplat.artifact_sha256", digest)
    return DescribeModelVersion(
        model=model,
        version=str(version.version),
        run_id=run_id,
        source=version.source,
        artifact_digest=digest,
    )


def read_version(client, model: str, version: str):
    """What governance needs to know about a version (``exists=False`` when there is none)."""
    from .checks import VersionInfo

    try:
        mv = client.get_model_version(model, str(version))
    except Exception:  # RESOURCE_DOES_NOT_EXIST and friends
        return VersionInfo(exists=False)
    run = client.get_run(mv.run_id) if mv.run_id else None
    tags = run.data.tags if run else {}
    pii: list[str] = []
    if run and tags.get("mlplat.features.retrievals"):
        try:
            lineage = client.download_artifacts(mv.run_id, "mlplat/features.json")
            retrievals = json.loads(Path(lineage).read_text())["retrievals"]
            pii = sorted({f for r in retrievals for f in r.get("pii_features", [])})
        except Exception:  # no lineage file: the lineage check reports it
            pii = []
    return VersionInfo(
        run_id=mv.run_id or "",
        artifact_digest=artifact_digest(client, mv.source),
        metrics=dict(run.data.metrics) if run else {},
        lineage={
            "run_id": mv.run_id or "",
            "notebook_hash": tags.get("mlplat.notebook.sha256", ""),
            "code_version": tags.get("mlflow.source.git.commit", ""),
            "feature_refs": [r for r in tags.get("mlplat.features.refs", "").split(",") if r],
            "data_source": tags.get("mlplat.features.views", ""),
        },
        features_pii=pii,
    )


def mirror(client, model: str, version: str, target: str, status: str) -> None:
    """Reflect an outcome in MLflow: a version tag, and the target alias when approved."""
    client.set_model_version_tag(model, str(version), f"mlplat.approval.{target}", status)
    if status in ("approved", "deployed"):
        client.set_registered_model_alias(model, target, str(version))
