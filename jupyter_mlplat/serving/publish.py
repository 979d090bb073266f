"""Kubernetes mode: put an approved version's frozen copy where the cluster reads it.

KServe's storage initializer fetches ``<serving_storage_uri>/sha256/<digest>/model``. The
platform keeps its frozen copies on its own volume, so before an InferenceService is
applied the copy is uploaded there with MLflow's artifact repositories (``s3://``,
``gs://``, ``wasbs://``, ``abfss://``, ``file://`` …: whichever MLflow supports, with the
credentials of the platform's pod). The address is content-addressed, so a copy whose
``manifest.json`` is already there is complete and is not sent again; the manifest goes
last for that reason. ``pvc://`` names a volume the cluster mounts: nothing is uploaded
(the operator makes the platform's frozen folder that volume).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import ServiceUnavailable

log = logging.getLogger(__name__)

MODEL_DIR = "model"  # governance.frozen.MODEL_DIR (a domain sibling, not imported)
MANIFEST = "manifest.json"
MOUNTED_SCHEMES = ("pvc://",)


def destination(storage_uri: str, digest: str) -> str:
    return f"{storage_uri.rstrip('/')}/sha256/{digest}"


def publish(storage_uri: str, digest: str, folder: Path) -> bool:
    """Upload frozen copy ``folder`` (``manifest.json`` and ``model/``) for ``digest``; True
    when files were sent, False when the copy was already there or the storage is mounted.
    An unreachable or refusing store is a ServiceUnavailable naming it."""
    if not storage_uri or storage_uri.startswith(MOUNTED_SCHEMES):
        return False  # unset: the deployer refuses to apply, naming the setting
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    where = destination(storage_uri, digest)
    try:
        repo = get_artifact_repository(where)
        if MANIFEST in {item.path for item in repo.list_artifacts()}:
            return False
        repo.log_artifacts(str(folder / MODEL_DIR), artifact_path=MODEL_DIR)
        repo.log_artifact(str(folder / MANIFEST))
    except Exception as exc:  # noqa: BLE001 - any store's error; nothing is applied after it
        log.warning("publishing %s to %s failed: %s", digest, where, exc)
        raise ServiceUnavailable(
            f"Could not upload the frozen model copy to {where} "
            f"(c.MlplatSettings.serving_storage_uri): {type(exc).__name__}: {exc}"
        ) from None
    return True
