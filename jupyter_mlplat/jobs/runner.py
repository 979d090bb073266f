"""Run one job: its snapshot through papermill in a fresh kernel, as its owner.

Running as root with an ``account_prefix``, the job runs as the owner's OS account
``<prefix><owner>`` (the account their server runs as; it must exist), with no
supplementary groups, in a fresh working folder of theirs (0700) under ``work_root``; the
platform's storage (``store_root``, root-only) keeps the log (written through a file
descriptor the job inherits: it never gets the path) and, after the run, a copy of the
executed notebook read with ``O_NOFOLLOW`` (the owner could have swapped it for a link).
Not running as root, jobs run as the platform's own account (a platform for one person).

The outcome comes from the job process's exit code (:mod:`.execute`), never from the
output notebook (papermill marks every cell "completed" when the kernel dies); the output
notebook only names the failing cell and counts progress.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MlplatError, ServiceUnavailable
from ..oslayer import SAFE_ACCOUNT, traversable_dirs, unreachable_part
from . import execute, forkserver, notebooks
from .warm import ForkedJob, WarmStarters

_INHERITED = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
# MLflow 3 sends usage data from a thread of its own; a platform's jobs do not phone out
# (a profile's environment can say otherwise).
_QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
POLL_SECONDS = 0.25
RUN_MARKER = "MLPLAT_JOB_RUN"
# Run ids restart at 1 on each platform: leftovers are found by both markers, so one
# platform never kills another's job processes on the same machine.
PLATFORM_MARKER = "MLPLAT_JOB_PLATFORM"
PROGRESS_EVERY = 1.0


@dataclass
class Outcome:
    status: str  # succeeded | failed | cancelled
    reason: str
    failed_cell: dict | None = None
    cells: tuple[int, int] = (0, 0)
    mlflow_run_id: str = ""
    output: Path | None = None
    log: Path | None = None
    tasks: list | None = None  # a pipeline's tasks (see tasks_of)


@dataclass
class RunSpec:
    """What one run needs, decided by the application."""

    run_id: int
    owner: str
    team: str
    snapshot: bytes
    parameters: dict
    notebook_path: str
    environment: dict = field(default_factory=dict)  # the profile's variables
    schedule: str = ""
    digest: str = ""
    kind: str = "notebook"  # or "pipeline": the snapshot is its IR YAML
    experiment: str = ""  # the MLflow experiment (default: "<team>/jobs")


class JobRunner:
    """Executes runs; settings come in as parameters."""

    def __init__(
        self, *, store_root: Path, work_root: Path, python: str = sys.executable,
        account_prefix: str | None = None, timeout: float = 3600.0, kernel: str = "python3",
        tracking_uri: str = "", token_for: Callable[[str, float], str | None] | None = None,
        service_url: str = "", max_notebook_bytes: int = 50 * 1024 * 1024, stop_grace: float = 5.0,
        warm: bool = True, warm_idle_seconds: float = 600.0,
    ) -> None:  # fmt: skip
        self.isolating = os.geteuid() == 0
        if self.isolating and not account_prefix:
            raise MlplatError(
                "The platform runs as root, so jobs need the users' account prefix "
                "(jobs_account_prefix): a notebook is users' code and never runs as root."
            )
        self.store_root = Path(store_root)
        self.work_root = Path(work_root)
        self.python = python
        self.account_prefix = account_prefix if self.isolating else None
        self.timeout = timeout
        self.kernel = kernel
        self.tracking_uri = tracking_uri
        self.token_for = token_for
        self.service_url = service_url
        # This platform's jobs, told apart from another platform's on the same machine.
        self.platform_key = hashlib.sha256(str(Path(store_root).resolve()).encode()).hexdigest()[
            :16
        ]
        self.max_notebook_bytes = max_notebook_bytes
        self.stop_grace = stop_grace
        self.warm = (
            WarmStarters(python, self.store_root / "starters", warm_idle_seconds) if warm else None
        )

    # --- folders --------------------------------------------------------------------------

    def run_dir(self, run_id: int) -> Path:
        """Platform storage of one run: its log and executed notebook (root-only)."""
        return self.store_root / "runs" / str(int(run_id))

    def output_of(self, run_id: int) -> Path:
        return self.run_dir(run_id) / "output.ipynb"

    def log_of(self, run_id: int) -> Path:
        return self.run_dir(run_id) / "log.txt"

    def account(self, owner: str) -> pwd.struct_passwd | None:
        if self.account_prefix is None:
            return None
        name = f"{self.account_prefix}{owner}"
        if not SAFE_ACCOUNT.fullmatch(name):
            raise MlplatError(f"{owner!r} cannot have an OS account ({name!r} is not safe).")
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise ServiceUnavailable(
                f"The OS account {name} of {owner} does not exist yet, so their job cannot "
                "run as them; start their server once (it makes the account)."
            ) from None
        if entry.pw_uid == 0:
            raise MlplatError(f"The OS account {name!r} is root's; a job never runs as root.")
        return entry

    def _private(self, path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o700)
        return path

    def _work(self, run_id: int, account: pwd.struct_passwd | None) -> Path:
        if account is not None:
            traversable_dirs(self.work_root)
        self.work_root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.work_root, 0o711 if account else 0o700)
        workdir = self.work_root / str(int(run_id))
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(mode=0o700)
        if account is not None:
            os.chown(workdir, account.pw_uid, account.pw_gid)
            closed = unreachable_part(Path(self.python), account.pw_uid, account.pw_gid)
            closed = closed or unreachable_part(workdir, account.pw_uid, account.pw_gid)
            if closed:
                raise ServiceUnavailable(
                    f"The job account {account.pw_name} cannot reach {closed}; open it to "
                    "others (chmod o+x) or move the jobs' work folder or venv."
                )
        return workdir

    # --- running --------------------------------------------------------------------------

    def execute(
        self, spec: RunSpec, *, cancelled: Callable[[], bool] = lambda: False,
        on_progress: Callable[[int, int, str, list | None], None] = lambda *progress: None,
    ) -> Outcome:  # fmt: skip
        """Run ``spec`` to its end (or cancel, or timeout); the outcome. Never raises for
        what the notebook does; raises MlplatError when the run cannot start."""
        account = self.account(spec.owner)
        run_dir = self._private(self.run_dir(spec.run_id))
        workdir = self._work(spec.run_id, account)
        ids = (account.pw_uid, account.pw_gid) if account else None
        try:
            return self._run(spec, account, ids, run_dir, workdir, cancelled, on_progress)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _run(self, spec, account, ids, run_dir, workdir, cancelled, on_progress) -> Outcome:
        pipeline = spec.kind == "pipeline"
        source = workdir / ("pipeline.yaml" if pipeline else "input.ipynb")
        output, tasks_file = workdir / "output.ipynb", workdir / "tasks.json"
        _write_as(source, spec.snapshot, ids)
        cwd = Path(account.pw_dir) if account and Path(account.pw_dir).is_dir() else workdir
        notebook_dir = (cwd / spec.notebook_path).parent
        if account is None or notebook_dir.is_relative_to(cwd):
            cwd = notebook_dir if notebook_dir.is_dir() else cwd
        ipc = workdir / "kernel"  # + "-<n>": a Unix socket path holds 107 bytes at most
        job = {
            "kernel_ipc": str(ipc) if len(str(ipc)) < 96 else "",
            "input": str(source), "output": str(output), "parameters": spec.parameters,
            "kernel": self.kernel, "cwd": str(cwd), "tracking_uri": self.tracking_uri,
            "experiment": spec.experiment or f"{spec.team}/jobs", "kind": spec.kind,
            "workdir": str(workdir), "tasks_file": str(tasks_file),
            "run_name": spec.schedule or Path(spec.notebook_path).stem,
            "tags": {
                "mlflow.user": spec.owner, "mlplat.team": spec.team,
                "mlplat.job.run_id": str(spec.run_id), "mlplat.job.notebook": spec.notebook_path,
                "mlplat.job.snapshot_sha256": spec.digest, "mlplat.job.schedule": spec.schedule,
                "mlflow.source.name": spec.notebook_path,
            },
        }  # fmt: skip
        spec_path = workdir / "job.json"
        _write_as(spec_path, json.dumps(job).encode(), ids)
        env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
        env.update(_QUIET)
        env.update(spec.environment)
        home = account.pw_dir if account and Path(account.pw_dir).is_dir() else str(workdir)
        env.update(HOME=home, USER=spec.owner, LOGNAME=spec.owner, PYTHONUNBUFFERED="1")
        env.update(TMPDIR=str(workdir), MLPLAT_NOTEBOOK_PATH=spec.notebook_path)
        if pipeline:  # for its notebook steps' kernels and MLflow runs
            env.update(
                MLPLAT_KERNEL_IPC_DIR=str(workdir), MLPLAT_PIPELINE_EXPERIMENT=job["experiment"]
            )
        env[RUN_MARKER] = str(spec.run_id)  # the kernel inherits it: found and stopped after
        env[PLATFORM_MARKER] = self.platform_key
        token = None
        if (self.tracking_uri or self.service_url) and self.token_for:
            token = self.token_for(spec.owner, self.timeout + 600)
        if self.tracking_uri:
            env["MLFLOW_TRACKING_URI"] = env["MLPLAT_TRACKING_URI"] = self.tracking_uri
            if token:
                env["MLFLOW_TRACKING_TOKEN"] = token
        if self.service_url and token:
            # The job's %mlplat calls reach the platform as its owner, as in their server:
            # the same token (MLflow and this service only, for the job's time).
            env.update(
                MLPLAT_SERVICE_URL=self.service_url, JUPYTERHUB_API_TOKEN=token,
                MLPLAT_CLIENT_TRANSPORT="http",
            )  # fmt: skip
        log_path = run_dir / "log.txt"
        started = time.monotonic()
        with open(log_path, "ab") as log:
            os.chmod(log_path, 0o600)
            process = self._spawn(spec_path, cwd, env, log, account, ids)
        if process.pid > 0:
            self._remember(spec.run_id, process.pid)
        stopped, last_progress, mlflow_run = "", 0.0, ""
        try:
            while process.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(POLL_SECONDS)  # returns as soon as it exits
                if process.returncode is not None:
                    break
                if not stopped and cancelled():
                    stopped = "cancelled"
                    self._stop(process)
                elif not stopped and time.monotonic() - started > self.timeout:
                    stopped = "timeout"
                    self._stop(process)
                if time.monotonic() - last_progress > PROGRESS_EVERY:
                    last_progress = time.monotonic()
                    mlflow_run = mlflow_run or _mlflow_run_id(log_path)
                    if pipeline:
                        tasks = tasks_of(tasks_file)
                        done = sum(t["state"] in ("succeeded", "failed", "skipped") for t in tasks)
                        on_progress(done, len(tasks), mlflow_run, tasks)
                    else:
                        done, total = self._progress(output)
                        on_progress(done, total, mlflow_run, None)
        finally:
            if process.poll() is None:
                self._stop(process)
            _signal_group(process, signal.SIGKILL)
            kill_leftovers(spec.run_id, self.platform_key)  # the kernel has a session of its own
            self._forget(spec.run_id)
        code = process.returncode
        if pipeline:
            return self._pipeline_outcome(code, stopped, tasks_file, workdir, run_dir, log_path)
        copied = self._keep_output(output, run_dir / "output.ipynb")
        executed = _load(copied)
        failed = notebooks.failing_cell(executed) if executed is not None else None
        cells = notebooks.progress(executed) if executed is not None else (0, 0)
        outcome = Outcome(
            status="failed", reason="", failed_cell=failed, cells=cells,
            mlflow_run_id=mlflow_run or _mlflow_run_id(log_path), output=copied, log=log_path,
        )  # fmt: skip
        if stopped == "cancelled":
            outcome.status, outcome.reason = "cancelled", "cancelled while it ran"
        elif stopped == "timeout":
            outcome.reason = f"timed out after {self.timeout:g} s and was stopped"
        elif code == execute.OK:
            outcome.status, outcome.reason = "succeeded", ""
        elif code == execute.CELL_FAILED:
            where = f" (cell {failed['index']}: {failed.get('ename', '')})" if failed else ""
            outcome.reason = f"a cell raised an error{where}"
        elif code == execute.KERNEL_DIED:
            outcome.reason = "the kernel died or could not start; see the log"
        elif code is not None and code < 0:
            outcome.reason = f"the job process was killed by signal {-code}"
        else:
            outcome.reason = f"the job process failed (exit code {code}); see the log"
        return outcome

    def _pipeline_outcome(self, code, stopped, tasks_file, workdir, run_dir, log_path) -> Outcome:
        """A pipeline run's outcome: the exit code, its tasks' states, and each notebook
        step's executed notebook kept in platform storage (``tasks/<task>.ipynb``)."""
        tasks = tasks_of(tasks_file)
        kept = self._private(run_dir / "tasks")
        for task in tasks:
            relative = task.pop("notebook", "")
            if relative:
                fd = _open_beneath(workdir, relative)
                copied = self._keep_output(fd, kept / f"{task['name']}.ipynb") if fd else None
                task["notebook"] = bool(copied)
        failed = next((t["name"] for t in tasks if t["state"] == "failed"), "")
        done = sum(t["state"] in ("succeeded", "failed", "skipped") for t in tasks)
        outcome = Outcome(
            status="failed", reason="", cells=(done, len(tasks)),
            mlflow_run_id=_mlflow_run_id(log_path), log=log_path, tasks=tasks,
        )  # fmt: skip
        if stopped == "cancelled":
            outcome.status, outcome.reason = "cancelled", "cancelled while it ran"
            for task in tasks:
                if task["state"] in ("running", "pending"):
                    task["state"] = "cancelled"
        elif stopped == "timeout":
            outcome.reason = f"timed out after {self.timeout:g} s and was stopped"
        elif code == execute.OK:
            outcome.status = "succeeded"
        elif failed:
            outcome.reason = f"the task {failed} failed; `%mlplat pipeline logs ID --task {failed}`"
        elif code is not None and code < 0:
            outcome.reason = f"the job process was killed by signal {-code}"
        else:
            outcome.reason = f"the pipeline could not run (exit code {code}); see the log"
        if outcome.status != "succeeded":
            for task in tasks:
                if task["state"] == "running":
                    task["state"] = "failed"
        return outcome

    def task_notebook_of(self, run_id: int, task: str) -> Path:
        return self.run_dir(run_id) / "tasks" / f"{task}.ipynb"

    def _progress(self, output: Path) -> tuple[int, int]:
        executed = _load(output, self.max_notebook_bytes)
        return notebooks.progress(executed) if executed is not None else (0, 0)

    def _keep_output(self, output: Path | int, kept: Path) -> Path | None:
        """Copy the executed notebook (a path, or a descriptor opened safely) into platform
        storage: a regular file only, not followed if it is a link, at most
        ``max_notebook_bytes``."""
        if isinstance(output, int):
            fd = output
        else:
            try:
                fd = os.open(output, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                return None
        with os.fdopen(fd, "rb") as source:
            info = os.fstat(source.fileno())
            if not _regular(info.st_mode) or info.st_size > self.max_notebook_bytes:
                return None
            data = source.read(self.max_notebook_bytes + 1)
        tmp = kept.with_suffix(".tmp")
        tmp.write_bytes(data[: self.max_notebook_bytes])
        os.chmod(tmp, 0o600)
        os.replace(tmp, kept)
        return kept

    def _spawn(self, spec_path: Path, cwd: Path, env: dict, log, account, ids):
        """The run's job process: forked by the account's warm starter, or (warm starters
        off, or the starter failing) a fresh ``python -m jupyter_mlplat.jobs.execute``."""
        if self.warm is not None:
            try:
                starter = self.warm.for_account(account, self._starter_env(account))
                return starter.start(int(env[RUN_MARKER]), spec_path, cwd, env, log.fileno())
            except (MlplatError, OSError) as exc:
                log.write(
                    f"mlplat: the warm job starter failed ({exc}); a fresh process runs it\n".encode()
                )
                log.flush()
        popen_ids = {} if ids is None else {"user": ids[0], "group": ids[1], "extra_groups": []}
        return subprocess.Popen(
            [self.python, "-m", execute.__name__, str(spec_path)], cwd=cwd, env=env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, **popen_ids,
        )  # fmt: skip

    def _starter_env(self, account) -> dict:
        env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
        env.update(_QUIET)
        home = account.pw_dir if account else os.environ.get("HOME", "/")
        user = account.pw_name if account else pwd.getpwuid(os.getuid()).pw_name
        env.update(HOME=home, USER=user, LOGNAME=user, PYTHONUNBUFFERED="1")
        return env

    def prune_idle(self) -> int:
        return self.warm.prune() if self.warm is not None else 0

    def close(self) -> None:
        if self.warm is not None:
            self.warm.close()

    def _stop(self, process) -> None:
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(self.stop_grace)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(self.stop_grace)

    # --- processes a killed platform left ---------------------------------------------------

    def _pidfile(self, run_id: int) -> Path:
        # One folder per platform process: a replica on this machine reaps only what a
        # dead one left.
        return self.store_root / "pids" / str(os.getpid()) / f"{int(run_id)}.pid"

    def _remember(self, run_id: int, pgid: int) -> None:
        self._private(self.store_root / "pids")
        self._private(self.store_root / "pids" / str(os.getpid()))
        self._pidfile(run_id).write_text(f"{pgid}\n")

    def _forget(self, run_id: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._pidfile(run_id).unlink()

    def reap_stale(self) -> list[int]:
        """Kill the job processes a previous run of the platform left (it was killed); the
        run ids they belonged to (the caller marks those interrupted)."""
        reaped = []
        for folder in (self.store_root / "pids").glob("*"):
            if not folder.name.isdigit() or _alive_platform(int(folder.name)):
                continue
            reaped += self._reap(folder)
            with contextlib.suppress(OSError):
                folder.rmdir()
        return reaped

    def _reap(self, folder: Path) -> list[int]:
        reaped = []
        for pidfile in folder.glob("*.pid"):
            with contextlib.suppress(ValueError, OSError):
                pgid = int(pidfile.read_text().strip())
                cmdline = Path(f"/proc/{pgid}/cmdline").read_bytes()
                if any(
                    name.encode() in cmdline for name in (execute.__name__, forkserver.__name__)
                ):
                    os.killpg(pgid, signal.SIGKILL)
            with contextlib.suppress(ValueError):
                reaped.append(int(pidfile.stem))
                kill_leftovers(int(pidfile.stem), self.platform_key)
            with contextlib.suppress(FileNotFoundError):
                pidfile.unlink()
        return reaped


def _signal_group(process, signum: int) -> None:
    """Signal a job's process group: a forked one checks it is still the process forked."""
    if isinstance(process, ForkedJob):
        process.signal(signum)
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _alive_platform(pid: int) -> bool:
    """Whether ``pid`` is a live process of this platform (its pid folder is in use)."""
    if pid == os.getpid():
        return True
    try:
        return b"jupyter_mlplat" in Path(f"/proc/{pid}/cmdline").read_bytes() or b"pytest" in (
            Path(f"/proc/{pid}/cmdline").read_bytes()
        )
    except OSError:
        return False


def kill_leftovers(run_id: int, platform_key: str) -> int:
    """SIGKILL every process this platform started for run ``run_id`` still alive (found by
    the markers in its environment: jupyter_client starts kernels in sessions of their own);
    the count."""
    markers = {f"{RUN_MARKER}={int(run_id)}".encode(), f"{PLATFORM_MARKER}={platform_key}".encode()}
    killed = 0
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if not markers <= set(environ.read_bytes().split(b"\0")):
                continue
            os.kill(int(environ.parent.name), signal.SIGKILL)
            killed += 1
        except (OSError, ValueError):
            continue
    return killed


def _open_beneath(folder: Path, relative: str) -> int | None:
    """A descriptor of ``folder/relative`` opened one component at a time without following
    any link (the owner's job made every folder under ``folder``: a link among them must
    not lead the platform's read out of it); None if there is no such regular path."""
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        current = os.open(folder, flags | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        for part in parts[:-1]:
            following = os.open(part, flags | os.O_DIRECTORY, dir_fd=current)
            os.close(current)
            current = following
        return os.open(parts[-1], flags, dir_fd=current)
    except OSError:
        return None
    finally:
        os.close(current)


def _regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


def _write_as(path: Path, data: bytes, ids: tuple[int, int] | None) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        if ids is not None:
            os.fchown(file.fileno(), *ids)


def _load(path: Path | None, max_bytes: int = 50 * 1024 * 1024):
    if path is None:
        return None
    try:
        return notebooks.read_notebook(path, max_bytes)
    except (MlplatError, OSError, ValueError):
        return None


_TASK_STATES = ("pending", "running", "succeeded", "failed", "skipped", "cancelled")
_TASK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
MAX_TASKS_BYTES = 1024 * 1024


def tasks_of(path: Path) -> list[dict]:
    """A pipeline run's task states from its ``tasks.json`` (written by the owner's job
    process: read without following links, bounded, and kept only as plain facts)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return []
    with os.fdopen(fd, "rb") as file:
        if not _regular(os.fstat(file.fileno()).st_mode):
            return []
        raw = file.read(MAX_TASKS_BYTES + 1)
    try:
        listed = json.loads(raw) if len(raw) <= MAX_TASKS_BYTES else []
    except ValueError:
        return []
    tasks = []
    for item in listed if isinstance(listed, list) else []:
        if not isinstance(item, dict) or not _TASK_NAME.fullmatch(str(item.get("name", ""))):
            continue
        task = {"name": item["name"], "state": item.get("state")}
        if task["state"] not in _TASK_STATES:
            task["state"] = "pending"
        for key in ("started", "ended"):
            if isinstance(item.get(key), int | float) and not isinstance(item.get(key), bool):
                task[key] = float(item[key])
        run = item.get("mlflow_run_id")
        if isinstance(run, str) and run.isalnum() and len(run) <= 64:
            task["mlflow_run_id"] = run
        notebook = item.get("notebook")
        if isinstance(notebook, str) and notebook and ".." not in notebook.split("/"):
            task["notebook"] = notebook.lstrip("/")
        outputs = item.get("outputs")
        if isinstance(outputs, dict):
            task["outputs"] = {
                str(k)[:100]: v if isinstance(v, int | float | bool | type(None)) else str(v)[:500]
                for k, v in list(outputs.items())[:30]
            }  # fmt: skip
        tasks.append(task)
        if len(tasks) >= 500:
            break
    return tasks


def _mlflow_run_id(log_path: Path) -> str:
    """The MLflow run the job process announced on its first lines (``MLPLAT_MLFLOW_RUN_ID``)."""
    try:
        with open(log_path, "rb") as log:
            head = log.read(64 * 1024).decode("utf-8", "replace")
    except OSError:
        return ""
    for line in head.splitlines():
        if line.startswith("MLPLAT_MLFLOW_RUN_ID="):
            value = line.split("=", 1)[1].strip()
            return value if value.isalnum() and len(value) <= 64 else ""
    return ""
