"""`make demo`: the platform's whole walk-through, headless, as two users.

A fresh embedded platform (`mlplat up`) in a temporary MLPLAT_HOME on free loopback ports;
alice (requester, team-churn) and rita (reviewer, team-churn + mlplat-reviewers) log in
through the hub's login form, get API tokens, start their servers and open a notebook there
as JupyterLab does. Every step is a `%mlplat` magic in the right user's kernel:

    alice  trains v1 and v2 in `%%mlplat run` cells on the demo Feast features, registers
           both and requests `production` for them
    rita   approves both (a requester cannot approve her own request)
    alice  deploys v1 to production, v2 as a 20% canary, predicts (and counts which version
           answered), promotes v2, schedules 04_scheduled_report.ipynb every minute and
           waits for one run of it to succeed
    rita   verifies the audit chain

Each step prints one line; the summary has the links and the wall time from the first
training cell to the canary endpoint answering. Then the deployment and the schedule are
removed, the servers and the platform stopped, the temporary home deleted, and the OS
accounts the demo created (jupyter-alice, jupyter-rita, mlplat-serve-churn) removed.
Exit status 1 when a step fails (it says which, with the kernel's error), 130 on Ctrl-C.

    python scripts/demo.py [--keep] [--report NOTEBOOK] [--fail-at STEP]

--keep leaves the platform up after the summary until Ctrl-C, so the links can be opened.
--report schedules a notebook of yours (uploaded into alice's folder) instead of the
example 04_scheduled_report.ipynb; it needs a `parameters` cell declaring `experiment`.
--fail-at STEP makes that step fail on purpose: `approve` has alice (the requester) approve
her own requests, which the platform refuses; any other step ends with an error cell.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_hub import CellResult, Hub, HubError, Notebook  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
REQUESTER, REVIEWER = "alice", "rita"
TEAM = "churn"
EXPERIMENT = "churn-demo"
MODEL = "churn-demo-model"
TARGET = "production"
CANARY = 20
PREDICTIONS = 50
REPORT = "04_scheduled_report.ipynb"
CRON = "* * * * *"
REPORT_TIMEOUT = 180.0  # seconds from scheduling to the run's end
USER_PREFIX, SERVING_PREFIX = "jupyter-", "mlplat-serve-"
NOTEBOOK = "mlplat-demo.ipynb"
MARK = "DEMO"  # cells print `DEMO {json}` lines for this script to read


# ---- the cells, as saved in each user's notebook ----------------------------------------

FEATURES = (
    "customer_stats:tenure_months,customer_stats:monthly_spend,"
    "customer_stats:support_tickets,customer_activity:sessions_7d"
)

SETUP = f"""\
%load_ext jupyter_mlplat
import json, time
import numpy as np
import pandas as pd
import jupyter_mlplat as mlplat

COLUMNS = ["tenure_months", "monthly_spend", "support_tickets", "sessions_7d"]
%mlplat experiment {EXPERIMENT}
rng = np.random.default_rng(7)
training_entities = pd.DataFrame({{
    "customer_id": rng.integers(1000, 1200, size=400),
    "event_timestamp": pd.Timestamp("2026-02-01", tz="UTC")
    + pd.to_timedelta(rng.integers(0, 40 * 24, size=400), unit="h"),
}})"""


def train_cell(name: str, estimator: str, params: str, make: str) -> str:
    return f"""\
%%mlplat run {name} {params}
from sklearn.model_selection import train_test_split
{estimator}
features = %mlplat features {FEATURES} --entities training_entities --historical
X = features[COLUMNS].fillna(0)
y = ((X["support_tickets"] > 2) | (X["sessions_7d"] < 3)).astype(int)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
model = {make}.fit(X_train, y_train)
accuracy = model.score(X_test, y_test)
%mlplat log accuracy={{accuracy}}"""


TRAIN_V1 = train_cell(
    "churn-logreg",
    "from sklearn.linear_model import LogisticRegression",
    "-p model=logistic-regression -p C=0.5",
    "LogisticRegression(C=0.5, max_iter=200)",
)
TRAIN_V2 = train_cell(
    "churn-forest",
    "from sklearn.ensemble import RandomForestClassifier",
    "-p model=random-forest -p n_estimators=50 -p max_depth=5",
    "RandomForestClassifier(n_estimators=50, max_depth=5, random_state=0)",
)


def after_training(var: str) -> str:
    return f"""\
{var} = mlplat.last_run()
print("{MARK} " + json.dumps({{"run": {var}.run_id, "status": {var}.status, "url": {var}.url,
                            "accuracy": accuracy}}))"""


REGISTER = f"""\
v1 = %mlplat register {{run1.run_id}} --model {MODEL}
v2 = %mlplat register {{run2.run_id}} --model {MODEL}
print("{MARK} " + json.dumps({{"versions": [v1.version, v2.version]}}))"""

REQUEST = f"""\
r1 = %mlplat approval request {MODEL} {{v1.version}} --target {TARGET} --reason "first churn model in production"
r2 = %mlplat approval request {MODEL} {{v2.version}} --target {TARGET} --reason "random forest, canary first"
print("{MARK} " + json.dumps({{"requests": [
    {{"id": r.id, "version": r.version, "status": r.status,
     "failed": [c.name for c in r.checks if not c.passed]}} for r in (r1, r2)]}}))"""

REVIEWER_SETUP = """\
%load_ext jupyter_mlplat
import json
import jupyter_mlplat as mlplat"""

APPROVE = f"""\
pending = %mlplat approval list --pending
requests = [view.model for view in pending]  # the requests behind the views
mine = sorted((r for r in requests if r.model == "{MODEL}" and r.target == "{TARGET}"),
              key=lambda r: r.id)
decided = []
for r in mine:
    d = %mlplat approval approve {{r.id}} --comment "checks, lineage and holdout accuracy reviewed"
    decided.append({{"id": d.id, "version": d.version, "status": d.status,
                    "by": [x.reviewer for x in d.decisions]}})
print("{MARK} " + json.dumps({{"pending": len(mine), "decided": decided}}))"""

DESCRIBE = f"""\
print("{MARK} " + json.dumps({{"name": d.name, "status": d.status, "endpoint": d.endpoint,
    "traffic": [[t.version, t.percent, t.server] for t in d.traffic]}}))"""

DEPLOY = f"d = %mlplat deploy {MODEL} {{v1.version}} --target {TARGET}\n" + DESCRIBE
CANARY_CELL = (
    f"d = %mlplat deploy {MODEL} {{v2.version}} --target {TARGET} --canary {CANARY}\n" + DESCRIBE
)
PROMOTE = f"d = %mlplat promote {MODEL} --target {TARGET}\n" + DESCRIBE

PREDICT = f"""\
customers = pd.DataFrame({{"customer_id": list(range(1000, 1010))}})
online = %mlplat features {FEATURES} --entities customers
rows = online[COLUMNS].fillna(0).astype(X_train.dtypes.to_dict())
answered = {{}}
for _ in range({PREDICTIONS}):
    scores = %mlplat predict {MODEL} --target {TARGET} --data rows
    answered[scores.attrs["version"]] = answered.get(scores.attrs["version"], 0) + 1
print("{MARK} " + json.dumps({{"answered": answered, "rows": len(rows),
                            "scores": scores.iloc[:, 0].tolist()}}))"""

SCHEDULE = f"""\
s = %mlplat job schedule @REPORT@ --cron "{CRON}" -p experiment={EXPERIMENT}
scheduled_at = time.monotonic()
print("{MARK} " + json.dumps({{"id": s.id, "name": s.name, "next": str(s.next_fire_at)}}))"""

WAIT_REPORT = f"""\
FINAL = ("succeeded", "failed", "cancelled", "interrupted", "skipped")
job = None
while time.monotonic() < scheduled_at + {REPORT_TIMEOUT:.0f}:
    listed = %mlplat job list
    runs = [j for j in listed if j.schedule_id == s.id]  # newest first
    if runs and runs[-1].status in FINAL:
        job = runs[-1]  # the schedule's first run, ended
        break
    time.sleep(2)
found = {{"waited": round(time.monotonic() - scheduled_at, 1)}}
if job is not None:
    shown = %mlplat job show {{job.id}}
    found.update(id=job.id, status=job.status, shown=repr(shown), mlflow_run=job.mlflow_run_id)
    if job.status != "succeeded":
        log = %mlplat job logs {{job.id}}
        found["log"] = log.text[-20000:]
    elif job.mlflow_run_id:
        import mlflow
        found["experiment_id"] = mlflow.get_run(job.mlflow_run_id).info.experiment_id
print("{MARK} " + json.dumps(found))"""

AUDIT = f"""\
verified = %mlplat audit verify
print("{MARK} " + json.dumps({{"ok": verified.ok, "events": verified.events,
                            "text": repr(verified)}}))"""

UNDEPLOY = f"""\
gone = %mlplat undeploy {MODEL} --target {TARGET}
print("{MARK} " + json.dumps({{"status": gone.status}}))"""

UNSCHEDULE = f"""\
removed = %mlplat job unschedule {{s.id}}
print("{MARK} " + json.dumps({{"id": removed.id}}))"""


def deliberate(step: str) -> str:
    return (
        "from jupyter_mlplat.errors import UsageError\n"
        f'raise UsageError("deliberate failure of step {step!r} (--fail-at {step})")'
    )


# ---- what a step is, and how it is shown ----------------------------------------------


class StepFailed(Exception):
    """A step did not do what it should; ``details`` are the lines that say why."""

    def __init__(self, message: str, details: list[str] | None = None):
        super().__init__(message)
        self.details = details or []


@dataclass
class Step:
    name: str
    user: str  # "-" for the platform itself


def cell_failure(result: CellResult) -> list[str]:
    """The kernel's error as a few plain lines: mlplat's one-line errors as they are, the
    end of a traceback otherwise."""
    lines = []
    if result.traceback and len(result.traceback) > 1:
        text = "\n".join(result.traceback).strip().splitlines()
        lines += text[-12:]
    elif result.error:
        lines.append(result.error)
    if not result.error and result.stderr.strip():
        lines += result.stderr.strip().splitlines()[-10:]
    return lines or ["(the kernel said nothing more)"]


def users_python(root: Path) -> str | None:
    """A Python of this venv that the users' accounts can run, when this one is not (a venv
    made from a Python under /root, as before the Makefile built it on /usr/bin/python3):
    the system's interpreter of the same version with this venv's packages, as a venv of
    symlinks in ``root``. None when this venv's own Python will do."""
    from jupyter_mlplat.oslayer import unreachable_part

    if unreachable_part(sys.executable, 65534, 65534) is None:
        return None
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    base = shutil.which(version, path="/usr/local/bin:/usr/bin:/bin")
    if base is None or unreachable_part(base, 65534, 65534):
        raise StepFailed(
            f"{sys.executable} is closed to other accounts and there is no {version} in "
            "/usr/bin they can run; rebuild .venv on /usr/bin/python3 (make clean; make demo)"
        )
    shim = root / "python"
    (shim / "bin").mkdir(parents=True)
    (shim / "bin" / "python").symlink_to(base)
    for name in ("lib", "lib64", "include", "etc", "share"):
        if (Path(sys.prefix) / name).exists():
            (shim / name).symlink_to(Path(sys.prefix) / name)
    (shim / "pyvenv.cfg").write_text(f"home = {Path(base).parent}\n")
    for path in (shim, shim / "bin", shim / "pyvenv.cfg"):
        os.chmod(path, 0o755)
    return str(shim / "bin" / "python")


class Demo:
    def __init__(self, args):
        self.args = args
        self.report = Path(args.report).name if args.report else REPORT
        self.started = time.monotonic()
        self.root: Path | None = None
        self.up_log = Path(os.devnull)
        self.proc: subprocess.Popen | None = None
        self.hub: Hub | None = None
        self.tokens: dict[str, str] = {}
        self.passwords: dict[str, str] = {}
        self.notebooks: dict[str, Notebook] = {}
        self.servers: list[str] = []
        self.accounts_before = {entry.pw_name for entry in pwd.getpwall()}
        self.found: dict = {}  # what the steps said: runs, versions, endpoint, schedule...
        self.deployed = self.scheduled = False
        self.number = 0
        self.serving_at = self.first_cell = self.platform_up = 0.0
        self.loop = asyncio.new_event_loop()

    # ---- output ------------------------------------------------------------------------

    def line(self, step: Step, seconds: float, outcome: str, detail: str = "") -> None:
        self.number += 1
        text = f"{self.number:3}  {step.name:<26} {step.user:<6} {seconds:6.1f} s  {outcome}"
        print(f"{text}  {detail}".rstrip() if detail else text, flush=True)

    def step(self, step: Step, action):
        """Run ``action()`` (it returns the detail to show); one line, ok or FAILED."""
        started = time.monotonic()
        try:
            detail = action()
        except StepFailed as exc:
            self.line(step, time.monotonic() - started, "FAILED")
            message = f'step "{step.name}" ({step.user}) failed: {exc}'
            raise StepFailed(message, exc.details) from None
        except (HubError, requests.RequestException, OSError, TimeoutError) as exc:
            self.line(step, time.monotonic() - started, "FAILED")
            raise StepFailed(f'step "{step.name}" ({step.user}) failed: {exc}') from None
        self.line(step, time.monotonic() - started, "ok", detail or "")
        return detail

    def cells(self, user: str, *cells: str, timeout: float = 300) -> dict:
        """Run ``cells`` in ``user``'s notebook, in order; what they printed as markers."""
        notebook = self.notebooks[user]
        found: dict = {}
        for code in cells:
            result = self.loop.run_until_complete(notebook.run(code, timeout))
            if not result.ok:
                raise StepFailed("the kernel says:", cell_failure(result))
            found.update(result.markers(MARK))
        return found

    # ---- the platform ------------------------------------------------------------------

    def start_platform(self) -> str:
        from jupyter_mlplat.ports import free_port

        self.root = Path(tempfile.mkdtemp(prefix="mlplat-demo-"))
        os.chmod(self.root, 0o711)  # the users' accounts traverse it to their homes
        home = self.root / "home"
        home.mkdir(mode=0o700)
        ports: set[int] = set()
        while len(ports) < 5:
            ports.add(free_port())
        port, hub_port, proxy_api_port, service_port, mlflow_port = sorted(ports)
        lines = [
            "# Written by scripts/demo.py: a throwaway platform on free loopback ports.",
            "c = get_config()  # noqa: F821",
            f"c.MlplatHub.port = {port}",
            f"c.MlplatHub.hub_port = {hub_port}",
            f"c.MlplatHub.proxy_api_port = {proxy_api_port}",
            f"c.MlplatHub.service_port = {service_port}",
            f"c.MlplatHub.mlflow_port = {mlflow_port}",
            # The demo's report runs every minute (the platform's floor is 5 min by default).
            "c.MlplatSettings.jobs_min_interval_seconds = 60",
        ]
        if os.geteuid() == 0:
            # Homes, model servers' and jobs' folders inside the temporary root, not in
            # /home and /var/lib: everything the demo made goes with it.
            for name in ("homes", "serving", "jobs-work"):
                (self.root / name).mkdir(mode=0o711)
                os.chmod(self.root / name, 0o711)
            python = users_python(self.root)
            if python:
                lines.append(f"c.MlplatLocalSpawner.python = {python!r}")
            lines += [
                "c.MlplatLocalSpawner.home_dir_template = "
                f"{str(self.root / 'homes') + '/{account}'!r}",
                f"c.MlplatSettings.serving_dir = {str(self.root / 'serving')!r}",
                f"c.MlplatSettings.jobs_work_dir = {str(self.root / 'jobs-work')!r}",
            ]
        (home / "mlplat_config.py").write_text("\n".join(lines) + "\n")
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("JUPYTERHUB_", "MLPLAT_", "MLFLOW_"))
        }
        env["MLPLAT_HOME"] = str(home)
        proxy_bin = REPO / "node_modules" / ".bin"
        if proxy_bin.is_dir():  # as `make up` does; the Makefile puts it first too
            env["PATH"] = os.pathsep.join([str(proxy_bin), env.get("PATH", os.defpath)])
        self.up_log = self.root / "mlplat-up.log"  # what a terminal would show
        with open(self.up_log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyter_mlplat.cli", "up"],
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: it gets SIGINT as from a terminal
            )
        url = f"http://127.0.0.1:{port}"
        self.hub = Hub(url)
        deadline = time.monotonic() + 300
        for path in ("/hub/health", "/services/mlplat/api/health", "/services/mlflow/health"):
            self._wait_answer(url + path, deadline)
        passwords = home / "hub" / "demo-passwords.txt"
        self.passwords = dict(
            line.split(":", 1) for line in passwords.read_text().splitlines() if ":" in line
        )
        return url

    def _wait_answer(self, url: str, deadline: float) -> None:
        session = requests.Session()
        session.trust_env = False
        while True:
            if self.proc.poll() is not None:
                raise StepFailed(
                    f"mlplat up exited with status {self.proc.returncode}", self.platform_logs()
                )
            try:
                if session.get(url, timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise StepFailed(f"{url} did not answer in time", self.platform_logs())
            time.sleep(0.5)

    def platform_logs(self, lines: int = 15) -> list[str]:
        out = []
        for path in (self.up_log, self.root / "home" / "hub" / "jupyterhub.log"):
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out += [f"{path.name} ends:", *(f"  {t}" for t in tail)]
        return out

    def sign_in(self, user: str) -> str:
        token = self.hub.login_token(user, self.passwords[user], "mlplat demo", 3 * 3600)
        self.tokens[user] = token
        self.servers.append(user)
        self.hub.spawn(user, token, timeout=180)
        notebook = Notebook(self.hub, user, token, NOTEBOOK)
        cells = self.notebook_cells(user)
        notebook.save(cells)
        self.loop.run_until_complete(notebook.open())
        self.notebooks[user] = notebook
        return f"{self.hub.url}/user/{user}/lab/tree/{NOTEBOOK}"

    def notebook_cells(self, user: str) -> list[str]:
        """What the user's notebook holds: the cells the demo runs there (so the runs'
        notebook hash and code version are those of this saved notebook)."""
        if user == REQUESTER:
            return [
                SETUP,
                TRAIN_V1,
                after_training("run1"),
                TRAIN_V2,
                after_training("run2"),
                REGISTER,
                REQUEST,
                DEPLOY,
                CANARY_CELL,
                PREDICT,
                PROMOTE,
                SCHEDULE.replace("@REPORT@", self.report),
                WAIT_REPORT,
                UNDEPLOY,
                UNSCHEDULE,
            ]
        return [REVIEWER_SETUP, APPROVE, AUDIT]

    # ---- the steps -----------------------------------------------------------------------

    def fail_here(self, name: str, user: str = REQUESTER) -> None:
        """``--fail-at name``: the step's work is done; a cell of the user's fails now."""
        if self.args.fail_at == name:
            self.cells(user, deliberate(name))

    def train(self, name: str, cells: tuple[str, ...]) -> str:
        found = self.cells(REQUESTER, *cells)
        if found.get("status") != "FINISHED":
            raise StepFailed(f"the run ended {found.get('status')}, not FINISHED")
        self.found.setdefault("runs", []).append(found)
        self.fail_here(name)
        return f"accuracy {found['accuracy']:.3f}, run {found['run'][:12]}"

    def register(self) -> str:
        found = self.cells(REQUESTER, REGISTER)
        self.found["versions"] = found["versions"]
        self.fail_here("register")
        return f"{MODEL} versions {', '.join(found['versions'])}"

    def request(self) -> str:
        found = self.cells(REQUESTER, REQUEST)
        self.found["requests"] = found["requests"]
        waiting = [r for r in found["requests"] if r["status"] == "requested"]
        if len(waiting) != 2:
            states = ", ".join(f"#{r['id']} {r['status']}" for r in found["requests"])
            raise StepFailed(f"production requests should wait for a reviewer: {states}")
        self.fail_here("request")
        failed = sorted({name for r in waiting for name in r["failed"]})
        checks = f"checks failed: {', '.join(failed)}" if failed else "all checks passed"
        ids = ", ".join(f"#{r['id']}" for r in waiting)
        return f"requests {ids} wait for a reviewer ({checks})"

    def approve(self) -> str:
        # --fail-at approve: the requester tries it herself; four eyes must refuse.
        user = REQUESTER if self.args.fail_at == "approve" else REVIEWER
        found = self.cells(user, REVIEWER_SETUP, APPROVE)
        decided = found["decided"]
        if found["pending"] != 2 or any(d["status"] != "approved" for d in decided):
            states = ", ".join(f"#{d['id']} {d['status']}" for d in decided) or "none"
            raise StepFailed(f"{found['pending']} pending requests, decided: {states}")
        return ", ".join(f"#{d['id']} v{d['version']} approved" for d in decided) + f" by {user}"

    def deployment(self, cell: str, name: str, expect: list[list]) -> str:
        found = self.cells(REQUESTER, cell)
        self.deployed = True  # from the first deploy on, the cleanup undeploys
        self.found["deployment"] = found
        traffic = [[v, p] for v, p, _ in found["traffic"]]
        servers = {server for _, _, server in found["traffic"]}
        if found["status"] != "active" or traffic != expect or servers != {"ready"}:
            raise StepFailed(f"the deployment is {found['status']} with {found['traffic']}")
        self.fail_here(name)
        return ", ".join(f"v{v} {p}% ({s})" for v, p, s in found["traffic"])

    def predict(self) -> str:
        found = self.cells(REQUESTER, PREDICT)
        answered = found["answered"]
        v1, v2 = self.found["versions"]
        if set(answered) - {v1, v2} or sum(answered.values()) != PREDICTIONS:
            raise StepFailed(f"unexpected answers: {answered}")
        # The endpoint a standard V2 client uses answers too, with alice's hub token.
        endpoint = f"{self.hub.url}/services/mlplat/{self.found['deployment']['endpoint']}"
        ready = self.hub.request("GET", f"{endpoint}/ready", self.tokens[REQUESTER])
        if ready.status_code != 200 or not ready.json().get("ready"):
            raise StepFailed(f"{endpoint}/ready answered {ready.status_code}: {ready.text[:200]}")
        self.found["endpoint"] = endpoint
        self.serving_at = time.monotonic()
        self.fail_here("predict")
        split = ", ".join(f"v{v} {answered.get(v, 0)}" for v in (v1, v2))
        return f"{PREDICTIONS} predictions of {found['rows']} rows answered by {split}"

    def schedule(self) -> str:
        if self.args.report:
            source = json.loads(Path(self.args.report).read_text())
            self.notebooks[REQUESTER].upload(self.report, source)
        elif not self.notebooks[REQUESTER].exists(self.report):
            raise StepFailed(
                f"{self.report} is not in alice's folder: the example notebooks copied at "
                "spawn (jupyter_mlplat/resources/example_notebooks) do not have it; "
                "pass --report NOTEBOOK to schedule another"
            )
        found = self.cells(REQUESTER, SCHEDULE.replace("@REPORT@", self.report))
        self.scheduled = True  # the cleanup unschedules
        self.found["schedule"] = found
        self.fail_here("schedule")
        return f"schedule {found['id']} {found['name']!r} ({CRON}), first firing {found['next']}"

    def report_run(self) -> str:
        found = self.cells(REQUESTER, WAIT_REPORT, timeout=REPORT_TIMEOUT + 60)
        if "status" not in found:
            raise StepFailed(f"no run of the schedule ended within {REPORT_TIMEOUT:.0f} s")
        self.found["job"] = found
        if found["status"] != "succeeded":  # its whole log goes to the kept logs
            details = found["shown"].splitlines()
            if found.get("log"):
                details += ["its log ends:", *found["log"].splitlines()[-15:]]
            raise StepFailed(f"job run {found['id']} ended {found['status']}", details)
        self.fail_here("report run")
        return f"job run {found['id']} succeeded, {found['waited']:.0f} s after scheduling"

    def audit(self) -> str:
        found = self.cells(REVIEWER, AUDIT)
        if not found["ok"]:
            raise StepFailed(found["text"])
        self.fail_here("audit verify", REVIEWER)
        return found["text"]

    # ---- the walk-through ---------------------------------------------------------------

    def run(self) -> None:
        print(
            f"mlplat demo: {REQUESTER} (requester, team-{TEAM}) and {REVIEWER} (reviewer) "
            "on a fresh embedded platform",
            flush=True,
        )
        url = self.step(Step("start the platform", "-"), self.start_platform)
        self.platform_up = time.monotonic() - self.started
        self.step(Step("sign in, server, notebook", REQUESTER), lambda: self.sign_in(REQUESTER))
        self.step(Step("sign in, server, notebook", REVIEWER), lambda: self.sign_in(REVIEWER))
        self.first_cell = time.monotonic()
        self.step(
            Step("train v1", REQUESTER),
            lambda: self.train("train v1", (SETUP, TRAIN_V1, after_training("run1"))),
        )
        self.step(
            Step("train v2", REQUESTER),
            lambda: self.train("train v2", (TRAIN_V2, after_training("run2"))),
        )
        self.step(Step("register v1, v2", REQUESTER), self.register)
        self.step(Step(f"request {TARGET}", REQUESTER), self.request)
        approver = REQUESTER if self.args.fail_at == "approve" else REVIEWER
        self.step(Step("approve", approver), self.approve)
        v1, v2 = self.found["versions"]
        self.step(
            Step(f"deploy v1 to {TARGET}", REQUESTER),
            lambda: self.deployment(DEPLOY, "deploy", [[v1, 100]]),
        )
        self.step(
            Step(f"canary v2 {CANARY}%", REQUESTER),
            lambda: self.deployment(CANARY_CELL, "canary", [[v1, 100 - CANARY], [v2, CANARY]]),
        )
        self.step(Step("predict", REQUESTER), self.predict)
        self.step(
            Step("promote v2", REQUESTER), lambda: self.deployment(PROMOTE, "promote", [[v2, 100]])
        )
        self.step(Step("schedule the report", REQUESTER), self.schedule)
        self.step(Step("report run", REQUESTER), self.report_run)
        self.step(Step("audit verify", REVIEWER), self.audit)
        self.summary(url)

    def summary(self, url: str) -> None:
        hub, found = self.hub.url, self.found
        runs = found["runs"]
        versions = found["versions"]
        schedule, job = found["schedule"], found["job"]
        mlflow = f"{hub}/services/mlflow"
        service = f"{hub}/services/mlplat"
        print("\nmlplat demo: every step passed.")
        stays = "up until Ctrl-C" if self.args.keep else "stopped next; --keep leaves it up"
        rows = [
            ("hub", f"{url}  ({stays})"),
            *((f"MLflow run v{v}", r["url"]) for v, r in zip(versions, runs, strict=True)),
            *((f"model version {v}", f"{mlflow}/#/models/{MODEL}/versions/{v}") for v in versions),
            ("endpoint (V2)", f"{found['endpoint']}  (v{versions[1]} 100% after promote)"),
            (
                "scheduled job",
                f"{service}/api/schedules/{schedule['id']}  ({schedule['name']!r}, {CRON})",
            ),
            (f"its run {job['id']}", f"{service}/api/jobs/{job['id']}  ({job['status']})"),
        ]
        if job.get("experiment_id"):
            rows.append(
                (
                    "its MLflow run",
                    f"{mlflow}/#/experiments/{job['experiment_id']}/runs/{job['mlflow_run']}",
                )
            )
        rows.append(("JupyterLab", f"{hub}/user/{REQUESTER}/lab  (the ML platform panel)"))
        for label, value in rows:
            print(f"  {label:<18} {value}")
        to_serving = self.serving_at - self.first_cell
        total = time.monotonic() - self.started
        print(f"  first training cell -> canary endpoint answering: {to_serving:.1f} s")
        print(
            f"  total so far: {total:.1f} s (the platform's start: {self.platform_up:.1f} s)\n",
            flush=True,
        )

    def keep(self) -> None:
        logins = ", ".join(f"{u} {self.passwords[u]}" for u in (REQUESTER, REVIEWER))
        print(
            f"mlplat demo: the platform stays up at {self.hub.url} (logins: {logins}); "
            "Ctrl-C stops it and cleans up.",
            flush=True,
        )
        try:
            while self.proc.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            print()

    # ---- stopping -----------------------------------------------------------------------

    def cleanup(self, undo: bool, keep_logs: bool) -> bool:
        """Undeploy and unschedule (``undo``: the kernels are usable), stop the servers and
        the platform, remove the temporary root and the accounts the demo made (after a
        failure, ``keep_logs`` copies the platform's logs out first). True when everything
        went as it should."""
        clean = True
        if undo and REQUESTER in self.notebooks:
            for flag, name, cell in (
                (self.deployed, "undeploy", UNDEPLOY),
                (self.scheduled, "unschedule", UNSCHEDULE),
            ):
                if not flag:
                    continue
                try:
                    self.step(Step(name, REQUESTER), lambda c=cell: self.undo(c))
                except StepFailed as exc:
                    print(f"mlplat demo: {exc}", *exc.details, sep="\n    ")
                    clean = False
        for notebook in self.notebooks.values():
            with contextlib.suppress(Exception):  # the servers are stopped next anyway
                self.loop.run_until_complete(notebook.close())
        if self.servers and self.proc is not None and self.proc.poll() is None:
            try:
                self.step(Step("stop the servers", "-"), self.stop_servers)
            except StepFailed as exc:
                print(f"mlplat demo: {exc}")
                clean = False
        if self.proc is not None:
            try:
                self.step(Step("stop the platform", "-"), self.stop_platform)
            except StepFailed as exc:
                print(f"mlplat demo: {exc}", *exc.details, sep="\n    ")
                clean = False
        removed = self.remove_accounts()
        if self.root is not None and (keep_logs or not clean):
            self.save_logs()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            note = f"; accounts removed: {', '.join(removed)}" if removed else ""
            print(f"mlplat demo: removed {self.root}{note}", flush=True)
        self.loop.close()
        return clean

    def save_logs(self) -> None:
        logs = [self.up_log, self.root / "home" / "hub" / "jupyterhub.log"]
        logs += sorted((self.root / "home").glob("*.log"))
        kept = Path(tempfile.gettempdir()) / f"{self.root.name}-logs.txt"
        with open(os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            if self.found.get("job", {}).get("log"):
                out.write(f"==> the log of job run {self.found['job']['id']} <==\n")
                out.write(self.found["job"]["log"] + "\n")
            for path in logs:
                if path.is_file():
                    out.write(f"==> {path.relative_to(self.root)} <==\n")
                    out.write(path.read_text(errors="replace") + "\n")
        print(f"mlplat demo: the platform's logs are kept in {kept}", flush=True)

    def undo(self, cell: str) -> str:
        self.cells(REQUESTER, cell)
        return ""

    def stop_servers(self) -> str:
        stopped = [u for u in self.servers if self.hub.stop_server(u, self.tokens[u])]
        if len(stopped) != len(self.servers):
            raise StepFailed(f"servers still running: {set(self.servers) - set(stopped)}")
        return ", ".join(stopped)

    def stop_platform(self) -> str:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)  # Ctrl-C in mlplat up's terminal
        try:
            code = self.proc.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise StepFailed("mlplat up did not stop within 120 s and was killed") from None
        left = self.leftovers(wait=20)
        if left:
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            raise StepFailed(
                f"{len(left)} processes were left behind and were killed",
                [f"{pid}: {left[pid]}" for pid in sorted(left)],
            )
        if code != 0:
            raise StepFailed(f"mlplat up exited with status {code}", self.platform_logs())
        return "no process left"

    def our_uids(self) -> set[int]:
        uids = set()
        for name in self.expected_accounts() - self.accounts_before:
            with contextlib.suppress(KeyError):
                uids.add(pwd.getpwnam(name).pw_uid)
        return uids

    def leftovers(self, wait: float) -> dict[int, str]:
        """Processes of the demo's platform still running after ``wait`` seconds: started
        in the temporary root, pointing at it, or run by an account the demo made."""
        marker, uids = str(self.root).encode(), self.our_uids()
        deadline = time.monotonic() + wait
        while True:
            found = {}
            for entry in Path("/proc").glob("[0-9]*"):
                pid = int(entry.name)
                if pid == os.getpid():
                    continue
                try:
                    cmdline = (entry / "cmdline").read_bytes()
                    ours = entry.stat().st_uid in uids or marker in cmdline
                    if not ours:
                        ours = marker in (entry / "environ").read_bytes() or os.readlink(
                            entry / "cwd"
                        ).startswith(str(self.root))
                except OSError:
                    continue
                if ours:
                    found[pid] = cmdline.replace(b"\0", b" ").decode(errors="replace")[:160]
            if not found or time.monotonic() > deadline:
                return found
            time.sleep(1)

    def expected_accounts(self) -> set[str]:
        """The OS accounts this demo's platform makes when run as root."""
        if os.geteuid() != 0:
            return set()
        return {USER_PREFIX + REQUESTER, USER_PREFIX + REVIEWER, SERVING_PREFIX + TEAM}

    def remove_accounts(self) -> list[str]:
        """``userdel`` the accounts the demo made (none that existed before it), and the
        files they left in /tmp."""
        made = sorted(self.expected_accounts() - self.accounts_before)
        removed: list[str] = []
        for name in made:
            try:
                uid = pwd.getpwnam(name).pw_uid
            except KeyError:
                continue
            left = 0
            for path in Path(tempfile.gettempdir()).iterdir():
                try:
                    if path.lstat().st_uid != uid:
                        continue
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path)
                    else:
                        path.unlink()
                    left += 1
                except OSError:
                    pass
            done = subprocess.run(["userdel", name], capture_output=True, text=True)
            if done.returncode == 0:
                removed.append(name + (f" (and {left} of its files in /tmp)" if left else ""))
            else:
                print(f"mlplat demo: userdel {name}: {done.stderr.strip()}", flush=True)
        return removed


def main(argv: list[str] | None = None) -> int:
    steps = [
        "train v1",
        "train v2",
        "register",
        "request",
        "approve",
        "deploy",
        "canary",
        "predict",
        "promote",
        "schedule",
        "report run",
        "audit verify",
    ]
    parser = argparse.ArgumentParser(
        prog="scripts/demo.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave the platform up after the summary until Ctrl-C"
    )
    parser.add_argument(
        "--report", metavar="NOTEBOOK", help=f"schedule this notebook instead of {REPORT}"
    )
    parser.add_argument(
        "--fail-at",
        metavar="STEP",
        choices=steps,
        help=f"make a step fail on purpose: {', '.join(steps)}",
    )
    args = parser.parse_args(argv)
    if args.report and not Path(args.report).is_file():
        parser.error(f"--report {args.report}: no such file")

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    # Ctrl-C stops the demo cleanly, also when a shell started it with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    demo = Demo(args)
    code, undo = 0, True
    try:
        demo.run()
        if args.keep:
            demo.keep()
    except StepFailed as exc:
        code = 1
        print(f"\nmlplat demo: {exc}", flush=True)
        for line in exc.details:
            print(f"    {line}")
        print("mlplat demo: stopping everything.", flush=True)
    except KeyboardInterrupt:
        code, undo = 130, False
        print("\nmlplat demo: interrupted; stopping everything.", flush=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # cleanup runs to its end
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if not demo.cleanup(undo, keep_logs=code == 1) and code == 0:
            code = 1
    total = time.monotonic() - demo.started
    outcome = "passed" if code == 0 else ("interrupted" if code == 130 else "FAILED")
    print(f"mlplat demo: {outcome} in {total:.1f} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
