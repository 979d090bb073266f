"""Thin calls to the Kubernetes API for KServe objects and notebook Jobs/CronJobs: apply,
get, delete, wait for Ready.

Uses the official ``kubernetes`` client against an API server URL with a bearer token (the
caller passes them; nothing is read from a kubeconfig or the environment). ``apply`` is
server-side apply (one PATCH, ``application/apply-patch+yaml``, field manager
``jupyter-mlplat``, ``force``): it creates the object or updates it, and removes the fields
we set before and no longer set (a promoted canary's ``canaryTrafficPercent``, a GPU node
selector after a move to CPU), which a JSON merge-patch would leave behind. API errors become
the platform's errors, each naming the object.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes.client import ApiClient, Configuration, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from ..errors import (
    ConflictError,
    MlplatError,
    NotFoundError,
    ServiceUnavailable,
    UsageError,
)

FIELD_MANAGER = "jupyter-mlplat"
PLURALS = {
    "InferenceService": "inferenceservices",
    "ServingRuntime": "servingruntimes",
    "Job": "jobs",  # batch/v1: /apis/batch/v1/... is the same path shape as a custom object's
    "CronJob": "cronjobs",
}
ISVC_GROUP, ISVC_VERSION = "serving.kserve.io", "v1beta1"
REQUEST_TIMEOUT = 30.0


def connect(server: str, token: str, verify: bool | str = True) -> ApiClient:
    """A client for ``server`` (``https://…:6443``); ``verify``: a CA bundle path or a flag.

    Use it as a context manager so its connection pool is closed."""
    config = Configuration(host=server.rstrip("/"))
    config.api_key = {"authorization": token}
    config.api_key_prefix = {"authorization": "Bearer"}
    config.verify_ssl = bool(verify)
    if isinstance(verify, str):
        config.ssl_ca_cert = verify
    # One attempt per call: wait_ready polls anyway, and a hung API should fail fast.
    config.retries = False
    return ApiClient(configuration=config)


def _describe(kind: str, namespace: str, name: str) -> str:
    return f"{kind} {namespace}/{name}"


def _status_message(exc: ApiException) -> str:
    try:
        return json.loads(exc.body or b"{}").get("message") or exc.reason or ""
    except (ValueError, AttributeError):
        return exc.reason or ""


def _error(exc: Exception, action: str, what: str, client: ApiClient) -> MlplatError:
    """The platform error for a failed call, one sentence naming ``what`` and the API."""
    server = client.configuration.host
    if not isinstance(exc, ApiException) or exc.status == 0:
        return ServiceUnavailable(
            f"Could not {action} {what}: the Kubernetes API at {server} did not answer ({exc})."
        )
    message = _status_message(exc).rstrip(".")
    detail = f" ({message})" if message else ""
    # The platform's credentials, not the caller's: a 503 naming the dependency (a 401 or
    # 403 would tell the user their own login failed).
    if exc.status == 401:
        return ServiceUnavailable(
            f"The Kubernetes API at {server} rejected the platform's token (401) when asked "
            f"to {action} {what}; check MlplatSettings.kube_token_file."
        )
    if exc.status == 403:
        return ServiceUnavailable(
            f"The Kubernetes API at {server} does not let the platform {action} {what} "
            f"(403{detail}); grant its service account that verb in the namespace."
        )
    classes = {404: NotFoundError, 409: ConflictError}
    if exc.status in classes:
        cls = classes[exc.status]
    elif exc.status >= 500:
        cls = ServiceUnavailable
    else:
        cls = UsageError  # 400/415/422: the manifest or the request was refused
    return cls(f"Could not {action} {what}: Kubernetes answered {exc.status}{detail}.")


def _path(manifest: dict[str, Any]) -> tuple[str, str, str, str, str]:
    group, _, version = manifest["apiVersion"].rpartition("/")
    kind = manifest["kind"]
    if kind not in PLURALS:
        raise UsageError(f"Cannot apply a {kind}: only {', '.join(PLURALS)} are supported.")
    meta = manifest["metadata"]
    return group, version, meta["namespace"], PLURALS[kind], meta["name"]


def apply(client: ApiClient, manifest: dict[str, Any]) -> dict[str, Any]:
    """Create or update ``manifest`` by server-side apply; the object the API returns."""
    group, version, namespace, plural, name = _path(manifest)
    what = _describe(manifest["kind"], namespace, name)
    try:
        return client.call_api(
            f"/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}",
            "PATCH",
            query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            header_params={
                "Content-Type": "application/apply-patch+yaml",  # JSON is YAML
                "Accept": "application/json",
            },
            body=manifest,
            auth_settings=["BearerToken"],
            response_type="object",
            _return_http_data_only=True,
            _request_timeout=REQUEST_TIMEOUT,
        )
    except (ApiException, urllib3.exceptions.HTTPError) as exc:
        raise _error(exc, "apply", what, client) from exc


def get_inference_service(client: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    """The InferenceService as the API has it (NotFoundError when absent)."""
    what = _describe("InferenceService", namespace, name)
    try:
        return CustomObjectsApi(client).get_namespaced_custom_object(
            ISVC_GROUP, ISVC_VERSION, namespace, PLURALS["InferenceService"], name,
            _request_timeout=REQUEST_TIMEOUT,
        )  # fmt: skip
    except (ApiException, urllib3.exceptions.HTTPError) as exc:
        raise _error(exc, "read", what, client) from exc


def delete(client: ApiClient, manifest: dict[str, Any]) -> bool:
    """Delete the object ``manifest`` names; False when it was already gone."""
    group, version, namespace, plural, name = _path(manifest)
    what = _describe(manifest["kind"], namespace, name)
    try:
        # Background: a batch/v1 Job's default is to orphan its pods (a running notebook
        # would go on); for the other kinds it is already the default.
        CustomObjectsApi(client).delete_namespaced_custom_object(
            group, version, namespace, plural, name, propagation_policy="Background",
            _request_timeout=REQUEST_TIMEOUT,
        )  # fmt: skip
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise _error(exc, "delete", what, client) from exc
    except urllib3.exceptions.HTTPError as exc:
        raise _error(exc, "delete", what, client) from exc
    return True


def ready_condition(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The ``Ready`` condition of the object's status, if it reports one."""
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), None)


def is_ready(obj: dict[str, Any]) -> bool:
    """Ready is True for the current spec (a Ready left from the previous generation is not)."""
    condition = ready_condition(obj)
    if condition is None or condition.get("status") != "True":
        return False
    observed = (obj.get("status") or {}).get("observedGeneration")
    generation = (obj.get("metadata") or {}).get("generation")
    return observed is None or generation is None or observed >= generation


def wait_ready(
    client: ApiClient,
    namespace: str,
    name: str,
    timeout: float = 300.0,
    interval: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll until the InferenceService is Ready; ServiceUnavailable after ``timeout`` s."""
    deadline = clock() + timeout
    last = "no Ready condition reported yet"
    while True:
        obj = get_inference_service(client, namespace, name)
        if is_ready(obj):
            return obj
        condition = ready_condition(obj)
        if condition is not None:
            text = condition.get("message") or condition.get("reason") or ""
            last = f"Ready={condition.get('status')}" + (f": {text}" if text else "")
        if clock() >= deadline:
            raise ServiceUnavailable(
                f"{_describe('InferenceService', namespace, name)} was not Ready after "
                f"{timeout:g} s; last condition: {last}."
            )
        sleep(min(interval, max(0.0, deadline - clock())))
