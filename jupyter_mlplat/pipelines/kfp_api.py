"""Thin calls to a Kubeflow Pipelines v2 API through ``kfp.Client``: submit, status, cancel.

The platform calls KFP with its own token (``kfp_token_file``) in the team's namespace and
names the user in a header the cluster's ingress trusts from the platform only
(``kfp_user_header``, ``kubeflow-userid`` in Kubeflow's multi-user mode): the run is the
user's in KFP as it is in the platform's store. Nothing is read from a kubeconfig or
``~/.config/kfp``. API errors become the platform's errors, one sentence each, naming the API.
Tested against a local stand-in of the API (``tests/kfp_standin.py``), not a cluster.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from ..errors import MlplatError, NotFoundError, ServiceUnavailable, UsageError

# KFP's run and task states, as the platform's run statuses and task states.
RUN_STATES = {
    "PENDING": "running", "RUNNING": "running", "PAUSED": "running", "CANCELING": "running",
    "SUCCEEDED": "succeeded", "SKIPPED": "succeeded", "FAILED": "failed",
    "CANCELED": "cancelled",
}  # fmt: skip
TASK_STATES = {
    "PENDING": "pending", "RUNNING": "running", "SUCCEEDED": "succeeded", "SKIPPED": "skipped",
    "FAILED": "failed", "CANCELING": "running", "CANCELED": "cancelled", "CACHED": "succeeded",
}  # fmt: skip


class KfpApi:
    """One KFP API for one namespace and user."""

    def __init__(
        self, url: str, *, namespace: str, user: str, token: str = "", ca_file: str = "",
        user_header: str = "kubeflow-userid", timeout: float = 30.0,
    ) -> None:  # fmt: skip
        import kfp

        self.url = url.rstrip("/")
        self.namespace = namespace
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            try:
                self.client = kfp.Client(
                    host=self.url, namespace=namespace, existing_token=token or None,
                    ssl_ca_cert=ca_file or None,
                )  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - kfp raises several kinds here
                raise self._error(exc, "reach") from None
        api_client = self.client._run_api.api_client
        if user_header:
            api_client.set_default_header(user_header, user)
        self.timeout = timeout

    def _error(self, exc: Exception, action: str, what: str = "") -> MlplatError:
        status = getattr(exc, "status", 0) or 0
        what = f" {what}" if what else ""
        try:
            message = json.loads(getattr(exc, "body", "") or "{}").get("message", "")
        except (ValueError, AttributeError):
            message = ""
        detail = f" ({message.rstrip('.')})" if message else ""
        if status in (401, 403):
            return ServiceUnavailable(
                f"The Kubeflow Pipelines API at {self.url} refused the platform's credentials "
                f"when asked to {action}{what}{detail}; check kfp_token_file and the "
                "platform's access to the team's namespace."
            )
        if status == 404:
            return NotFoundError(f"Kubeflow Pipelines has no{what or ' such run'}{detail}.")
        if status in (400, 409, 422):
            return UsageError(f"Kubeflow Pipelines refused to {action}{what}{detail}.")
        return ServiceUnavailable(
            f"Could not {action}{what}: the Kubeflow Pipelines API at {self.url} did not "
            f"answer ({type(exc).__name__}{': ' + str(exc).splitlines()[0] if str(exc) else ''})."
        )

    def submit(self, pipeline_yaml: Path, arguments: dict, run_name: str, experiment: str) -> str:
        """Start a run of the compiled pipeline; its KFP run id."""
        import contextlib
        import io

        try:  # (kfp.Client prints links to the KFP UI: not into the service's log)
            with contextlib.redirect_stdout(io.StringIO()):
                result = self.client.create_run_from_pipeline_package(
                    str(pipeline_yaml), arguments=arguments, run_name=run_name,
                    experiment_name=experiment, namespace=self.namespace,
                )  # fmt: skip
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, "start", f"a run of {run_name}") from None
        return str(result.run_id)

    def status(self, run_id: str) -> tuple[str, list[dict]]:
        """The run's platform status and its tasks' states."""
        try:
            run = self.client.get_run(run_id)
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, "read", f"run {run_id}") from None
        state = RUN_STATES.get(str(run.state or "").upper(), "running")
        tasks = []
        details = getattr(run, "run_details", None)
        for task in getattr(details, "task_details", None) or []:
            name = str(task.display_name or task.task_id or "")
            if not name or name.startswith(("root", "executor")):
                continue
            tasks.append({
                "name": name[:200],
                "state": TASK_STATES.get(str(task.state or "").upper(), "pending"),
                **({"started": task.start_time.timestamp()} if task.start_time else {}),
                **({"ended": task.end_time.timestamp()} if task.end_time else {}),
            })  # fmt: skip
        return state, tasks

    def cancel(self, run_id: str) -> None:
        try:
            self.client.terminate_run(run_id)
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, "cancel", f"run {run_id}") from None
