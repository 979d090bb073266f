"""The local deployer's supervisor with real MLServer processes and, as root, real accounts.

One sklearn model, frozen as the platform freezes it (0700/0600, root's), served by two
teams' deployments; as root each team's server must run as ``mlplat-test-serve-<team>``.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest

from jupyter_mlplat.serving.local import ModelServerFailed
from jupyter_mlplat.serving.supervisor import LocalServers
from tests.test_serving_local import assert_group_gone, frame, pandas_request, save_sklearn_model

PREFIX = "mlplat-test-serve-"
ROOT = os.geteuid() == 0
as_root = pytest.mark.skipif(not ROOT, reason="accounts need root")
CHURN, FRAUD, BROKEN = "churn-model-staging", "fraud-model-staging", "broken-model-staging"


def freeze(path: Path) -> None:
    """The frozen copy's modes (governance/frozen.py): 0700 folders, 0600 files."""
    for dirpath, _, files in os.walk(path):
        os.chmod(dirpath, 0o700)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o600)


def accounts() -> set[str]:
    return {e.pw_name for e in pwd.getpwall() if e.pw_name.startswith(PREFIX)}


@pytest.fixture(scope="module")
def platform():
    # Under /tmp itself: pytest's tmp_path sits in a 0700 folder no account could pass.
    base = Path(tempfile.mkdtemp(prefix="mlplat-supervisor-", dir="/tmp"))
    os.chmod(base, 0o711)
    digest = hashlib.sha256(b"churn model v1").hexdigest()
    model_path = base / "frozen" / "sha256" / digest / "model"
    model = save_sklearn_model(model_path)
    broken_digest = hashlib.sha256(b"no MLmodel").hexdigest()
    broken_path = base / "frozen" / "sha256" / broken_digest / "model"
    broken_path.mkdir(parents=True)
    (broken_path / "README").write_text("no MLmodel here\n")
    freeze(base / "frozen")
    secret = base / "audit.key"
    secret.write_text("platform secret\n")
    os.chmod(secret, 0o600)
    before = accounts()
    os.environ["JUPYTERHUB_API_TOKEN"] = "platform-token-never-for-models"
    try:
        yield SimpleNamespace(
            base=base, root=base / "serving", model=model, model_path=model_path,
            digest=digest, broken_path=broken_path, broken_digest=broken_digest, secret=secret,
        )  # fmt: skip
    finally:
        os.environ.pop("JUPYTERHUB_API_TOKEN", None)
        shutil.rmtree(base, ignore_errors=True)
        for name in accounts() - before:
            subprocess.run(["userdel", name], check=False)


@pytest.fixture(scope="module")
def servers(platform):
    servers = LocalServers(
        None, platform.root, ready_timeout=60, stop_grace=5, account_prefix=PREFIX
    )
    try:
        yield servers
    finally:
        servers.close()


def churn(platform, version="1", team="alpha", deployment=CHURN):
    return (deployment, team, version, platform.digest, platform.model_path)


@pytest.fixture(scope="module")
def alpha(servers, platform):
    started = time.monotonic()
    state = servers.ensure(*churn(platform))
    print(f"ensure -> ready in {time.monotonic() - started:.1f} s")
    return state


def over_socket(state) -> httpx.Client:
    """A client of the server's REST API on its Unix socket."""
    transport = httpx.HTTPTransport(uds=state.socket)
    return httpx.Client(transport=transport, base_url=state.base_url, trust_env=False, timeout=30)


def predict(state, df):
    with over_socket(state) as http:
        answer = http.post(f"/v2/models/{state.model_name}/infer", json=pandas_request(df))
    assert answer.status_code == 200, answer.text
    return np.asarray(answer.json()["outputs"][0]["data"]).reshape(-1).tolist()


def group(pgid: int) -> list[int]:
    """Live (not zombie) processes of the group."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def status_field(pid: int, field: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(field)


def servers_of(model_name: str) -> list[int]:
    """Group leaders whose environment serves ``model_name``."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        pid = int(environ.parent.name)
        try:
            serves = f"MLSERVER_MODEL_NAME={model_name}".encode() in environ.read_bytes().split(
                b"\0"
            )
            leads = os.getpgid(pid) == pid
        except OSError:  # gone meanwhile
            continue
        if serves and leads:
            found.append(pid)
    return found


# Run as a model server account: what it can read and write.
_PROBE = r"""
import json, os, socket, sys
def connect(path):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
def attempt(f):
    try:
        f()
        return True
    except OSError:
        return False
paths = json.loads(sys.argv[1])
print(json.dumps({
    "read": {p: attempt(lambda p=p: open(p, "rb").read(1)) for p in paths["read"]},
    "list": {p: attempt(lambda p=p: os.listdir(p)) for p in paths["list"]},
    "create_in": {p: attempt(lambda p=p: open(os.path.join(p, "swapped"), "wb").close())
                  for p in paths["create_in"]},
    "write": {p: attempt(lambda p=p: open(p, "r+b").close()) for p in paths["write"]},
    "rename": {p: attempt(lambda p=p: os.rename(p, p + ".moved")) for p in paths["rename"]},
    "connect": {p: attempt(lambda p=p: connect(p)) for p in paths["connect"]},
}))
"""


def probe_as(account: str, **paths) -> dict:
    entry = pwd.getpwnam(account)
    command = [
        "setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups",
        "/usr/bin/python3", "-c", _PROBE,
        json.dumps({k: [str(p) for p in paths.get(k, [])] for k in
                    ("read", "list", "create_in", "write", "rename", "connect")}),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd="/", check=True)
    return json.loads(done.stdout)


def served_folder(platform, team, deployment, version="1") -> Path:
    owner = f"{PREFIX}{team}" if ROOT else team
    return platform.root / "served" / owner / deployment / f"{version}-{platform.digest[:16]}"


def test_ensure_serves_the_models_predictions_and_a_second_ensure_reuses_it(
    servers, platform, alpha
):
    assert alpha.status == "ready" and alpha.model_name == CHURN
    assert alpha.socket == str(platform.root / "work" / CHURN / "1" / "http.sock") and alpha.pid
    assert (alpha.version, alpha.digest) == ("1", platform.digest)
    X = frame(25)
    assert predict(alpha, X) == platform.model.predict(X).tolist()
    again = servers.ensure(*churn(platform))
    assert again.pid == alpha.pid and again.socket == alpha.socket
    assert servers.state(CHURN, "1").status == "ready"
    assert servers_of(CHURN) == [alpha.pid]
    assert servers.state(CHURN, "9") is None


@as_root
def test_the_model_server_runs_as_its_teams_account_and_cannot_reach_platform_files(
    platform, alpha
):
    account = pwd.getpwnam(PREFIX + "alpha")
    assert account.pw_uid != 0
    processes = group(alpha.pid)
    assert len(processes) >= 2  # MLServer and its inference worker
    for pid in processes:
        assert status_field(pid, "Uid").split() == [str(account.pw_uid)] * 4
        assert status_field(pid, "Gid").split() == [str(account.pw_gid)] * 4
        assert status_field(pid, "Groups") == ""  # root's groups were dropped
    environ = Path(f"/proc/{alpha.pid}/environ").read_bytes()
    assert b"platform-token-never-for-models" not in environ

    served = served_folder(platform, "alpha", CHURN)
    assert (served / "MLmodel").is_file()
    assert os.stat(served).st_uid == 0 and stat_mode(served) == 0o755
    assert stat_mode(served / "MLmodel") == 0o644
    assert stat_mode(platform.model_path) == 0o700  # the frozen copy is left as it was
    workdir = platform.root / "work" / CHURN / "1"
    assert os.stat(workdir).st_uid == account.pw_uid and stat_mode(workdir) == 0o700
    log_file = platform.root / "logs" / CHURN / "1.log"
    seen = probe_as(
        account.pw_name,
        read=[served / "MLmodel", platform.model_path / "MLmodel", platform.secret, log_file],
        list=[platform.model_path, platform.base / "frozen", platform.root / "logs"],
        create_in=[served, served.parent, workdir],
        write=[served / "MLmodel"],
        rename=[served / "MLmodel"],
    )
    assert seen["read"] == {
        str(served / "MLmodel"): True,
        str(platform.model_path / "MLmodel"): False,
        str(platform.secret): False,
        str(log_file): False,
    }
    assert not any(seen["list"].values())
    assert seen["create_in"] == {str(served): False, str(served.parent): False, str(workdir): True}
    assert seen["write"] == {str(served / "MLmodel"): False}
    assert seen["rename"] == {str(served / "MLmodel"): False}


def stat_mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o7777


def test_concurrent_ensures_of_one_version_start_one_server(servers, platform, alpha):
    barrier, results = threading.Barrier(2), []

    def deploy():
        barrier.wait()
        results.append(servers.ensure(*churn(platform, version="3", team="beta", deployment=FRAUD)))

    threads = [threading.Thread(target=deploy) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(results) == 2 and results[0] == results[1]
    assert results[0].status == "ready"
    assert servers_of(FRAUD) == [results[0].pid]
    if ROOT:  # another team's account cannot read this team's served model
        seen = probe_as(
            PREFIX + "beta",
            read=[served_folder(platform, "alpha", CHURN) / "MLmodel",
                  served_folder(platform, "beta", FRAUD, "3") / "MLmodel"],
        )  # fmt: skip
        assert list(seen["read"].values()) == [False, True]


def test_a_killed_server_is_crashed_and_reconcile_brings_it_back(servers, platform, alpha):
    fraud = servers.state(FRAUD, "3")
    os.kill(alpha.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while (state := servers.state(CHURN, "1")).status != "crashed":
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    assert state.base_url is None and state.pid is None and state.socket is None
    assert f"Loaded model '{CHURN}' successfully" in state.log_tail
    started = time.monotonic()
    states = servers.reconcile(
        [churn(platform), churn(platform, version="3", team="beta", deployment=FRAUD)]
    )
    print(f"reconcile restarted the crashed server in {time.monotonic() - started:.1f} s")
    assert [s.status for s in states] == ["ready", "ready"]
    assert states[0].pid != alpha.pid and states[1].pid == fraud.pid
    assert_group_gone(alpha.pid)
    X = frame(10)
    assert predict(states[0], X) == platform.model.predict(X).tolist()


def test_the_apis_listen_on_unix_sockets_no_other_account_can_reach(servers, platform):
    """A loopback port is open to every account, a user's kernel too: none is opened."""
    import psutil

    state = servers.ensure(*churn(platform))
    processes = group(state.pid)
    assert processes
    for pid in processes:
        listening = [
            c for c in psutil.Process(pid).connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]  # fmt: skip
        assert listening == [], (pid, listening)
    http_socket, grpc_socket = Path(state.socket), Path(state.socket).with_name("grpc.sock")
    assert http_socket.is_socket() and grpc_socket.is_socket()
    if ROOT:
        for account in (PREFIX + "beta", "nobody"):  # another team's server; anyone else
            seen = probe_as(account, connect=[http_socket, grpc_socket])
            assert list(seen["connect"].values()) == [False, False], account
        own = probe_as(PREFIX + "alpha", connect=[http_socket])  # the probe can succeed
        assert list(own["connect"].values()) == [True]


def wait_crashed(servers, deployment, version):
    deadline = time.monotonic() + 15
    while (state := servers.state(deployment, version)).status != "crashed":
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    return state


def test_supervise_restarts_a_dead_server_and_gives_up_on_one_that_keeps_dying(servers, platform):
    deployment, team, version, digest, path = churn(platform)
    check = lambda most: servers.supervise(deployment, team, version, digest, lambda: path, most)  # noqa: E731
    first = servers.ensure(deployment, team, version, digest, path)
    assert check(3) == "ok"
    os.kill(first.pid, signal.SIGKILL)
    wait_crashed(servers, deployment, version)
    assert check(3) == "restarted"
    second = servers.state(deployment, version)
    assert second.status == "ready" and second.pid != first.pid and second.restarts == 1
    X = frame(8)
    assert predict(second, X) == platform.model.predict(X).tolist()
    assert check(3) == "ok" and servers.state(deployment, version).restarts == 0
    # with at most one restart in a row: it dies, is restarted, dies before the next check
    os.kill(second.pid, signal.SIGKILL)
    wait_crashed(servers, deployment, version)
    assert check(1) == "restarted"
    third = servers.state(deployment, version)
    os.kill(third.pid, signal.SIGKILL)
    wait_crashed(servers, deployment, version)
    assert check(1) == "gave up"
    assert servers.state(deployment, version).status == "crashed"
    assert servers_of(deployment) == []
    # a deploy (ensure) starts it again
    assert servers.ensure(deployment, team, version, digest, path).status == "ready"


def test_supervise_restarts_a_server_that_lost_its_model(servers, platform):
    deployment, team, version, digest, path = churn(platform)
    before = servers.ensure(deployment, team, version, digest, path)
    with over_socket(before) as http:
        assert http.post(f"/v2/repository/models/{deployment}/unload").status_code == 200
        assert http.get(f"/v2/models/{deployment}/ready").status_code != 200
    outcomes = [
        servers.supervise(deployment, team, version, digest, lambda: path, 3) for _ in range(3)
    ]
    assert outcomes == ["ok", "ok", "restarted"]  # three checks in a row, then a restart
    after = servers.state(deployment, version)
    assert after.status == "ready" and after.pid != before.pid
    assert_group_gone(before.pid)
    X = frame(6)
    assert predict(after, X) == platform.model.predict(X).tolist()


def test_supervise_never_brings_back_a_stopped_version(servers, platform):
    args = churn(platform, version="7", team="alpha", deployment=FRAUD)
    state = servers.ensure(*args)
    os.kill(state.pid, signal.SIGKILL)
    wait_crashed(servers, FRAUD, "7")
    servers.stop(FRAUD, "7")  # e.g. a promote stopped it after the round read the records
    assert servers.supervise(*args[:4], lambda: args[4], 3) == "skipped"
    assert servers.ensure(*args, only_crashed=True) is None
    assert servers.state(FRAUD, "7").status == "stopped"
    assert [pid for pid in servers_of(FRAUD) if servers.state(FRAUD, "3") is None or
            pid != servers.state(FRAUD, "3").pid] == []  # fmt: skip


def test_a_folder_without_mlmodel_fails_with_its_log_and_reconcile_reports_it(servers, platform):
    broken = (BROKEN, "alpha", "1", platform.broken_digest, platform.broken_path)
    started = time.monotonic()
    with pytest.raises(ModelServerFailed) as caught:
        servers.ensure(*broken)
    assert time.monotonic() - started < 60
    assert caught.value.http_status == 503
    assert 'Could not find an "MLmodel" configuration file' in caught.value.log_tail
    state = servers.state(BROKEN, "1")
    assert state.status == "failed" and state.pid is None and state.base_url is None
    assert "MLmodel" in state.log_tail
    assert servers_of(BROKEN) == []

    started = time.monotonic()
    states = servers.reconcile(
        [churn(platform), churn(platform, version="3", team="beta", deployment=FRAUD), broken]
    )
    assert time.monotonic() - started < 5  # ready ones kept, the failed one not retried
    assert [s.status for s in states] == ["ready", "ready", "failed"]


@as_root
def test_a_serving_root_the_account_cannot_reach_is_named(platform):
    closed = platform.base / "closed"
    closed.mkdir(mode=0o700)
    servers = LocalServers(None, closed / "serving", account_prefix=PREFIX)
    with pytest.raises(ModelServerFailed, match=f"{closed} is closed to it"):
        servers.ensure(*churn(platform))
    assert servers.state(CHURN, "1").status == "failed"
    servers.close()


def test_a_restarted_service_reconciles_then_keep_only_and_close_leave_nothing(platform):
    """A new supervisor (the platform service restarted) starts what the records want."""
    servers = LocalServers(
        None, platform.base / "serving-2", ready_timeout=60, stop_grace=5, account_prefix=PREFIX
    )
    started = time.monotonic()
    states = servers.reconcile([churn(platform, "1"), churn(platform, "2")])
    print(f"reconcile started 2 servers in parallel in {time.monotonic() - started:.1f} s")
    assert [s.status for s in states] == ["ready", "ready"]
    one, two = states
    servers.keep_only(CHURN, {"2"})
    assert_group_gone(one.pid)
    assert servers.state(CHURN, "1").status == "stopped"
    assert not (platform.base / "serving-2" / "work" / CHURN / "1").exists()
    assert servers.state(CHURN, "2").status == "ready"
    servers.close()
    assert_group_gone(two.pid)
    assert servers.state(CHURN, "2").status == "stopped"


def test_stop_and_close_leave_no_process(servers, platform):
    churn_pid = servers.state(CHURN, "1").pid
    fraud_pid = servers.state(FRAUD, "3").pid
    servers.stop(CHURN)
    assert_group_gone(churn_pid)
    assert servers.state(CHURN, "1").status == "stopped"
    assert not served_folder(platform, "alpha", CHURN).exists()
    assert servers.state(FRAUD, "3").status == "ready"
    servers.close()
    assert_group_gone(fraud_pid)
    assert servers_of(CHURN) == [] and servers_of(FRAUD) == []


def test_servers_of_a_killed_platform_are_stopped_by_the_next_one(platform):
    """The platform service killed with -9 leaves its model servers running (each in a
    session of its own); the next supervisor on the same root stops them before serving."""
    root = platform.base / "serving-3"
    first = LocalServers(None, root, ready_timeout=60, stop_grace=5, account_prefix=PREFIX)
    orphan = first.ensure(*churn(platform, "7"))
    assert group(orphan.pid)  # running; `first` is dropped without close(), as on a kill -9
    second = LocalServers(None, root, ready_timeout=60, stop_grace=5, account_prefix=PREFIX)
    try:
        deadline = time.monotonic() + 10  # SIGKILL is sent; the processes die a moment later
        while group(orphan.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert_group_gone(orphan.pid)
        (state,) = second.reconcile([churn(platform, "7")])
        assert state.status == "ready" and state.pid != orphan.pid
    finally:
        second.close()
