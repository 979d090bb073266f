"""KServe manifests as plain dicts (pure builders): the InferenceService and its runtime.

An approved version is served as an ``InferenceService`` (serving.kserve.io/v1beta1) in the
team's namespace: ``modelFormat: {name: mlflow}`` with no version (runtimes match on the
name), ``protocolVersion: v2``, ``storageUri`` of the frozen copy, CPU/memory/GPU from the
team profile, and ``mlplat.io/…`` labels and annotations linking approval, version, run and
digest. It names our ``ServingRuntime`` (MLServer + mlserver-mlflow with our mlflow) rather
than the stock ``kserve-mlserver``. Nothing here talks to a cluster: see :mod:`.kube_api`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import UsageError
from ..profiles.model import NO_GPU, GpuChoice, Profile, parse_memory
from ..profiles.render import GPU_RESOURCE

GROUP = "serving.kserve.io"
ISVC_API_VERSION = f"{GROUP}/v1beta1"
RUNTIME_API_VERSION = f"{GROUP}/v1alpha1"
RUNTIME_NAME = "mlplat-mlserver"
PREFIX = "mlplat.io/"
MODEL_FORMAT = "mlflow"
PROTOCOL = "v2"
MLFLOW_RUNTIME_CLASS = "mlserver_mlflow.MLflowRuntime"
HTTP_PORT = 8080  # KServe's kserve-mlserver ports (MLServer's own default is 8082)
GRPC_PORT = 9000
MODELS_DIR = "/mnt/models"  # where KServe's storage initializer puts storageUri

DNS_LABEL_MAX = 63
# KServe accepts any DNS-1035 name, but then derives longer DNS labels from it. With
# canaryTrafficPercent (Serverless mode) Knative tags the predictor routes "latest-" and
# "prev-" + "<name>-predictor", each a host label of at most 63 characters; and the default
# ingress domainTemplate "{{ .Name }}-{{ .Namespace }}" makes "<name>-predictor-<namespace>"
# one label too (kserve#4807: longer names fail at reconcile, after the apply succeeded).
NAME_MAX = DNS_LABEL_MAX - len("latest-") - len("-predictor")  # 46
_DNS_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?\Z")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?\Z")


def check_name(name: str, namespace: str | None = None) -> str:
    """``name`` when KServe can serve an InferenceService by it, else a UsageError."""
    example = "Use a name such as 'fraud-model-v3'."
    if not isinstance(name, str) or not _DNS_1035.match(name):
        raise UsageError(
            f"Deployment name {name!r} is not a DNS-1035 label (lowercase letters, digits and "
            f"'-', starting with a letter and ending with a letter or digit). {example}"
        )
    if len(name) > NAME_MAX:
        raise UsageError(
            f"Deployment name {name!r} has {len(name)} characters; KServe derives longer "
            f"names from it, so it must have at most {NAME_MAX}. {example}"
        )
    if namespace is not None and len(f"{name}-predictor-{namespace}") > DNS_LABEL_MAX:
        room = DNS_LABEL_MAX - len(f"-predictor-{namespace}")
        raise UsageError(
            f"Deployment name {name!r} is too long for namespace {namespace!r}: KServe's host "
            f"label '<name>-predictor-<namespace>' allows at most {room} characters. {example}"
        )
    return name


def check_canary(percent: int | None) -> int | None:
    """``percent`` when it is a canary share KServe accepts (1-99), ``None`` for no canary."""
    if percent is None:
        return None
    if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 99:
        raise UsageError(
            f"Canary traffic {percent!r} is not a whole percentage from 1 to 99; "
            "use e.g. --canary 10, or no --canary to send all traffic to the new version."
        )
    return percent


def gpu_choice(profile: Profile, key: str | None = None) -> GpuChoice | None:
    """The profile's GPU choice ``key`` (``None``: its default); ``None`` when it is no GPU."""
    options = profile.gpu_options()
    key = profile.default_gpu_key if key is None else key
    if key == NO_GPU:
        return None
    for choice in options:
        if choice.key == key:
            return choice
    valid = ", ".join(c.key for c in options) or NO_GPU
    raise UsageError(f"Profile {profile.slug!r} has no GPU choice {key!r}; choose one of: {valid}.")


def cpu_quantity(cores: float) -> str:
    """Cores as a Kubernetes quantity: ``2`` -> ``"2"``, ``0.5`` -> ``"500m"``."""
    milli = round(cores * 1000)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def memory_quantity(amount: str) -> str:
    """A profile amount (``"2G"``, binary as JupyterHub reads it) as ``"2Gi"``.

    Kubernetes reads ``2G`` as 10**9 bytes, so the suffix must change, not stay."""
    size = parse_memory(amount)
    for suffix, unit in (("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


def _avoid_gpu_nodes(gpu_node_labels: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    # Same rule as the spawner (profiles.render): CPU pods stay off GPU nodes.
    expressions = [
        {"key": key, "operator": "NotIn", "values": list(values)}
        for key, values in gpu_node_labels.items()
    ]
    required = {"nodeSelectorTerms": [{"matchExpressions": expressions}]}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}


def provenance_labels(
    *, model: str, version: str | int, approval_id: int, run_id: str, target: str | None
) -> dict[str, str]:
    """Selectable facts; a model name that is not a valid label value stays annotation-only."""
    values = {
        "app.kubernetes.io/managed-by": "jupyter-mlplat",
        f"{PREFIX}approval-id": str(approval_id),
        f"{PREFIX}model-version": str(version),
        f"{PREFIX}run-id": run_id,
        f"{PREFIX}model": model,
        f"{PREFIX}target": target or "",
    }
    return {k: v for k, v in values.items() if v and len(v) <= 63 and _LABEL_VALUE.match(v)}


def inference_service(
    *,
    name: str,
    storage_uri: str,
    profile: Profile,
    model: str,
    version: str | int,
    approval_id: int,
    run_id: str,
    digest: str,
    target: str | None = None,
    gpu: str | None = None,
    canary_percent: int | None = None,
    namespace: str | None = None,
    runtime: str = RUNTIME_NAME,
    gpu_node_labels: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The ``InferenceService`` serving the frozen copy at ``storage_uri``.

    ``storage_uri`` is the frozen copy's model folder (``s3://…/frozen/sha256/<digest>/model``
    or ``pvc://…``). ``namespace`` defaults to the profile's (the team's). ``gpu`` is one of
    the profile's GPU choice keys (``None``: its default, ``"none"``: no GPU); without a GPU
    and with ``gpu_node_labels`` (``profiles.render.gpu_node_labels``) the pod avoids GPU
    nodes as sessions do. ``canary_percent`` (1-99) sends that share to this revision and the
    rest to the previous ready one. MLServer serves the model under the InferenceService's
    name (KServe sets ``MLSERVER_MODEL_NAME`` to it): ``/v2/models/<name>/infer``.
    """
    namespace = namespace or profile.namespace
    check_name(name, namespace)
    check_canary(canary_percent)
    if not re.match(r"[a-z][a-z0-9+.-]*://.", storage_uri or ""):
        raise UsageError(
            f"Storage URI {storage_uri!r} is not a URI KServe can fetch; give the frozen "
            "copy's location, e.g. 's3://bucket/frozen/sha256/<digest>/model' or 'pvc://…'."
        )
    choice = gpu_choice(profile, gpu)
    limits: dict[str, str] = {
        "cpu": cpu_quantity(profile.cpu_limit),
        "memory": memory_quantity(profile.mem_limit),
    }
    model_spec: dict[str, Any] = {
        "modelFormat": {"name": MODEL_FORMAT},
        "protocolVersion": PROTOCOL,
        "runtime": runtime,
        "storageUri": storage_uri,
        # MLServer reports it as model_version in each answer: which side of a canary
        # split answered.
        "env": [{"name": "MLSERVER_MODEL_VERSION", "value": str(version)}],
        "resources": {
            "requests": {
                "cpu": cpu_quantity(profile.cpu_guarantee),
                "memory": memory_quantity(profile.mem_guarantee),
            },
            "limits": limits,
        },
    }
    predictor: dict[str, Any] = {"model": model_spec}
    if choice is not None:
        limits[GPU_RESOURCE] = str(choice.count)
        predictor["nodeSelector"] = dict(choice.type.node_selector)
        if choice.type.tolerations:
            predictor["tolerations"] = [dict(t) for t in choice.type.tolerations]
    elif gpu_node_labels:
        predictor["affinity"] = _avoid_gpu_nodes(gpu_node_labels)
    if canary_percent is not None:
        predictor["canaryTrafficPercent"] = canary_percent
    annotations = {
        f"{PREFIX}approval-id": str(approval_id),
        f"{PREFIX}model": model,
        f"{PREFIX}model-version": str(version),
        f"{PREFIX}run-id": run_id,
        f"{PREFIX}frozen-digest": digest,  # sha256:<64 hex> is no valid label value
        f"{PREFIX}profile": profile.slug,
    }
    if target:
        annotations[f"{PREFIX}target"] = target
    return {
        "apiVersion": ISVC_API_VERSION,
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": provenance_labels(
                model=model,
                version=version,
                approval_id=approval_id,
                run_id=run_id,
                target=target,
            ),
            "annotations": annotations,
        },
        "spec": {"predictor": predictor},
    }


def serving_runtime(
    *, image: str, namespace: str, name: str = RUNTIME_NAME, mlflow_version: str | None = None
) -> dict[str, Any]:
    """A namespaced ``ServingRuntime``: MLServer + mlserver-mlflow from ``image``.

    ``image`` must carry the project's mlflow version. The stock ``kserve-mlserver`` image is
    built with mlflow 2.x, which cannot load mlflow 3's default ``skops`` serialization, so
    versions logged here would fail to load there. Shaped after KServe's
    ``config/runtimes/kserve-mlserver.yaml`` (ports 8080/9000, ``MODELS_DIR``), with the
    implementation fixed to the MLflow runtime instead of the ``modelClass`` label template.
    The ``server-type: mlserver`` annotation makes KServe set ``MLSERVER_MODEL_NAME`` and
    ``MLSERVER_MODEL_URI`` on the pod. ``mlflow_version`` is recorded as an annotation.
    """
    check_name(name)
    annotations = {f"{GROUP}/server-type": "mlserver"}
    if mlflow_version:
        annotations[f"{PREFIX}mlflow-version"] = mlflow_version
    env = {
        "MLSERVER_MODEL_IMPLEMENTATION": MLFLOW_RUNTIME_CLASS,
        "MLSERVER_HTTP_PORT": str(HTTP_PORT),
        "MLSERVER_GRPC_PORT": str(GRPC_PORT),
        "MODELS_DIR": MODELS_DIR,
    }
    return {
        "apiVersion": RUNTIME_API_VERSION,
        "kind": "ServingRuntime",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "jupyter-mlplat"},
            "annotations": annotations,
        },
        "spec": {
            "annotations": {
                "prometheus.kserve.io/port": str(HTTP_PORT),
                "prometheus.kserve.io/path": "/metrics",
            },
            "supportedModelFormats": [{"name": MODEL_FORMAT, "autoSelect": True, "priority": 1}],
            "protocolVersions": [PROTOCOL],
            "containers": [
                {
                    "name": "kserve-container",
                    "image": image,
                    "env": [{"name": k, "value": v} for k, v in env.items()],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "privileged": False,
                        "runAsNonRoot": True,
                        "capabilities": {"drop": ["ALL"]},
                        # Pod Security Admission "restricted" (the team namespaces) needs it.
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    # Defaults only: each InferenceService sets its profile's resources.
                    "resources": {
                        "requests": {"cpu": "1", "memory": "2Gi"},
                        "limits": {"cpu": "1", "memory": "2Gi"},
                    },
                }
            ],
        },
    }
