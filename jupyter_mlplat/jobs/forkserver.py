"""A warm job starter: one per job account, forks a job process per run.

A fresh ``python -m jupyter_mlplat.jobs.execute`` per run spends most of its time importing
mlflow and papermill (about 3 s of a 4 s job). This process, started by
:mod:`.warm` as the job's account (the same account, Python and working folder a cold job
process gets), imports them once and then forks one job process per run: the child starts a
session of its own, takes the run's log as stdout/stderr (a descriptor sent with the
request: it never gets the path), changes to the run's folder, replaces its environment with
the run's and runs :func:`.execute.main`; its exit code is the outcome, as for a cold one.

It talks to the platform over one ``SOCK_SEQPACKET`` socket it inherits (descriptor
``argv[1]``), one JSON message per packet:

* platform → here: ``{"run": ID, "spec": PATH, "cwd": DIR, "env": {...}}`` with the log's
  descriptor attached;
* here → platform: ``{"run": ID, "pid": PID}`` once forked (or ``{"run": ID, "error": ...}``),
  then ``{"run": ID, "exit": CODE}`` (negative: killed by that signal).

When the platform goes away (the socket reads end of file) the job processes still running
are killed and this process exits: the platform marks those runs interrupted at its next start.
Never imported by the platform.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import selectors
import signal
import socket
import sys

MAX_MESSAGE = 256 * 1024


def warm_up() -> None:
    """Import what a job process needs and load what its first calls would load."""
    with contextlib.suppress(Exception):
        import mlflow  # noqa: F401

        from ..tracking.plugins import defer_feast_header_provider

        # Loads the header plugins a first request would load, without importing Feast.
        defer_feast_header_provider()
        from mlflow.tracking.context.registry import resolve_tags
        from mlflow.tracking.request_header.registry import resolve_request_headers

        # Each request asks Databricks' header plugin whether it runs in a Databricks
        # notebook, which imports IPython (0.45 s); starting a run resolves context tags.
        resolve_request_headers()
        resolve_tags({})
        import mlflow.store.artifact.http_artifact_repo  # noqa: F401
        import mlflow.store.tracking.rest_store  # noqa: F401
        import mlflow.tracing.processor.base_mlflow  # noqa: F401 - set_tracking_uri's
        import mlflow.tracing.provider  # noqa: F401
    with contextlib.suppress(Exception):
        import nbformat
        import papermill  # noqa: F401
        import papermill.engines  # noqa: F401
        import papermill.translators  # noqa: F401
        from jupyter_client.manager import KernelManager  # noqa: F401
        from nbclient import NotebookClient  # noqa: F401

        nbformat.validate(nbformat.v4.new_notebook())  # compiles the schema once
    import threading

    with contextlib.suppress(Exception):  # pipelines' runs
        import kfp.local  # noqa: F401
        from kfp.components import load_component_from_file  # noqa: F401

        from ..pipelines import local_run  # noqa: F401
    from . import execute  # noqa: F401

    if threading.active_count() > 1:  # a fork copies no thread, only their locks
        names = ", ".join(t.name for t in threading.enumerate())
        print(f"mlplat: the warm starter has threads after its imports ({names})", flush=True)


def _receive(conn: socket.socket) -> tuple[dict | None, list[int]]:
    fds = array.array("i")
    data, ancdata, _flags, _addr = conn.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(4 * fds.itemsize))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
    if not data:
        return None, list(fds)
    return json.loads(data), list(fds)


def _child(conn: socket.socket, selector: selectors.BaseSelector, request: dict, log_fd: int):
    """In the forked child: become the run's job process; never returns."""
    code = 3
    try:
        selector.close()
        conn.close()
        os.setsid()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # the log, the other runs' pidfds
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in request["env"].items()})
        from . import execute

        sys.argv = [execute.__file__, request["spec"]]
        code = execute.main(request["spec"])
    except BaseException:  # noqa: BLE001 - reported as the exit code; the log says why
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve(fd: int) -> None:
    conn = socket.socket(fileno=fd)
    selector = selectors.DefaultSelector()
    selector.register(conn, selectors.EVENT_READ, None)
    children: dict[int, tuple[int, int]] = {}  # pid -> (run id, pidfd)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    def send(message: dict) -> None:
        with contextlib.suppress(OSError):
            conn.send(json.dumps(message).encode())

    try:
        while True:
            for key, _ in selector.select():
                if key.data is None:
                    request, fds = _receive(conn)
                    if request is None:
                        return  # the platform went away
                    if len(fds) != 1:
                        for extra in fds:
                            os.close(extra)
                        send({"run": request.get("run"), "error": "no log descriptor"})
                        continue
                    try:
                        pid = os.fork()
                    except OSError as exc:
                        os.close(fds[0])
                        send({"run": request.get("run"), "error": f"fork failed: {exc}"})
                        continue
                    if pid == 0:
                        _child(conn, selector, request, fds[0])
                    os.close(fds[0])
                    pidfd = os.pidfd_open(pid)
                    children[pid] = (request["run"], pidfd)
                    selector.register(pidfd, selectors.EVENT_READ, pid)
                    send({"run": request["run"], "pid": pid})
                else:
                    pid = key.data
                    run_id, pidfd = children.pop(pid)
                    selector.unregister(pidfd)
                    os.close(pidfd)
                    _, status = os.waitpid(pid, 0)
                    code = os.waitstatus_to_exitcode(status)
                    send({"run": run_id, "exit": code})
    finally:
        for pid in children:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)


if __name__ == "__main__":
    warm_up()
    serve(int(sys.argv[1]))
    os._exit(0)
