"""What a user finds in a spawned server of the session hub, and the spawn form they see.

Spawned servers: the example notebooks in the working directory (an edit survives a
respawn), plain MLflow pointed at the platform's tracking server, no JupyterLab news
question. The form: each GPU choice inside its profile, Bootstrap 5 form classes.
"""

from __future__ import annotations

import json

import pytest
from bs4 import BeautifulSoup

from jupyter_mlplat.hub.spawner import copy_examples
from jupyter_mlplat.resources import example_notebooks_dir
from tests.hub_fixtures import USERS, login

EXAMPLE = "01_track_and_features.ipynb"


@pytest.fixture(scope="module")
def bob_server(platform_hub, hub_tokens):
    """bob's running default server (his team's default profile)."""
    platform_hub.spawn("bob")
    yield platform_hub
    platform_hub.stop_server("bob")


def _contents(hub, token, path, **kwargs):
    return hub.request("GET", f"{hub.url}/user/bob/api/contents/{path}", token=token, **kwargs)


def test_example_notebooks_are_in_the_users_lab_and_an_edit_survives_a_respawn(
    bob_server, hub_tokens
):
    hub, token = bob_server, hub_tokens["bob"]
    shipped = json.loads((example_notebooks_dir() / EXAMPLE).read_text())
    listing = _contents(hub, token, "")
    assert listing.status_code == 200, listing.text
    assert EXAMPLE in {item["name"] for item in listing.json()["content"]}
    notebook = _contents(hub, token, EXAMPLE).json()["content"]
    assert notebook["cells"][0]["source"] == "".join(shipped["cells"][0]["source"])

    notebook["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "bob was here"})
    saved = hub.request(
        "PUT",
        f"{hub.url}/user/bob/api/contents/{EXAMPLE}",
        token=token,
        json={"type": "notebook", "format": "json", "content": notebook},
    )
    assert saved.status_code == 200, saved.text

    hub.stop_server("bob")
    hub.spawn("bob")
    again = _contents(hub, token, EXAMPLE).json()["content"]
    assert again["cells"][-1]["source"] == "bob was here"
    assert len(again["cells"]) == len(shipped["cells"]) + 1


async def test_plain_mlflow_in_a_new_kernel_logs_to_the_platform_server(
    bob_server, hub_tokens, monkeypatch
):
    hub = bob_server
    out = await hub.execute(
        "bob",
        "import mlflow\n"
        "print('URI=' + mlflow.get_tracking_uri())\n"
        "try:\n"
        "    mlflow.set_experiment('plain-mlflow-bob')\n"
        "except mlflow.exceptions.MlflowException as exc:\n"
        "    print('REFUSED=' + exc.message.replace(chr(10), ' '))\n"
        "mlflow.set_experiment('fraud/plain-mlflow-bob')\n"
        "with mlflow.start_run() as run:\n"
        "    mlflow.log_metric('m', 1.0)\n"
        "print('RUNID=' + run.info.run_id)\n",
        token=hub_tokens["bob"],
        timeout=120,
    )
    lines = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    tracking = f"{hub.url}/services/mlflow"
    assert lines["URI"] == tracking
    # experiments belong to a team: a name without one is refused, saying what to use
    assert "must be named <team>/<name>" in lines["REFUSED"] and "fraud/" in lines["REFUSED"]
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", hub_tokens["bob"])
    assert MlflowClient(tracking).get_run(lines["RUNID"]).data.metrics == {"m": 1.0}


def test_jupyterlab_does_not_ask_about_news(bob_server, hub_tokens):
    hub = bob_server
    plugin = "@jupyterlab/apputils-extension:notification"
    response = hub.request(
        "GET", f"{hub.url}/user/bob/lab/api/settings/{plugin}", token=hub_tokens["bob"]
    )
    assert response.status_code == 200, response.text
    # The Lab asks on first open only while this composite setting is "none" (the default).
    assert response.json()["settings"]["fetchNews"] == "false"


def test_copying_examples_never_overwrites_and_never_brings_back_a_deleted_one(tmp_path):
    source = tmp_path / "examples"
    (source / "sub").mkdir(parents=True)
    (source / "a.ipynb").write_text("shipped a")
    (source / "sub" / "b.ipynb").write_text("shipped b")
    (source / ".ipynb_checkpoints").mkdir()
    (source / ".ipynb_checkpoints" / "a-checkpoint.ipynb").write_text("x")
    home = tmp_path / "home"
    home.mkdir()
    (home / "a.ipynb").write_text("the user's own a")

    assert copy_examples(source, home) == ["sub/b.ipynb"]
    assert (home / "a.ipynb").read_text() == "the user's own a"
    assert (home / "sub" / "b.ipynb").read_text() == "shipped b"
    assert not (home / ".ipynb_checkpoints").exists()

    (home / "sub" / "b.ipynb").unlink()
    (home / "a.ipynb").unlink()
    (source / "c.ipynb").write_text("new in a later release")
    assert copy_examples(source, home) == ["c.ipynb"]
    assert not (home / "a.ipynb").exists() and not (home / "sub" / "b.ipynb").exists()


def test_spawn_form_nests_each_gpu_choice_in_its_profile_with_bootstrap_classes(platform_hub):
    session = login(platform_hub, "alice", USERS["alice"][0]).session
    page = session.get(f"{platform_hub.url}/hub/spawn", timeout=30)
    assert page.status_code == 200
    form = BeautifulSoup(page.text, "html.parser").select_one("form#spawn_form #mlplat-profiles")
    assert form is not None, page.text[:2000]

    radios = form.select('input[type="radio"][name="profile"]')
    assert [r["value"] for r in radios] == ["churn-cpu", "churn-gpu", "shared-cpu"]
    assert [r["value"] for r in radios if r.has_attr("checked")] == ["churn-cpu"]
    for radio in radios:
        assert "form-check-input" in radio["class"]
        item = radio.find_parent("div")
        assert "form-check" in item["class"]
        label = item.find("label", attrs={"for": radio["id"]})
        assert label is not None and "form-check-label" in label["class"]

    selects = form.select("select")
    assert [s["name"] for s in selects] == ["gpu-churn-gpu"]
    select = selects[0]
    assert "form-select" in select["class"]
    assert [o["value"] for o in select.select("option")] == ["none", "1x-t4"]
    box = select.find_parent("fieldset")
    assert box["data-gpu-of"] == "churn-gpu"
    # The choice belongs to its profile and is shown (and posted) only when it is chosen.
    owner = box.find_parent("div", class_="form-check")
    assert owner.select_one('input[name="profile"]')["value"] == "churn-gpu"
    assert box.has_attr("disabled") and box.has_attr("hidden")
    label = form.find("label", attrs={"for": select["id"]})
    assert label is not None and "form-label" in label["class"]

    script = form.find("script").string
    assert "data-gpu-of" in script and "disabled" in script and "hidden" in script
    assert "not enforced" in form.select_one("p.form-text").text
