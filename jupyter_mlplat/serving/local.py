"""One MLServer process for one MLflow model folder, configured as KServe configures it.

KServe's ``kserve-mlserver`` runtime runs ``mlserver start`` with ``MLSERVER_MODEL_NAME``,
``MLSERVER_MODEL_URI`` and ``MLSERVER_MODEL_IMPLEMENTATION=mlserver_mlflow.MLflowRuntime``
(set by the controller for ``modelFormat: mlflow``) plus ``MLSERVER_HTTP_PORT`` and
``MLSERVER_GRPC_PORT``; here the same variables, with loopback free ports, or (``sockets``,
as the platform's deployments run) with both APIs on Unix sockets in the server's private
working folder, which no other account can reach (resources/serving/mlserver_on_sockets.py).
The process leads its own process group (MLServer forks an inference worker) and logs to
one file.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import NotFoundError, ServiceUnavailable, UsageError
from ..ports import free_port
from . import unix_http
from .environment import ServingEnvironment

MLFLOW_IMPLEMENTATION = "mlserver_mlflow.MLflowRuntime"
# MLServer model names travel in URL paths (/v2/models/<name>/...).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")
# The model server runs users' pickles: it gets the locale and numeric-library knobs it needs
# and none of the platform's secrets (hub tokens, database URLs).
_INHERITED = re.compile(r"^(PATH|LANG|LC_[A-Z]+|TZ|TMPDIR|OPENBLAS_\w+|OMP_\w+|MKL_\w+)$")
# What MLServer logs when a model does not load; it may keep running after that.
_LOAD_FAILED = ("Couldn't load model", "Some of the models failed to load")
_ERROR_LINE = re.compile(r"^[\w.]*(Error|Exception|Exit)\w*: .+")


@functools.cache
def _socket_launcher() -> str:
    from ..resources import resource_path

    return resource_path("serving/mlserver_on_sockets.py").read_text()


class ModelServerFailed(ServiceUnavailable):
    """MLServer exited or did not get its model ready; ``log_tail`` holds its last lines."""

    def __init__(self, message: str, log_tail: str, log_path: Path):
        super().__init__(message)
        self.log_tail = log_tail
        self.log_path = log_path


@dataclass(frozen=True)
class ModelServerHandle:
    """Where one running MLServer is: process, ports, base URL and log."""

    name: str
    model_uri: Path
    pid: int
    host: str
    http_port: int
    grpc_port: int
    metrics_port: int | None
    log_path: Path
    http_socket: Path | None = None  # set when the APIs listen on Unix sockets

    @property
    def base_url(self) -> str:
        """The URL of the REST API (``http://localhost`` on a socket: the Host header)."""
        return "http://localhost" if self.http_socket else f"http://{self.host}:{self.http_port}"


def kserve_environment(
    name: str, model_uri: Path, host: str, http_port: int, grpc_port: int,
    metrics_port: int | None, workdir: Path,
) -> dict[str, str]:  # fmt: skip
    """The ``MLSERVER_*`` variables KServe's mlserver runtime sets, for a loopback process."""
    env = {
        "MLSERVER_MODEL_NAME": name,
        "MLSERVER_MODEL_URI": str(model_uri),
        "MLSERVER_MODEL_IMPLEMENTATION": MLFLOW_IMPLEMENTATION,
        "MLSERVER_HTTP_PORT": str(http_port),
        "MLSERVER_GRPC_PORT": str(grpc_port),
        # MLServer binds 0.0.0.0 unless told; deployments are reached through the service only.
        "MLSERVER_HOST": host,
    }
    if metrics_port is None:
        env["MLSERVER_METRICS_ENDPOINT"] = ""  # falsy: MLServer starts no metrics server
    else:
        env["MLSERVER_METRICS_PORT"] = str(metrics_port)
        env["MLSERVER_METRICS_DIR"] = str(workdir / "metrics")
    return env


class LocalModelServer:
    """A started MLServer: ``wait_ready``, ``alive``, ``stop`` and its ``handle``."""

    def __init__(self, handle: ModelServerHandle, process: subprocess.Popen):
        self.handle = handle
        self._process = process
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @classmethod
    def start(
        cls, environment: ServingEnvironment, model_uri: str | Path, name: str, workdir: str | Path,
        *, host: str = "127.0.0.1", metrics: bool = False, extra_env: dict[str, str] | None = None,
        log_path: str | Path | None = None, account: tuple[int, int] | None = None,
        sockets: bool = False,
    ) -> LocalModelServer:  # fmt: skip
        """Start MLServer for the MLflow model folder ``model_uri`` as model ``name``.

        ``workdir`` (created) holds its runtime files and, unless ``log_path`` names another
        file, its log (``mlserver.log``); it must not be inside the model folder. With
        ``account`` ``(uid, gid)`` the process runs as that account with no supplementary
        groups; the caller makes the folders usable by it. With ``sockets`` the REST and gRPC
        APIs listen on ``workdir/http.sock`` and ``workdir/grpc.sock``, not on ports.
        Returns at once: call :meth:`wait_ready`.
        """
        if not _NAME.match(name):
            raise UsageError(
                f"{name!r} cannot name a served model: use letters, digits, '.', '_' or '-'."
            )
        model_uri = Path(model_uri).resolve()
        if not model_uri.is_dir():
            raise NotFoundError(
                f"There is no model folder at {model_uri}; pass an MLflow model directory."
            )
        workdir = Path(workdir).resolve()
        # The repository root is scanned recursively for model-settings.json: an empty
        # folder of our own means the model comes from the environment only, as in KServe.
        repository = workdir / "repository"
        repository.mkdir(parents=True, exist_ok=True)
        log_path = Path(log_path).resolve() if log_path else workdir / "mlserver.log"
        if sockets:
            http_port = grpc_port = 0  # unused: the launcher binds the sockets instead
            http_socket = workdir / "http.sock"
            for stale in (http_socket, workdir / "grpc.sock"):
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
        else:
            http_port, grpc_port, http_socket = free_port(host), free_port(host), None
        metrics_port = free_port(host) if metrics else None
        env = {k: v for k, v in os.environ.items() if _INHERITED.match(k)}
        env.update(HOME=str(workdir), PYTHONUNBUFFERED="1")
        env.update(
            kserve_environment(name, model_uri, host, http_port, grpc_port, metrics_port, workdir)
        )
        env.update(extra_env or {})
        command = [str(environment.python), "-m", "mlserver.cli.main", "start", str(repository)]
        if sockets:
            # The launcher's source goes in argv: the model server's account need not reach
            # this package's files.
            env["MLPLAT_HTTP_SOCKET"] = str(http_socket)
            env["MLPLAT_GRPC_SOCKET"] = str(workdir / "grpc.sock")
            command[1:3] = ["-c", _socket_launcher()]
        # Popen's user/group/extra_groups switch ids in the child without a preexec_fn (which
        # is unsafe in a threaded service); extra_groups=[] drops the platform's groups.
        ids = (
            {} if account is None else {"user": account[0], "group": account[1], "extra_groups": []}
        )
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                command, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, **ids,
            )  # fmt: skip
        handle = ModelServerHandle(
            name=name, model_uri=model_uri, pid=process.pid, host=host, http_port=http_port,
            grpc_port=grpc_port, metrics_port=metrics_port, log_path=log_path,
            http_socket=http_socket,
        )  # fmt: skip
        return cls(handle, process)

    def alive(self) -> bool:
        return self._process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.handle.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _ok(self, path: str) -> bool:
        if self.handle.http_socket is not None:
            try:
                return (
                    unix_http.fetch(str(self.handle.http_socket), "GET", path, timeout=2)[0] == 200
                )
            except (OSError, http.client.HTTPException):
                return False
        try:
            with self._opener.open(self.handle.base_url + path, timeout=2) as answer:
                return answer.status == 200
        except (OSError, urllib.error.HTTPError):
            return False

    def ready(self) -> bool:
        """Server ready and this model ready (``/v2/health/ready`` alone is true with no models)."""
        return self._ok("/v2/health/ready") and self._ok(f"/v2/models/{self.handle.name}/ready")

    def wait_ready(self, timeout: float = 60) -> None:
        """Return once the model answers ready; else stop the process and raise
        :class:`ModelServerFailed` with its log tail: when it exits, logs a failed load
        (it may stay up without the model) or is not ready within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            if self._process.poll() is not None:
                self._fail(f"exited with code {self._process.returncode} before it was ready")
            text, seen = self._read_log_from(seen)
            if any(marker in text for marker in _LOAD_FAILED):
                self._fail("could not load the model")
            if self.ready():
                return
            if time.monotonic() > deadline:
                self._fail(f"was not ready within {timeout:g} s")
            time.sleep(0.2)

    def _read_log_from(self, offset: int) -> tuple[str, int]:
        try:
            with open(self.handle.log_path, "rb") as log:
                log.seek(offset)
                data = log.read()
        except OSError:
            return "", offset
        # Back up to the last newline so a marker split across two reads is still seen.
        cut = data.rfind(b"\n") + 1
        return data[:cut].decode("utf-8", "replace"), offset + cut

    def _fail(self, what: str) -> None:
        self.stop()
        tail = self.log_tail()
        errors = [line for line in tail.splitlines() if _ERROR_LINE.match(line.strip())]
        cause = f" ({errors[-1].strip()})" if errors else ""
        raise ModelServerFailed(
            f"MLServer for model '{self.handle.name}' {what}{cause}; "
            f"check the model folder {self.handle.model_uri} and the log {self.handle.log_path}."
            f"\n--- last lines of the log ---\n{tail}",
            log_tail=tail,
            log_path=self.handle.log_path,
        )

    def stop(self, grace: float = 10) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds; idempotent."""
        pgid = self._process.pid  # start_new_session: the leader's pid is the group id
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(grace)
        # The inference worker can outlive its parent: whatever is left of the group goes.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self._process.wait()
        # Killed orphans linger as zombies until init reaps them: give that a moment, so a
        # caller that checks the group right after sees it gone.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def __enter__(self) -> LocalModelServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
