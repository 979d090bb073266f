"""jupyter-mlplat: the whole ML loop from a notebook, governed.

``%load_ext jupyter_mlplat`` registers the ``%mlplat`` magics. The Python twins
(``jupyter_mlplat.log``, ``get_features``...) are imported on first use so that
loading the extension stays cheap (no MLflow, Feast, kfp or KServe at import).
"""

from __future__ import annotations

from .version import __version__

_FLUENT = (
    "status",
    "set_experiment",
    "start_run",
    "end_run",
    "run",
    "log",
    "flush",
    "active_run",
    "last_run",
    "get_features",
    "register",
    "request_approval",
    "list_approvals",
    "show_approval",
    "approve",
    "reject",
    "audit_verify",
    "deploy",
    "deployments",
    "promote",
    "rollback",
    "undeploy",
    "predict",
    "audit_export",
    "job_run",
    "job_rerun",
    "wait_for_job",
    "job_schedule",
    "jobs",
    "job",
    "job_logs",
    "job_output",
    "job_cancel",
    "run_notebook",
    "notebook_step",
    "step_output",
    "pipeline_submit",
    "wait_for_pipeline",
    "pipelines",
    "pipeline_status",
    "pipeline_logs",
    "pipeline_notebook",
    "pipeline_cancel",
)

__all__ = [
    *_FLUENT,
    "MlplatError",
    "__version__",
    "load_ipython_extension",
    "unload_ipython_extension",
]

from .errors import MlplatError  # noqa: E402  (cheap: no third-party imports)


def __getattr__(name: str):
    if name in _FLUENT:
        from . import fluent

        return getattr(fluent, name)
    raise AttributeError(f"module 'jupyter_mlplat' has no attribute {name!r}")


def load_ipython_extension(ipython) -> None:
    from .ipython import register

    register(ipython)


def unload_ipython_extension(ipython) -> None:
    from .ipython import unregister

    unregister(ipython)


def _jupyter_server_extension_points():
    from .server import MlplatExtension

    return [{"module": "jupyter_mlplat.server", "app": MlplatExtension}]


def _jupyter_labextension_paths():
    """The prebuilt JupyterLab extension (the side panel), for ``jupyter labextension``."""
    return [{"src": "labextension", "dest": "jupyter-mlplat"}]
