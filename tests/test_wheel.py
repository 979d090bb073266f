"""Installable outside this repository: the wheel, in a fresh venv, from another directory.

Once per module the project's wheel is built, a new venv is made in a temporary folder
and the wheel is installed there with ``[all]`` from the package registry (uv's cache
makes that quick). Every check then runs the venv's own programs from a working
directory outside the checkout, with no ``PYTHONPATH`` and no ``MLPLAT_*`` /
``JUPYTERHUB_*`` variables, so only what the wheel ships can be used.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from email.parser import Parser as EmailParser
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO_ROOT

CHP_BIN = REPO_ROOT / "node_modules" / ".bin"
UP_TIMEOUT = 180  # seconds for `mlplat up` to print its URL and answer /hub/login
STOP_TIMEOUT = 60
DROPPED = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "MLFLOW_TRACKING_URI", "JPY_SESSION_NAME",
           "IPYTHONDIR")  # fmt: skip
DROPPED_PREFIXES = ("MLPLAT_", "JUPYTERHUB_", "JUPYTER_")


def _uv() -> str | None:
    local = Path(sys.executable).with_name("uv")
    return str(local) if local.exists() else shutil.which("uv")


def _inside(path: Path, root: Path) -> bool:
    path, root = Path(path).resolve(), Path(root).resolve()
    return path == root or root in path.parents


class Installed:
    """The built wheel and the venv it is installed in."""

    def __init__(self, root: Path, wheel: Path, venv: Path):
        self.root = root
        self.wheel = wheel
        self.venv = venv
        self.python = venv / "bin" / "python"
        self.mlplat = venv / "bin" / "mlplat"

    def env(self, home: Path, *, proxy: bool = False) -> dict[str, str]:
        """An environment with nothing of the checkout or of a hub in it."""
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in DROPPED and not k.startswith(DROPPED_PREFIXES)
        }
        path = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p]
        path = [p for p in path if not _inside(Path(p), REPO_ROOT)]  # not .venv/bin
        if proxy:
            path.insert(0, str(CHP_BIN))  # configurable-http-proxy from npm, as `make up`
        env["PATH"] = os.pathsep.join(path)
        env["HOME"] = str(self.root / "user-home")
        env["MLPLAT_HOME"] = str(home)
        return env

    def run(self, args: list[str], home: Path, timeout: float = 120, **kwargs):
        return subprocess.run(
            args,
            cwd=self.root,
            env=self.env(home),
            capture_output=True,
            text=True,
            timeout=timeout,
            **kwargs,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    uv = _uv()
    if uv is None:
        pytest.skip("uv is not installed (`make install` puts it in .venv/bin)")
    root = tmp_path_factory.mktemp("wheel-install").resolve()
    assert not _inside(root, REPO_ROOT), root
    (root / "user-home").mkdir()

    def step(args: list[str], timeout: float, **kwargs) -> None:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"

    step([uv, "build", "--wheel", "--out-dir", str(root / "dist"), str(REPO_ROOT)], 120)
    (wheel,) = (root / "dist").glob("jupyter_mlplat-*.whl")
    venv = root / "venv"
    step([uv, "venv", "--python", sys.executable, str(venv)], 60)
    step(
        [uv, "pip", "install", "--python", str(venv / "bin" / "python"), f"{wheel}[all]"],
        600,
        cwd=root,
        env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
    )
    return Installed(root, wheel, venv)


# ---- what the wheel declares ----------------------------------------------------------

HUB_ONLY = {"jupyterhub-kubespawner", "jupyterhub-idle-culler", "psycopg", "alembic"}
SINGLEUSER_ONLY = {"jupyterlab", "feast", "kfp", "papermill"}


def canonicalize(line: str) -> str:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    return canonicalize_name(Requirement(line).name)


def _metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return EmailParser().parsestr(archive.read(name).decode())


def _declared(metadata, extra: str) -> set[str]:
    """Names an extra asks for directly, following ``jupyter-mlplat[...]`` references."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    names: set[str] = set()
    todo, seen = [extra], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for line in metadata.get_all("Requires-Dist") or []:
            req = Requirement(line)
            if req.marker is None or not req.marker.evaluate({"extra": current}):
                continue
            if canonicalize_name(req.name) == "jupyter-mlplat":
                todo += sorted(req.extras)
            else:
                names.add(canonicalize_name(req.name))
    return names


def test_wheel_metadata_declares_separate_hub_and_singleuser_extras(installed):
    metadata = _metadata(installed.wheel)
    assert {"singleuser", "hub", "all"} <= set(metadata.get_all("Provides-Extra"))
    hub, singleuser, everything = (_declared(metadata, e) for e in ("hub", "singleuser", "all"))
    assert {"jupyterhub", "jupyterhub-kubespawner", "jupyterhub-idle-culler"} <= hub
    assert {"jupyterlab", "ipykernel", "mlflow", "feast"} <= singleuser
    assert hub.isdisjoint(SINGLEUSER_ONLY), hub & SINGLEUSER_ONLY
    assert singleuser.isdisjoint(HUB_ONLY), singleuser & HUB_ONLY
    assert hub | singleuser <= everything
    base = {canonicalize(line) for line in metadata.get_all("Requires-Dist") if "extra" not in line}
    assert base.isdisjoint(HUB_ONLY | SINGLEUSER_ONLY | {"mlflow", "jupyterhub"}), base


_CLOSURE = textwrap.dedent(
    """
    import json, sys
    from importlib.metadata import PackageNotFoundError, distribution
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    def closure(extra):
        seen, todo = {}, [("jupyter-mlplat", frozenset([extra]))]
        while todo:
            name, extras = todo.pop()
            key = canonicalize_name(name)
            if key in seen and extras <= seen[key]:
                continue
            seen[key] = seen.get(key, frozenset()) | extras
            try:
                requires = distribution(name).requires or []
            except PackageNotFoundError:
                continue
            for line in requires:
                req = Requirement(line)
                if req.marker is None or any(
                    req.marker.evaluate({"extra": e}) for e in (extras or {""})
                ):
                    todo.append((req.name, frozenset(req.extras)))
        return sorted(seen)

    print(json.dumps({e: closure(e) for e in sys.argv[1:]}))
    """
)


def test_hub_extra_does_not_pull_the_notebook_stack_even_indirectly(installed, tmp_path):
    """Walks Requires-Dist of the installed packages (markers evaluated) from each extra."""
    done = installed.run(
        [str(installed.python), "-c", _CLOSURE, "hub", "singleuser"], tmp_path / "home"
    )
    assert done.returncode == 0, done.stderr
    closure = {extra: set(names) for extra, names in json.loads(done.stdout).items()}
    assert "jupyterhub" in closure["hub"] and "jupyterlab" in closure["singleuser"]
    assert closure["hub"].isdisjoint(SINGLEUSER_ONLY), closure["hub"] & SINGLEUSER_ONLY
    # alembic does come with mlflow (a dependency of both sides); the rest must not.
    hub_only = HUB_ONLY - {"alembic"}
    assert closure["singleuser"].isdisjoint(hub_only), closure["singleuser"] & hub_only


# ---- the installed package ------------------------------------------------------------

_FILES = textwrap.dedent(
    """
    import json
    from importlib.metadata import distribution
    import jupyter_mlplat
    from jupyter_mlplat import resources

    dist = distribution("jupyter-mlplat")
    print(json.dumps({
        "module": jupyter_mlplat.__file__,
        "files": [str(f.locate().resolve()) for f in dist.files],
        "direct_url": dist.read_text("direct_url.json"),
        "resources": [str(p.resolve()) for p in (resources.default_profiles_dir(),
                      resources.hub_config_file(), resources.example_notebooks_dir())],
    }))
    """
)


def test_installed_package_is_the_wheel_not_the_checkout(installed, tmp_path):
    done = installed.run([str(installed.python), "-c", _FILES], tmp_path / "home")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert _inside(Path(found["module"]), installed.venv), found["module"]
    assert found["files"] and not [f for f in found["files"] if _inside(Path(f), REPO_ROOT)]
    assert '"editable": true' not in (found["direct_url"] or "")
    for path in found["resources"]:
        assert _inside(Path(path), installed.venv) and Path(path).exists(), path
    # No path configuration file (.pth) pointing back into the checkout either.
    for pth in installed.venv.glob("lib/python*/site-packages/*.pth"):
        assert str(REPO_ROOT) not in pth.read_text(), pth


def test_profiles_validate_reads_the_shipped_profiles(installed, tmp_path):
    done = installed.run([str(installed.mlplat), "profiles", "validate"], tmp_path / "home")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "7 profiles in 4 files valid" in done.stdout
    assert str(REPO_ROOT) not in done.stdout + done.stderr


_MAGICS = textwrap.dedent(
    """
    import sys
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "jupyter_mlplat")
    heavy = sorted(m for m in ("mlflow", "feast", "kfp", "kserve", "pandas") if m in sys.modules)
    print("HEAVY-AFTER-LOAD", heavy)
    for code in ("status = %mlplat status", "print(repr(status))", "%mlplat help",
                 "%mlplat frobnicate"):
        print(f"=== {code}", flush=True)
        result = shell.run_cell(code)
        print(f"=== success={result.success}", flush=True)
    """
)


def _sections(stdout: str) -> dict[str, tuple[str, bool]]:
    """``=== code`` ... ``=== success=B`` blocks of the magics script's output."""
    found = {}
    for match in re.finditer(r"^=== (.+?)\n(.*?)^=== success=(True|False)$", stdout, re.M | re.S):
        found[match[1]] = (match[2], match[3] == "True")
    return found


def test_magics_load_and_answer_in_the_installed_package(installed, tmp_path):
    home = tmp_path / "home"
    done = installed.run([str(installed.python), "-c", _MAGICS], home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "HEAVY-AFTER-LOAD []" in done.stdout, done.stdout
    sections = _sections(done.stdout)
    assert set(sections) == {
        "status = %mlplat status",
        "print(repr(status))",
        "%mlplat help",
        "%mlplat frobnicate",
    }, done.stdout
    status, ok = sections["print(repr(status))"]
    assert ok and sections["status = %mlplat status"][1], done.stdout + done.stderr
    assert re.search(r"^teams\s+default\b", status, re.M), status
    assert f"sqlite:///{home}/mlflow.db" in status, status  # MLPLAT_HOME was read
    assert re.search(rf"^data dir\s+{re.escape(str(home))}$", status, re.M), status
    text, ok = sections["%mlplat help"]
    assert ok, done.stdout
    for usage in (
        "%mlplat status",
        "%%mlplat run [NAME]",
        "%mlplat approval request MODEL VERSION",
    ):
        assert usage in text, text
    error, ok = sections["%mlplat frobnicate"]
    assert not ok
    assert error.strip().startswith("UsageError: Unknown command 'frobnicate'"), error
    assert "Traceback" not in error, error


# ---- mlplat up ------------------------------------------------------------------------


def _free_ports(count: int) -> list[int]:
    from jupyter_mlplat.embedded import free_port

    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_mlplat_up_serves_the_hub_and_stops_on_ctrl_c(installed, tmp_path):
    proxy = CHP_BIN / "configurable-http-proxy"
    if not proxy.exists():
        pytest.skip(f"{proxy} is missing: run `npm ci` in {REPO_ROOT} (configurable-http-proxy)")
    home = tmp_path / "home"
    home.mkdir()
    knobs = dict(
        zip(
            ("port", "hub_port", "proxy_api_port", "service_port", "mlflow_port"),
            _free_ports(5),
            strict=True,
        )
    )
    config = ["c = get_config()  # noqa: F821"]
    config += [f"c.MlplatHub.{knob} = {port}" for knob, port in knobs.items()]
    (home / "mlplat_config.py").write_text("\n".join(config) + "\n")

    lines: list[str] = []
    up = subprocess.Popen(
        [str(installed.mlplat), "up"],
        cwd=installed.root,
        env=installed.env(home, proxy=True),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    reader = threading.Thread(target=lambda: lines.extend(up.stdout), daemon=True)
    reader.start()

    def output() -> str:
        log = home / "hub" / "jupyterhub.log"
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no hub log)"
        return "".join(lines) + f"\n--- {log} (tail) ---\n{tail}"

    started = time.monotonic()
    try:
        found = None
        while time.monotonic() - started < UP_TIMEOUT and up.poll() is None:
            found = re.search(r"JupyterHub is up at (\S+)", "".join(lines))
            if found:
                break
            time.sleep(0.5)
        assert found, f"no URL printed (exit status {up.poll()}):\n{output()}"
        url = found[1]
        assert url == f"http://127.0.0.1:{knobs['port']}", output()
        session = requests.Session()
        session.trust_env = False
        status = None
        while time.monotonic() - started < UP_TIMEOUT:
            try:
                status = session.get(f"{url}/hub/login", timeout=10).status_code
            except requests.ConnectionError:
                status = None
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200, output()
        came_up = time.monotonic() - started
        # The hub running is the venv's, with the config shipped in the wheel.
        pid = int((home / "hub" / "jupyterhub.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        config_file = Path(cmdline[cmdline.index("-f") + 1])
        assert _inside(config_file, installed.venv), cmdline
        assert not any(str(REPO_ROOT) in arg for arg in cmdline), cmdline

        up.send_signal(signal.SIGINT)  # Ctrl-C
        code = up.wait(STOP_TIMEOUT)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    reader.join(10)
    assert code == 0, output()
    assert "mlplat: stopped." in "".join(lines), output()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_listening(p) for p in knobs.values()):
        time.sleep(0.5)
    still = {knob: port for knob, port in knobs.items() if _listening(port)}
    assert not still, f"still listening after `mlplat up` stopped: {still}\n{output()}"
    print(f"mlplat up answered /hub/login after {came_up:.1f} s")


def test_the_side_panel_and_its_server_extension_are_installed_and_ok(installed, tmp_path):
    """A plain install enables both halves: the prebuilt labextension (from the wheel's
    share/jupyter/labextensions) and the server extension (its jupyter-config file)."""
    jupyter = str(installed.venv / "bin" / "jupyter")
    labextensions = installed.run([jupyter, "labextension", "list"], tmp_path)
    ansi = re.compile(r"\x1b\[[0-9;]*m")  # the colours of "enabled" and "OK"
    listed = ansi.sub("", labextensions.stdout + labextensions.stderr)
    line = next((x for x in listed.splitlines() if "jupyter-mlplat" in x), "")
    assert (
        "enabled" in line and "OK" in line and re.search(r"\(python, jupyter[-_]mlplat\)", line)
    ), listed
    assert str(installed.venv) in listed  # from the venv's share/, not the checkout's build
    extensions = installed.run([jupyter, "server", "extension", "list"], tmp_path)
    shown = ansi.sub("", extensions.stdout + extensions.stderr)
    assert re.search(r"jupyter_mlplat enabled", shown), shown
    assert re.search(r"jupyter_mlplat 0\.1\.0 OK", shown), shown
    with zipfile.ZipFile(installed.wheel) as archive:
        names = archive.namelist()
    assert any(n.endswith("share/jupyter/labextensions/jupyter-mlplat/package.json") for n in names)
    assert any(n.endswith("share/jupyter/labextensions/jupyter-mlplat/install.json") for n in names)
    assert any("/static/remoteEntry." in n for n in names)
    assert not any("node_modules" in n or n.endswith(".ts") or n.endswith(".tsx") for n in names)
