"""The Kubernetes deployer: one KServe ``InferenceService`` per deployment.

The records (:mod:`.deployments`) say what serves; this makes the cluster match them. A
deployment without a canary is an InferenceService of its primary version; with a canary it
is the canary's spec plus ``canaryTrafficPercent``, and KServe sends the rest to the previous
ready revision (the primary's), which is the split the record holds. Promote drops the
percent; a rollback applies the version to return to; undeploy deletes the object. The model
is the frozen copy, which KServe's storage initializer fetches from ``storage_uri`` (the
platform's frozen root as the cluster sees it: ``<storage_uri>/sha256/<digest>/model``); its
digest is checked by the platform before each apply and recorded as an annotation.

Resources, GPU and namespace come from the team's profile: the default profile the team may
use. Predictions are forwarded to the InferenceService's cluster-local address
(``status.address.url``), where MLServer answers V2 under the deployment's name.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import NotFoundError, ServiceUnavailable, UsageError
from ..profiles.model import Profile, ProfileSet
from ..profiles.render import gpu_node_labels
from ..store.models import Deployment
from . import kube_api
from .deployments import ACTIVE
from .kubernetes import RUNTIME_NAME, inference_service, serving_runtime

RECONNECT_SECONDS = 600.0
FROZEN_MODEL_DIR = "model"  # governance.frozen.MODEL_DIR (a domain sibling, not imported)


@dataclass(frozen=True)
class KubeServed:
    """What the cluster says of one deployment's InferenceService."""

    status: str  # ready | not ready | missing
    message: str
    url: str | None
    version: str | None  # the version its latest spec serves


class KubeDeployer:
    """Apply, inspect and delete the InferenceServices of deployments."""

    def __init__(
        self,
        connect: Callable[[], Any],
        profiles: ProfileSet,
        *,
        storage_uri: str,
        runtime_image: str,
        mlflow_version: str,
        ready_timeout: float = 300.0,
        poll_interval: float = 2.0,
    ):
        self._connect = connect
        self._client, self._connected = None, 0.0
        self.profiles = profiles
        self.storage_uri = storage_uri.rstrip("/")
        self.runtime_image = runtime_image
        self.mlflow_version = mlflow_version
        self.ready_timeout = ready_timeout
        self.poll_interval = poll_interval

    @property
    def client(self):
        """A client, made anew every few minutes: projected service-account tokens rotate."""
        now = time.monotonic()
        if self._client is None or now - self._connected > RECONNECT_SECONDS:
            self._client, self._connected = self._connect(), now
        return self._client

    # --- pure: the objects of a record ----------------------------------------------------

    def profile_for(self, team: str) -> Profile:
        """The team's default profile (the first it may use when none is marked default)."""
        allowed = [p for p in self.profiles.profiles if p.allowed_for([f"team-{team}"])]
        if not allowed:
            raise UsageError(
                f"No spawner profile is open to team {team!r}, so its deployments have no "
                "namespace or resources; add the group team-" + team + " to a profile."
            )
        return next((p for p in allowed if p.default), allowed[0])

    def storage_of(self, digest: str) -> str:
        if not self.storage_uri:
            raise ServiceUnavailable(
                "Kubernetes serving needs MlplatSettings.serving_storage_uri: where the "
                "cluster reads the platform's frozen copies (e.g. 'pvc://mlplat-frozen')."
            )
        return f"{self.storage_uri}/sha256/{digest}/{FROZEN_MODEL_DIR}"

    def manifests(self, row: Deployment) -> tuple[dict, dict]:
        """The ``ServingRuntime`` and ``InferenceService`` that serve ``row`` as recorded."""
        if not self.runtime_image:
            raise ServiceUnavailable(
                "Kubernetes serving needs MlplatSettings.serving_runtime_image: an MLServer "
                f"image with mlserver-mlflow and mlflow {self.mlflow_version}."
            )
        if row.status != ACTIVE:
            raise UsageError(f"Deployment {row.name} is undeployed: nothing to serve.")
        profile = self.profile_for(row.team)
        version = row.canary or row.primary
        isvc = inference_service(
            name=row.name,
            storage_uri=self.storage_of(version["digest"]),
            profile=profile,
            model=row.model,
            version=version["version"],
            approval_id=version["approval_id"],
            run_id=version["run_id"],
            digest=f"sha256:{version['digest']}",
            target=row.target,
            canary_percent=row.canary_percent if row.canary else None,
            gpu_node_labels=gpu_node_labels(self.profiles),
        )
        runtime = serving_runtime(
            image=self.runtime_image,
            namespace=isvc["metadata"]["namespace"],
            name=RUNTIME_NAME,
            mlflow_version=self.mlflow_version,
        )
        return runtime, isvc

    # --- the cluster ----------------------------------------------------------------------

    def apply(self, row: Deployment, *, wait: bool) -> KubeServed:
        """Make the cluster serve ``row``; with ``wait``, until its InferenceService is Ready
        (ServiceUnavailable with the last condition after ``ready_timeout``)."""
        runtime, isvc = self.manifests(row)
        kube_api.apply(self.client, runtime)
        applied = kube_api.apply(self.client, isvc)
        if wait:
            applied = kube_api.wait_ready(
                self.client, isvc["metadata"]["namespace"], row.name,
                timeout=self.ready_timeout, interval=self.poll_interval,
            )  # fmt: skip
        return self._served(applied)

    def remove(self, row: Deployment) -> bool:
        """Delete the deployment's InferenceService (False when there was none)."""
        namespace = self.profile_for(row.team).namespace
        manifest = {
            "apiVersion": f"{kube_api.ISVC_GROUP}/{kube_api.ISVC_VERSION}",
            "kind": "InferenceService",
            "metadata": {"name": row.name, "namespace": namespace},
        }
        return kube_api.delete(self.client, manifest)

    def served(self, row: Deployment) -> KubeServed:
        namespace = self.profile_for(row.team).namespace
        try:
            obj = kube_api.get_inference_service(self.client, namespace, row.name)
        except NotFoundError:
            return KubeServed("missing", "no InferenceService", None, None)
        return self._served(obj)

    @staticmethod
    def _served(obj: dict) -> KubeServed:
        status = obj.get("status") or {}
        condition = kube_api.ready_condition(obj) or {}
        url = (status.get("address") or {}).get("url") or status.get("url")
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        return KubeServed(
            status="ready" if kube_api.is_ready(obj) else "not ready",
            message=condition.get("message") or condition.get("reason") or "",
            url=url.rstrip("/") if url else None,
            version=annotations.get("mlplat.io/model-version"),
        )
