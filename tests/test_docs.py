"""The guides follow the code.

* ``docs/user-guide.md`` has a section for every command of the command table
  (:data:`jupyter_mlplat.commands.COMMANDS`): a heading naming it (`` `%mlplat job run` ``,
  `` `%%mlplat run` `` for the cell magic, `` `mlplat up` `` for a terminal-only command) whose
  code blocks show the command and, after it, its output.
* Every knob ``c.<Class>.<name>`` the guides name is a configurable trait of that class.

Each check is a function that returns what is wrong, so the tests below also show that it
finds a missing command, a missing output and an unknown knob.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from jupyter_mlplat.commands import COMMANDS, Command

DOCS = Path(__file__).resolve().parent.parent / "docs"
USER_GUIDE = DOCS / "user-guide.md"
OPERATOR_GUIDE = DOCS / "operator-guide.md"

# The classes whose traits the guides may name, and where they live.
CLASSES = {
    "MlplatSettings": "jupyter_mlplat.settings:MlplatSettings",
    "MlplatHub": "jupyter_mlplat.hub.config:MlplatHub",
    "MlplatLocalSpawner": "jupyter_mlplat.hub.spawner:MlplatLocalSpawner",
    "MlplatFileAuthenticator": "jupyter_mlplat.hub.authenticator:MlplatFileAuthenticator",
    "MlplatKubeHub": "jupyter_mlplat.hub.z2jh:MlplatKubeHub",
    "JupyterHub": "jupyterhub.app:JupyterHub",
    "Spawner": "jupyterhub.spawner:Spawner",
    "Authenticator": "jupyterhub.auth:Authenticator",
    "ConfigurableHTTPProxy": "jupyterhub.proxy:ConfigurableHTTPProxy",
    "KubeSpawner": "kubespawner:KubeSpawner",
    "GenericOAuthenticator": "oauthenticator.generic:GenericOAuthenticator",
    "InteractiveShellApp": "IPython.core.shellapp:InteractiveShellApp",
}
KNOB = re.compile(r"(?<![\w.])c\.([A-Z][A-Za-z0-9]*)\.([A-Za-z_][A-Za-z0-9_]*)")
HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
FENCE = re.compile(r"^(`{3,})")


def command_form(command: Command) -> str:
    """How a reader types the command: ``%%mlplat run``, ``%mlplat job run``, ``mlplat up``."""
    if command.cell:
        return f"%%mlplat {command.name}"
    if command.magic:
        return f"%mlplat {command.name}"
    return f"mlplat {command.name}"


def _form_pattern(form: str) -> re.Pattern:
    # `mlplat run` must not match inside `%%mlplat run`, `%mlplat deploy` not `deployments`.
    return re.compile(r"(?<![%\w-])" + re.escape(form) + r"(?![\w-])")


def sections(markdown: str) -> list[tuple[str, list[list[str]]]]:
    """``(heading, code blocks)`` for every heading; a block is its list of lines."""
    found: list[tuple[str, list[list[str]]]] = []
    block: list[str] | None = None
    fence = ""
    for line in markdown.splitlines():
        if block is not None:
            if line.startswith(fence) and line.strip() == fence:
                found[-1][1].append(block)
                block = None
            else:
                block.append(line)
            continue
        opening = FENCE.match(line)
        if opening:
            fence, block = opening[1], []
            if not found:
                found.append(("", []))
            continue
        heading = HEADING.match(line)
        if heading:
            found.append((heading[2], []))
    return found


def _shows_with_output(blocks: list[list[str]], form: str) -> bool:
    """A block shows ``form``, and a non-empty line follows it in that block or a later one."""
    pattern = _form_pattern(form)
    for index, block in enumerate(blocks):
        for number, line in enumerate(block):
            if pattern.search(line):
                rest = block[number + 1 :] + [x for b in blocks[index + 1 :] for x in b]
                return any(x.strip() for x in rest)
    return False


def missing_commands(markdown: str, commands=COMMANDS) -> list[str]:
    """The commands without a section (a heading naming `` `form` ``) that shows the command
    and its output."""
    found = sections(markdown)
    problems = []
    for command in commands:
        form = command_form(command)
        pattern = _form_pattern(form)
        headed = [blocks for heading, blocks in found if pattern.search(heading.replace("`", " "))]
        if not headed:
            problems.append(f"{form}: no heading names it")
        elif not any(_shows_with_output(blocks, form) for blocks in headed):
            problems.append(f"{form}: its section shows no example with an output")
    return problems


def knobs(markdown: str) -> set[tuple[str, str]]:
    return set(KNOB.findall(markdown))


def _configurable(class_name: str) -> set[str] | None:
    where = CLASSES.get(class_name)
    if where is None:
        return None
    module, _, name = where.partition(":")
    cls = getattr(importlib.import_module(module), name)
    return set(cls.class_traits(config=True))


def unknown_knobs(markdown: str) -> list[str]:
    """``c.Class.name`` knobs that are not configurable traits of ``Class``."""
    problems = []
    for class_name, trait in sorted(knobs(markdown)):
        traits = _configurable(class_name)
        if traits is None:
            problems.append(f"c.{class_name}.{trait}: class {class_name} is not in CLASSES")
        elif trait not in traits:
            problems.append(f"c.{class_name}.{trait}: {class_name} has no configurable {trait}")
    return problems


# ---- the guides ----------------------------------------------------------------------------


def test_every_command_has_a_section_with_an_example_and_its_output():
    assert missing_commands(USER_GUIDE.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("guide", [OPERATOR_GUIDE, USER_GUIDE], ids=lambda p: p.name)
def test_every_knob_the_guides_name_is_a_configurable_trait(guide):
    text = guide.read_text(encoding="utf-8")
    assert unknown_knobs(text) == []


def test_the_operator_guide_names_its_knobs():
    # Not vacuous: the operator guide is where the knobs are documented.
    named = knobs(OPERATOR_GUIDE.read_text(encoding="utf-8"))
    assert len(named) >= 30, sorted(named)
    assert {cls for cls, _ in named} >= {"MlplatSettings", "MlplatHub", "MlplatLocalSpawner"}


# ---- the checks find what is wrong ---------------------------------------------------------

GOOD = """
## Track

### `%mlplat status`

```python
%mlplat status
```
```text
user  alice
```

### `%mlplat deployments`

```text
$ mlplat deployments
name  status
```
```python
%mlplat deployments
```
```text
No deployments.
```
"""


def _command(words: str):
    return next(c for c in COMMANDS if c.name == words and c.magic)


def test_the_command_check_finds_a_missing_section_and_a_missing_output():
    status, deployments, deploy = _command("status"), _command("deployments"), _command("deploy")
    assert missing_commands(GOOD, [status, deployments]) == []
    # `%mlplat deployments` is not `%mlplat deploy`.
    assert missing_commands(GOOD, [deploy]) == ["%mlplat deploy: no heading names it"]
    no_output = GOOD.replace("```text\nuser  alice\n```", "")
    assert missing_commands(no_output, [status]) == [
        "%mlplat status: its section shows no example with an output"
    ]
    # The cell magic and the terminal runner are told apart from `%mlplat run`.
    cell, runner = (c for c in COMMANDS if c.name == "run")
    text = "### `%%mlplat run`\n```python\n%%mlplat run x\n1\n```\n"
    assert missing_commands(text, [cell]) == []
    assert missing_commands(text, [runner]) == ["mlplat run: no heading names it"]


def test_the_knob_check_finds_unknown_traits_and_classes():
    text = (
        "c.MlplatSettings.store_url = '...'; c.MlplatHub.port = 8000; "
        "c.MlplatSettings.store_uri = 1; c.MlplatHub.mode = 2; c.NoSuchThing.x = 3"
    )
    assert knobs(text) >= {("MlplatSettings", "store_url"), ("MlplatHub", "port")}
    assert unknown_knobs(text) == [
        "c.MlplatHub.mode: MlplatHub has no configurable mode",
        "c.MlplatSettings.store_uri: MlplatSettings has no configurable store_uri",
        "c.NoSuchThing.x: class NoSuchThing is not in CLASSES",
    ]
    # A trait that exists but is not configurable is refused too.
    refused = "c.MlplatLocalSpawner.isolate_users: MlplatLocalSpawner has no configurable"
    assert unknown_knobs("c.MlplatLocalSpawner.isolate_users = True") == [
        f"{refused} isolate_users"
    ]
