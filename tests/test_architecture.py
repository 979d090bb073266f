"""The layering of ARCHITECTURE.md, checked on the source: calls go downward only.

magics / handlers / CLI → fluent API / client → application layer → domain modules →
store and SDKs. Imports are read with ``ast`` (module-level and the lazy ones inside
functions alike), so a cycle hidden behind a function-level import counts too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "jupyter_mlplat"

TOP = {"magics", "ipython", "cli", "commands", "fluent", "display", "server", "embedded", "hub"}
TRANSPORT = {"client", "service", "mlflow_auth"}
APPLICATION = {"application"}
DOMAIN = {
    "governance", "tracking", "features", "profiles", "identity", "params", "serving", "store",
    "jobs", "pipelines",
}  # fmt: skip
BASE = {"api", "errors", "oslayer", "ports", "settings", "times", "resources", "version"}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every jupyter_mlplat module ``path`` imports, anywhere in the file."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("jupyter_mlplat")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("jupyter_mlplat"):
                continue
            names_a_module = False
            for alias in node.names:  # `from . import fluent` names a module
                candidate = f"{target}.{alias.name}"
                if (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists():
                    found.add(candidate)
                    names_a_module = True
            if not names_a_module:
                found.add(target)
    found.discard(name)
    return found


MODULES = {
    module_name(p): imports_of(p)
    for p in PACKAGE.rglob("*.py")
    if "migrations" not in p.parts and "resources" not in p.parts
}


def layer(module: str) -> str:
    part = module.split(".")[1] if "." in module else ""
    for name, members in (
        ("top", TOP), ("transport", TRANSPORT), ("application", APPLICATION),
        ("domain", DOMAIN), ("base", BASE),
    ):  # fmt: skip
        if part in members:
            return name
    return "package"


RANK = {"package": 5, "top": 4, "transport": 3, "application": 2, "domain": 1, "base": 0}


def test_every_module_has_a_layer():
    assert [m for m in MODULES if layer(m) == "package" and m != "jupyter_mlplat"] == []


def test_imports_go_downward_only():
    upward = []
    for module, targets in MODULES.items():
        for target in targets:
            if RANK[layer(target)] > RANK[layer(module)] and layer(module) != "package":
                upward.append(f"{module} -> {target}")
    # The service (transport) serves the application; the client reaches it over HTTP
    # or calls the application in-process: neither imports the other.
    assert not any(t.startswith("jupyter_mlplat.service") for t in MODULES["jupyter_mlplat.client"])
    assert sorted(upward) == []


def test_no_import_cycles():
    def visit(module, stack, seen):
        if module in stack:
            return [stack[stack.index(module) :] + [module]]
        if module in seen:
            return []
        seen.add(module)
        cycles = []
        for target in sorted(MODULES.get(module, ())):
            # A package's __init__ re-exporting its own modules is not a cycle of concerns.
            if target.startswith(module + "."):
                continue
            cycles += visit(target, [*stack, module], seen)
        return cycles

    seen: set[str] = set()
    cycles = [c for m in sorted(MODULES) for c in visit(m, [], seen)]
    assert [" -> ".join(c) for c in cycles] == []


def test_domain_modules_receive_settings():
    """No ``get_settings()`` below the application layer."""
    offenders = [
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if layer(module_name(p)) in ("domain", "application") and "get_settings" in p.read_text()
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("jupyter_mlplat.api", ("sqlalchemy", "mlflow", "tornado")),
        ("jupyter_mlplat.client", ("sqlalchemy", "mlflow", "feast", "jupyterhub")),
        ("jupyter_mlplat.application", ("sqlalchemy", "mlflow", "feast")),
    ],
)
def test_light_modules_stay_light(module, forbidden):
    code = (
        f"import sys, {module}\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({forbidden!r}))\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
