"""Every ```python snippet of the README runs as written, in order, in a fresh server.

The snippets become one notebook (a cell each) executed in a new real kernel with the
environment a server spawned by the embedded hub gets: its data dir, the tracking URI,
the demo feature repo, team ``churn``, user ``alice`` and the IPython profile that
``mlplat up`` writes (``prepare_home``), so the magics are preloaded as the README says.

``README_UNDER_TEST=/path/to/README.md`` checks another file (a README being rewritten).
"""

from __future__ import annotations

import os
import time

import pytest

from tests.readme_snippets import failures, notebook_of, python_snippets, readme_path


def test_only_python_fences_are_snippets():
    text = "\n".join(
        [
            "# t",
            "```bash",
            "make up",
            "```",
            "```python",
            "x = 1",
            "```",
            "    indented = 'not a snippet'",
            "```py",
            "y = 2",
            "```",
            "```python",
            "",
            "%mlplat status",
            "```",
        ]
    )
    snippets = python_snippets(text)
    assert [(s.line, s.source, s.first_line) for s in snippets] == [
        (5, "x = 1", "x = 1"),
        (12, "\n%mlplat status", "%mlplat status"),
    ]


@pytest.fixture
def server_env(tmp_path, mlflow_server, demo_feature_repo):
    """A spawned server's environment: its kernel's variables and its working directory."""
    from jupyter_mlplat.embedded import prepare_home
    from jupyter_mlplat.settings import MlplatSettings

    home = tmp_path / "home"
    # What `mlplat up` prepares: the data dir and the IPython profile loading the magics.
    extra = prepare_home(MlplatSettings(home=str(home), feature_repo=str(demo_feature_repo)))
    workdir = home / "users" / "alice"  # MlplatLocalSpawner's home_dir_template
    workdir.mkdir(parents=True)
    env = {
        **os.environ,  # conftest already removed MLPLAT_*, JUPYTERHUB_*, MLFLOW_TRACKING_URI
        **extra,
        "MLPLAT_HOME": str(home),
        "MLPLAT_MODE": "embedded",
        "MLPLAT_TRACKING_URI": mlflow_server.uri,
        "MLFLOW_TRACKING_URI": mlflow_server.uri,
        "MLPLAT_FEATURE_REPO": str(demo_feature_repo),
        "MLPLAT_TEAMS": "churn",
        "JUPYTERHUB_USER": "alice",
    }
    return env, workdir


def test_every_python_snippet_of_the_readme_runs_in_order(server_env):
    import nbformat
    from nbclient import NotebookClient

    env, workdir = server_env
    readme = readme_path()
    snippets = python_snippets(readme.read_text(encoding="utf-8"))
    assert snippets, f"{readme} has no ```python blocks"
    notebook = notebook_of(snippets)
    path = workdir / "README.ipynb"
    nbformat.write(notebook, path)  # saved first, as Lab does: the run records its hash
    env["JPY_SESSION_NAME"] = str(path)  # what Jupyter Server gives a notebook's kernel

    started = time.monotonic()
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,
        allow_errors=True,  # run them all; report every failing snippet, first one first
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute(env=env)
    nbformat.write(notebook, workdir / "README.out.ipynb")
    elapsed = time.monotonic() - started

    failed = failures(notebook, snippets)
    if failed:
        pytest.fail(
            f"{len(failed)} of {len(snippets)} ```python snippets of {readme} failed "
            f"({elapsed:.0f} s; executed notebook: {workdir / 'README.out.ipynb'}):\n"
            + "\n".join(str(f) for f in failed),
            pytrace=False,
        )
