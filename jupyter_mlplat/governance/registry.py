"""MLflow's model registry: registering a run's model, reading a version, mirroring outcomes.

The platform store is the source of truth for ownership and approvals; MLflow only
mirrors outcomes (version tags and the ``staging`` / ``production`` aliases).

Facts come from where users cannot forge them: a run's team is the team of its
experiment (experiments are named ``<team>/<name>``, see :mod:`..tracking.runs`), never
its ``mlplat.team`` tag, which is evidence only; a version's facts (metrics, lineage,
artifacts) are read from its registered run, and only when that run lies in an
experiment of the model's owning team (the platform store's record).

Every function takes the :class:`~jupyter_mlplat.settings.MlplatSettings` whose tracking
server it talks to. A server that is down or hangs is a :class:`ServiceUnavailable`
naming its URI within the settings' retry budget (``tracking_retry_seconds``); only
MLflow's ``RESOURCE_DOES_NOT_EXIST`` means that a run, version or model does not exist.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from ..api.governance import DescribeModelVersion
from ..errors import NotFoundError, PermissionDenied, UsageError
from ..settings import MlplatSettings
from ..tracking.capture import CODE_VERSION_TAG
from ..tracking.connection import check_reachable, get_client, is_unreachable, translated_errors
from ..tracking.plugins import AUTOLOGGED_TAG
from . import frozen

MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}\Z")
RUN_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}\Z")
LOGGED_MODEL_ID = re.compile(r"m-[0-9a-f]{1,64}\Z")
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9_.\-]{1,128}\Z")
_MAX_ARTIFACT = 512
VERSION = re.compile(r"[0-9]{1,18}\Z")
TARGETS = ("staging", "production")
DIGEST_TAG = "mlplat.artifact_sha256"
TEAM_TAG = "mlplat.team"
NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
_ALREADY_EXISTS = ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS")


def check_model_name(name: str) -> str:
    if not isinstance(name, str) or not MODEL_NAME.match(name):
        raise UsageError(
            f"{name!r} is not a valid model name; use letters, digits, '_', '-' or '.' "
            "(up to 128 characters)."
        )
    return name


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not RUN_ID.match(run_id):
        raise UsageError(
            f"{run_id!r} is not an MLflow run id; copy it from `%mlplat status` or the "
            "MLflow UI (letters, digits, '_' or '-')."
        )
    return run_id


def check_artifact(artifact: str | None) -> str | None:
    """``artifact`` as given (trailing ``/`` dropped) when it names a model inside the run:
    a relative path of plain names (``model``, ``sub/model``) or a logged model id
    (``m-...``); None when not given. Anything else (absolute paths, ``..``, URIs with a
    scheme, percent-encoding, backslashes, NUL...) is a :class:`UsageError`."""
    if artifact is None or artifact == "":
        return None
    if isinstance(artifact, str) and len(artifact) <= _MAX_ARTIFACT:
        if LOGGED_MODEL_ID.match(artifact):
            return artifact
        path = artifact[:-1] if artifact.endswith("/") else artifact
        segments = path.split("/")
        if all(_PATH_SEGMENT.match(s) and s.strip(".") for s in segments):
            return path
    shown = (
        repr(artifact[:80] + ("…" if len(artifact) > 80 else ""))
        if isinstance(artifact, str)
        else repr(artifact)
    )
    raise UsageError(
        f"Artifact {shown} is not a model inside the run; give a relative name like 'model' "
        "or 'sub/model' (letters, digits, '_', '-', '.'), or a logged model id like 'm-1a2b3c'."
    )


def _not_found(exc: BaseException) -> bool:
    return getattr(exc, "error_code", None) == NOT_FOUND


def _client(settings: MlplatSettings):
    """The MLflow client of ``settings``, after the server answered within the budget."""
    check_reachable(settings.tracking_uri, settings.tracking_retry_seconds)
    return get_client(settings)


def _undownloadable(what: str, reason: str) -> NotFoundError:
    return NotFoundError(
        f"The model artifacts of {what} could not be downloaded from MLflow ({reason}); check "
        "that the run's model files still exist, or register the model again from a run that "
        "has them."
    )


def check_available(settings: MlplatSettings) -> None:
    """ServiceUnavailable naming the tracking URI unless MLflow answers within the budget."""
    check_reachable(settings.tracking_uri, settings.tracking_retry_seconds)


def download_model(client, source: str, dest: Path, what: str = "") -> Path:
    """Download the model files at ``source`` into the (new or empty) folder ``dest``, as
    the platform (the client's credentials); a download that fails is a NotFoundError
    (or ServiceUnavailable when MLflow is unreachable) and leaves ``dest`` empty."""
    import mlflow.artifacts

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=dest.parent))
    try:
        try:
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=source, dst_path=str(scratch), tracking_uri=client.tracking_uri
                )
            )
        except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds; narrowed here
            if is_unreachable(exc):
                raise
            text = str(exc).strip()
            reason = text.splitlines()[0][:200] if text else type(exc).__name__
            raise _undownloadable(what or source, reason) from exc
        if local.is_dir() and not any(p.is_file() for p in local.rglob("*")):
            raise _undownloadable(what or source, "MLflow has no files there")
        dest.rmdir()
        if local.is_dir():
            os.rename(local, dest)
        else:
            dest.mkdir(mode=0o700)
            os.rename(local, dest / local.name)
        return dest
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def artifact_digest(client, source: str, what: str = "") -> str:
    """The digest of the model's files (see :func:`.frozen.manifest_digest`): the same
    digest a frozen copy of them has."""
    with tempfile.TemporaryDirectory(prefix="mlplat-digest-") as tmp:
        return frozen.folder_digest(download_model(client, source, Path(tmp) / "model", what))


def experiment_team(experiment_name: str) -> str:
    """The team of an experiment named ``<team>/<name>`` ('' for other names)."""
    team, slash, rest = (experiment_name or "").partition("/")
    return team if slash and team and rest else ""


def _run_team(client, run) -> tuple[str, str]:
    """``(team, experiment name)`` of ``run``: its experiment's team, never its tags."""
    from mlflow.exceptions import MlflowException

    try:
        experiment = client.get_experiment(run.info.experiment_id)
    except MlflowException as exc:
        if _not_found(exc):
            return "", f"#{run.info.experiment_id}"
        raise
    return experiment_team(experiment.name), experiment.name


def _not_the_team(run_id: str, experiment: str, owner: str, team: str, user: str = "") -> str:
    """One sentence: run ``run_id`` (in ``experiment`` of ``owner``) is not ``team``'s,
    or not one of ``user``'s teams."""
    if not owner:
        return (
            f"Run {run_id} lies in experiment {experiment!r}, which belongs to no team "
            "(team experiments are named <team>/<name>); log the run with "
            "`%mlplat experiment NAME` in your team and register that run."
        )
    who = f"you ({user}) are not a member of it" if user else f"not to team {team!r}"
    joint = ", and " if user else ", "
    return (
        f"Run {run_id} lies in experiment {experiment!r}, so it belongs to team {owner!r}"
        f"{joint}{who} (its mlplat.team tag does not decide this); register models from "
        "your own team's experiments."
    )


def _get_run(client, run_id: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        if _not_found(exc):
            raise NotFoundError(f"There is no MLflow run {run_id!r}; check the run id.") from exc
        raise


def run_team(settings: MlplatSettings, run_id: str) -> str:
    """The team that owns MLflow run ``run_id``: the team of its experiment (``<team>/…``;
    '' when the experiment is not named after a team). Tags never decide this."""
    check_run_id(run_id)
    client = _client(settings)
    with translated_errors(settings):
        return _run_team(client, _get_run(client, run_id))[0]


def check_run_team(settings: MlplatSettings, run_id: str, teams, user: str) -> str:
    """The team of run ``run_id`` when it is one of ``teams``; PermissionDenied otherwise,
    in one sentence naming the run's experiment and its team."""
    check_run_id(run_id)
    client = _client(settings)
    with translated_errors(settings):
        team, experiment = _run_team(client, _get_run(client, run_id))
    if not team or team not in teams:
        raise PermissionDenied(_not_the_team(run_id, experiment, team, "", user))
    return team


# ---- which model of the run ----


def _is_autologged(model) -> bool:
    return AUTOLOGGED_TAG in (model.tags or {})


def _describe(model) -> str:
    return f"{model.name} ({model.model_id}{', autologged' if _is_autologged(model) else ''})"


def _newest(models):
    return max(models, key=lambda m: (m.creation_timestamp or 0, m.model_id))


def _prefer(run_id: str, models):
    """The model a user means among ``models`` (all of one run): the one they logged
    explicitly rather than an autologged one, the newest when one name was logged again."""
    explicit = [m for m in models if not _is_autologged(m)]
    if len({m.name for m in explicit}) > 1:
        names = ", ".join(_describe(m) for m in sorted(explicit, key=lambda m: m.name))
        raise UsageError(
            f"Run {run_id} logged several models explicitly ({names}); say which with "
            "--artifact NAME or --artifact ID."
        )
    return _newest(explicit or models)


def _logged_models(client, run) -> list:
    from mlflow.entities import LoggedModelStatus

    found, token = [], None
    while True:
        page = client.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"source_run_id = '{run.info.run_id}'",
            max_results=100,
            page_token=token,
        )
        found.extend(page)
        token = page.token
        if not token:
            break
    return [m for m in found if m.status == LoggedModelStatus.READY]


def model_source(client, run, artifact: str | None) -> tuple[str, str | None]:
    """``(source URI, logged model id or None)`` of the model of ``run`` to register.

    ``artifact`` (already checked by :func:`check_artifact`) is a logged model id, a
    logged model's name, or a path in the run's artifacts holding an ``MLmodel``; without
    it the run's model is chosen by :func:`_prefer`.
    """
    from mlflow.exceptions import MlflowException

    run_id = run.info.run_id
    if artifact and LOGGED_MODEL_ID.match(artifact):
        try:
            model = client.get_logged_model(artifact)
        except MlflowException as exc:
            if _not_found(exc):
                raise NotFoundError(
                    f"There is no logged model {artifact!r}; list the run's models in the "
                    "MLflow UI or leave out --artifact."
                ) from exc
            raise
        if model.source_run_id != run_id:
            raise UsageError(
                f"Logged model {artifact} comes from run {model.source_run_id or 'none'}, not "
                f"{run_id}; register it from its own run."
            )
        return f"models:/{model.model_id}", model.model_id
    models = _logged_models(client, run)
    if artifact:
        named = [m for m in models if m.name == artifact]
        if named:
            chosen = _prefer(run_id, named)
            return f"models:/{chosen.model_id}", chosen.model_id
        listed = client.list_artifacts(run_id, artifact)
        if any(f.path == f"{artifact}/MLmodel" for f in listed):
            return f"{run.info.artifact_uri.rstrip('/')}/{artifact}", None
        have = ", ".join(_describe(m) for m in models) or "none"
        raise NotFoundError(
            f"Run {run_id} has no model {artifact!r} (its logged models: {have}); pass one of "
            "those names or ids with --artifact, or leave it out."
        )
    if not models:
        raise NotFoundError(
            f"Run {run_id} has no logged model; log one (autolog or mlflow.<flavor>.log_model) "
            "or pass --artifact PATH."
        )
    chosen = _prefer(run_id, models)
    return f"models:/{chosen.model_id}", chosen.model_id


def model_uri_for_run(settings: MlplatSettings, run_id: str, artifact: str | None) -> str:
    """The URI of the model :func:`register` would register for ``run_id``."""
    check_run_id(run_id)
    artifact = check_artifact(artifact)
    client = _client(settings)
    with translated_errors(settings):
        return model_source(client, _get_run(client, run_id), artifact)[0]


# ---- registration ----


def _existing_version(client, model: str, run_id: str, source: str, model_id: str | None):
    """The first version of ``model`` already registered from this run's same model."""
    versions = client.search_model_versions(f"name = '{model}' and run_id = '{run_id}'")
    same = [
        v
        for v in versions
        if (model_id and getattr(v, "model_id", None) == model_id) or v.source == source
    ]
    return min(same, key=lambda v: int(v.version)) if same else None


def _ensure_registered_model(client, model: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(model)
    except MlflowException as exc:
        if getattr(exc, "error_code", None) not in _ALREADY_EXISTS:
            raise


def register(
    settings: MlplatSettings, run_id: str, model: str, artifact: str | None, team: str
) -> DescribeModelVersion:
    """Register the run's model under ``model``; the run must belong to ``team``.

    Registering the same model of the same run again returns the version made the first
    time (``existing=True``) instead of a second identical version.
    """
    check_model_name(model)
    check_run_id(run_id)
    artifact = check_artifact(artifact)
    client = _client(settings)
    with translated_errors(settings):
        run = _get_run(client, run_id)
        if run.info.lifecycle_stage == "deleted":
            raise NotFoundError(
                f"Run {run_id} was deleted; restore it in MLflow or register another run."
            )
        owner, experiment = _run_team(client, run)
        if owner != team:
            raise PermissionDenied(_not_the_team(run_id, experiment, owner, team))
        source, model_id = model_source(client, run, artifact)
        version = _existing_version(client, model, run_id, source, model_id)
        existing = version is not None
        if not existing:
            _ensure_registered_model(client, model)
            version = client.create_model_version(
                model,
                source,
                run_id=run_id,
                tags={TEAM_TAG: team},  # evidence for people browsing MLflow, never authority
                model_id=model_id,
                await_creation_for=max(1, int(settings.tracking_retry_seconds)),
            )
        # Computed from the files every time: a tag on the version is not evidence of them.
        digest = artifact_digest(
            client, version.source, f"model {model!r} version {version.version}"
        )
        if (version.tags or {}).get(DIGEST_TAG) != digest:
            client.set_model_version_tag(model, version.version, DIGEST_TAG, digest)
    return DescribeModelVersion(
        model=model,
        version=str(version.version),
        run_id=run_id,
        source=version.source,
        artifact_digest=digest,
        existing=existing,
    )


def withdraw(settings: MlplatSettings, model: str, version: str) -> None:
    """Delete a version this process just created (its name turned out to be taken)."""
    client = _client(settings)
    with translated_errors(settings):
        client.delete_model_version(model, str(version))


# ---- what governance reads ----


def _lineage_pii(client, run_id: str) -> list[str]:
    """PII-flagged features of the run's retrievals (``mlplat/features.json``)."""
    from mlflow.exceptions import MlflowException

    try:
        lineage = client.download_artifacts(run_id, "mlplat/features.json")
        retrievals = json.loads(Path(lineage).read_text())["retrievals"]
        return sorted({f for r in retrievals for f in r.get("pii_features", [])})
    except (MlflowException, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        if is_unreachable(exc):
            raise
        return []  # no lineage file: the lineage check reports the missing fields


def read_version(
    settings: MlplatSettings,
    model: str,
    version: str,
    team: str | None = None,
    *,
    keep_artifacts: Path | None = None,
):
    """What governance needs to know about a version (``exists=False`` when MLflow says
    the model or version does not exist).

    With ``team`` (the owning team, from the platform store) the version's run must lie
    in an experiment of that team, else PermissionDenied: metrics and lineage are read
    only from runs the owning team controls. With ``keep_artifacts`` (an empty folder)
    the model's files are downloaded there, and the digest is theirs (one download for
    reading and freezing)."""
    from mlflow.exceptions import MlflowException

    from .checks import VersionInfo

    check_model_name(model)
    version = str(version)
    if not VERSION.match(version):
        raise UsageError(f"{version!r} is not a model version; versions are numbers like 1.")
    client = _client(settings)
    with translated_errors(settings):
        try:
            mv = client.get_model_version(model, version)
        except MlflowException as exc:
            if _not_found(exc):
                return VersionInfo(exists=False)
            raise
        run = None
        if mv.run_id:
            try:
                run = client.get_run(mv.run_id)
            except MlflowException as exc:
                if not _not_found(exc):
                    raise  # a run deleted for good leaves no lineage: the checks say so
        if team is not None:
            owner, experiment = _run_team(client, run) if run else ("", "(deleted run)")
            if owner != team:
                raise PermissionDenied(
                    f"Model {model!r} version {version} was made from run {mv.run_id or 'none'} "
                    f"in experiment {experiment!r}, not an experiment of the owning team "
                    f"{team!r}; register a version from one of {team!r}'s runs."
                )
        tags = run.data.tags if run else {}
        pii = _lineage_pii(client, mv.run_id) if tags.get("mlplat.features.retrievals") else []
        what = f"model {model!r} version {version}"
        if keep_artifacts is not None:
            digest = frozen.folder_digest(download_model(client, mv.source, keep_artifacts, what))
        else:
            digest = artifact_digest(client, mv.source, what)
        return VersionInfo(
            run_id=mv.run_id or "",
            artifact_digest=digest,
            metrics=dict(run.data.metrics) if run else {},
            lineage={
                "run_id": mv.run_id or "",
                "notebook_hash": tags.get("mlplat.notebook.sha256", ""),
                "code_version": tags.get(CODE_VERSION_TAG)
                or tags.get("mlflow.source.git.commit", ""),
                "feature_refs": [r for r in tags.get("mlplat.features.refs", "").split(",") if r],
                "data_source": tags.get("mlplat.features.views", ""),
            },
            features_pii=pii,
        )


def mirror(settings: MlplatSettings, model: str, version: str, target: str, status: str) -> None:
    """Reflect an outcome in MLflow: a version tag, and the target alias when approved."""
    client = _client(settings)
    with translated_errors(settings):
        client.set_model_version_tag(model, str(version), f"mlplat.approval.{target}", status)
        if status in ("approved", "deployed"):
            client.set_registered_model_alias(model, target, str(version))


def mirror_deployment(
    settings: MlplatSettings, model: str, target: str, serving: dict[str, int]
) -> None:
    """Reflect what a deployment serves in MLflow: the alias ``deployed-<target>`` on the
    version taking most traffic (removed when nothing is served) and, on every version of
    ``serving``, the tag ``mlplat.deployed.<target>`` with its share in percent (0 for one it
    no longer serves)."""
    from mlflow.exceptions import MlflowException

    client = _client(settings)
    alias = f"deployed-{target}"
    with translated_errors(settings):
        for version, percent in serving.items():
            client.set_model_version_tag(model, version, f"mlplat.deployed.{target}", str(percent))
        if any(serving.values()):
            primary = max(serving, key=serving.get)
            client.set_registered_model_alias(model, alias, primary)
        else:
            with contextlib.suppress(MlflowException):  # there was none
                client.delete_registered_model_alias(model, alias)
