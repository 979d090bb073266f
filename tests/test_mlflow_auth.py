"""MLflow behind hub identity, through the real hub (issue 8, item 2).

The session hub runs MLflow as ``mlflow server --app-name mlplat-hub``: MLflow's own
authorization app with no default permission. alice (churn), bob (fraud) and rita
(churn + reviewer) call it with their own hub tokens, as MLflow clients do
(``Authorization: Bearer``), through the hub's proxy and on MLflow's loopback port.
"""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.hub_fixtures import USERS, login

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

API = "api/2.0/mlflow"
AJAX = "ajax-api/2.0/mlflow"


class Mlflow:
    """MLflow's REST API as one caller (a bearer token, or none)."""

    def __init__(self, base: str, token: str | None):
        self.base = base.rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, route: str, family: str = API, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, f"{self.base}/{family}/{route}", **kwargs)

    def ok(self, method: str, route: str, **kwargs) -> dict:
        response = self.call(method, route, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def mlflow_base(platform_hub):
    return f"{platform_hub.url}/services/mlflow"


@pytest.fixture(scope="module")
def loopback_base(platform_hub):
    services = platform_hub.api("GET", "/services").json()
    return f"{services['mlflow']['url'].rstrip('/')}/services/mlflow"


@pytest.fixture(scope="module")
def as_user(mlflow_base, hub_tokens):
    return {name: Mlflow(mlflow_base, token) for name, token in hub_tokens.items()}


@pytest.fixture(scope="module")
def churn_run(as_user):
    """An experiment churn/<random> with one run, a metric and an artifact, made by alice."""
    alice = as_user["alice"]
    name = f"churn/auth-{uuid.uuid4().hex[:8]}"
    experiment_id = alice.ok("POST", "experiments/create", json={"name": name})["experiment_id"]
    run = alice.ok("POST", "runs/create", json={"experiment_id": experiment_id})["run"]["info"]
    alice.ok("POST", "runs/log-metric", json={"run_id": run["run_id"], "key": "auc",
                                              "value": 0.8, "timestamp": 0, "step": 0})  # fmt: skip
    put = alice.session.put(
        f"{alice.base}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run['run_id']}"
        "/artifacts/model/model.pkl",
        data=b"original model",
        timeout=30,
    )
    assert put.status_code == 200, put.text
    return {"experiment_id": experiment_id, "name": name, "run_id": run["run_id"]}


def test_anonymous_callers_get_401_on_every_family_and_on_the_loopback_port(
    mlflow_base, loopback_base, churn_run
):
    for base in (mlflow_base, loopback_base):
        anonymous = Mlflow(base, None)
        experiment, run = churn_run["experiment_id"], churn_run["run_id"]
        for family in (API, AJAX):
            assert (
                anonymous.call(
                    "GET", "experiments/search", family, params={"max_results": 5}
                ).status_code
                == 401
            )
            assert (
                anonymous.call(
                    "POST", "experiments/create", family, json={"name": "churn/x"}
                ).status_code
                == 401
            )
        for path in (
            f"api/2.0/mlflow-artifacts/artifacts/{experiment}/{run}/artifacts/model/model.pkl",
            f"ajax-api/2.0/mlflow-artifacts/artifacts/{experiment}/{run}/artifacts/model/model.pkl",
            f"get-artifact?path=model/model.pkl&run_uuid={run}",
        ):
            response = anonymous.session.get(f"{base}/{path}", timeout=30)
            assert response.status_code == 401, (path, response.status_code)
        # a made-up token is no better than none, also for writes
        forged = Mlflow(base, "0" * 64)
        assert forged.call("POST", "experiments/create", json={"name": "churn/y"}).status_code == 401  # fmt: skip


def test_the_health_page_stays_open_for_the_hub(mlflow_base):
    assert requests.get(f"{mlflow_base}/health", timeout=30).status_code == 200


def test_another_team_can_neither_read_nor_write_churns_experiment(as_user, churn_run):
    bob = as_user["bob"]
    experiment, run = churn_run["experiment_id"], churn_run["run_id"]
    for family in (API, AJAX):
        assert bob.call("GET", "experiments/get", family, params={"experiment_id": experiment}).status_code == 403  # fmt: skip
        assert bob.call("GET", "runs/get", family, params={"run_id": run}).status_code == 403
        writes = [
            ("runs/log-metric", {"run_id": run, "key": "auc", "value": 1.0, "timestamp": 0}),
            ("runs/set-tag", {"run_id": run, "key": "mlplat.team", "value": "fraud"}),
            ("runs/create", {"experiment_id": experiment}),
            ("experiments/delete", {"experiment_id": experiment}),
            ("experiments/update", {"experiment_id": experiment, "new_name": "fraud/stolen"}),
        ]
        for route, body in writes:
            response = bob.call("POST", route, family, json=body)
            assert response.status_code == 403, (family, route, response.text)
        search = bob.call("POST", "runs/search", family, json={"experiment_ids": [experiment]})
        assert search.status_code in (200, 403), search.text
        assert "runs" not in (search.json() if search.status_code == 200 else {}), search.text
    # the artifact proxy: neither read nor replace churn's model file
    url = f"api/2.0/mlflow-artifacts/artifacts/{experiment}/{run}/artifacts/model/model.pkl"
    assert bob.session.get(f"{bob.base}/{url}", timeout=30).status_code == 403
    assert bob.session.put(f"{bob.base}/{url}", data=b"evil", timeout=30).status_code == 403
    listing = bob.session.get(
        f"{bob.base}/api/2.0/mlflow-artifacts/artifacts",
        params={"path": f"{experiment}/{run}/artifacts"},
        timeout=30,
    )
    assert listing.status_code == 403
    got = bob.session.get(
        f"{bob.base}/get-artifact", params={"path": "model/model.pkl", "run_uuid": run}, timeout=30
    )
    assert got.status_code == 403
    upload = bob.session.post(
        f"{bob.base}/ajax-api/2.0/mlflow/upload-artifact",
        params={"run_uuid": run, "path": "model/model.pkl"},
        data=b"evil",
        timeout=30,
    )
    assert upload.status_code == 403
    query = {
        "query": "query q($data: MlflowGetRunInput) { mlflowGetRun(input: $data) "
        "{ run { info { runId } data { metrics { key value } } } } }",
        "variables": {"data": {"runId": run}},
    }
    graphql = bob.session.post(f"{bob.base}/graphql", json=query, timeout=30)
    assert graphql.status_code == 403 or "0.8" not in graphql.text, graphql.text
    # and nothing changed
    alice = as_user["alice"]
    data = alice.ok("GET", "runs/get", params={"run_id": run})["run"]["data"]
    assert [m["value"] for m in data["metrics"]] == [0.8]
    content = alice.session.get(f"{alice.base}/{url}", timeout=30)
    assert content.content == b"original model"
    # the same GraphQL query answers alice (so bob's refusal is the permission, not the route)
    mine = alice.session.post(f"{alice.base}/graphql", json=query, timeout=30)
    assert mine.status_code == 200 and "0.8" in mine.text, mine.text


def test_searches_are_filtered_to_what_the_caller_may_read(as_user, churn_run):
    bob = as_user["bob"]
    fraud = f"fraud/auth-{uuid.uuid4().hex[:8]}"
    bob.ok("POST", "experiments/create", json={"name": fraud})

    def names(user):
        found = as_user[user].ok("POST", "experiments/search", json={"max_results": 1000})
        return {e["name"] for e in found.get("experiments", [])}

    assert churn_run["name"] not in names("bob") and fraud in names("bob")
    assert churn_run["name"] in names("alice") and fraud not in names("alice")
    # rita reviews: she reads every team's experiments, but cannot write fraud's
    assert {churn_run["name"], fraud} <= names("rita")
    fraud_id = as_user["bob"].ok("GET", "experiments/get-by-name",
                                 params={"experiment_name": fraud})["experiment"]["experiment_id"]  # fmt: skip
    assert as_user["rita"].call("POST", "runs/create", json={"experiment_id": fraud_id}).status_code == 403  # fmt: skip


def test_experiments_are_created_only_under_the_callers_own_teams(as_user, churn_run):
    alice = as_user["alice"]
    for name in ("fraud/planted", "no-team-prefix", "/x", "churn/"):
        response = alice.call("POST", "experiments/create", json={"name": name})
        assert response.status_code == 403, (name, response.text)
        assert "<team>/<name>" in response.json()["message"]
    moved = alice.call(
        "POST", "experiments/update",
        json={"experiment_id": churn_run["experiment_id"], "new_name": "fraud/moved"},
    )  # fmt: skip
    assert moved.status_code == 403
    assert "stays with its team" in moved.json()["message"]


def test_users_cannot_write_the_registry_only_read_it(as_user, churn_run):
    alice = as_user["alice"]
    model = f"auth-model-{uuid.uuid4().hex[:6]}"
    writes = [
        ("registered-models/create", {"name": model}),
        ("model-versions/create", {"name": model, "source": f"runs:/{churn_run['run_id']}/model",
                                   "run_id": churn_run["run_id"]}),
        ("registered-models/alias", {"name": "churn-model", "alias": "production", "version": "1"}),
        ("model-versions/set-tag", {"name": "churn-model", "version": "1",
                                    "key": "mlplat.approval.production", "value": "approved"}),
    ]  # fmt: skip
    for route, body in writes:
        for family in (API, AJAX):
            response = alice.call("POST", route, family, json=body)
            assert response.status_code == 403, (route, response.text)
            assert "Only the platform writes the model registry" in response.json()["message"]
    deleted = alice.call("DELETE", "registered-models/delete", json={"name": "churn-model"})
    assert deleted.status_code == 403
    alias = alice.call("DELETE", "registered-models/alias",
                       json={"name": "churn-model", "alias": "production"})  # fmt: skip
    assert alias.status_code == 403
    # reading is allowed (filtered to what alice may read)
    assert alice.call("GET", "registered-models/search").status_code == 200


def test_the_mlflow_ui_logs_in_through_the_hub(platform_hub, mlflow_base, churn_run):
    """A logged-in browser opening MLflow is sent through the hub's OAuth and back."""
    browser = login(platform_hub, "alice", USERS["alice"][0]).session
    page = browser.get(f"{mlflow_base}/", headers={"Accept": "text/html"}, timeout=30)
    assert page.status_code == 200, page.url
    assert "<html" in page.text.lower()
    assert any(c.name == "mlplat-mlflow-token" for c in browser.cookies)
    experiment = browser.get(
        f"{mlflow_base}/{AJAX}/experiments/get",
        params={"experiment_id": churn_run["experiment_id"]},
        timeout=30,
    )
    assert experiment.status_code == 200
    # a write carried by the cookie must come from the hub's own pages
    body = {"experiment_id": churn_run["experiment_id"], "key": "note", "value": "x"}
    cross = browser.post(f"{mlflow_base}/{AJAX}/experiments/set-experiment-tag", json=body,
                         headers={"Sec-Fetch-Site": "cross-site"}, timeout=30)  # fmt: skip
    assert cross.status_code == 403
    same = browser.post(f"{mlflow_base}/{AJAX}/experiments/set-experiment-tag", json=body,
                        headers={"Sec-Fetch-Site": "same-origin"}, timeout=30)  # fmt: skip
    assert same.status_code == 200, same.text
    # bob's browser session gets nothing of churn's
    bob = login(platform_hub, "bob", USERS["bob"][0]).session
    bob.get(f"{mlflow_base}/", headers={"Accept": "text/html"}, timeout=30)
    denied = bob.get(f"{mlflow_base}/{AJAX}/experiments/get",
                     params={"experiment_id": churn_run["experiment_id"]}, timeout=30)  # fmt: skip
    assert denied.status_code == 403


def test_a_page_request_without_login_goes_to_the_hub_login(mlflow_base):
    anonymous = requests.get(
        f"{mlflow_base}/", headers={"Accept": "text/html"}, allow_redirects=False, timeout=30
    )
    assert anonymous.status_code == 302
    assert "/hub/api/oauth2/authorize" in anonymous.headers["Location"]


def test_a_forged_oauth_callback_is_refused(mlflow_base):
    response = requests.get(f"{mlflow_base}/oauth_callback", params={"code": "x", "state": "y"},
                            timeout=30)  # fmt: skip
    assert response.status_code == 400
    assert "hub login" in response.json()["message"]


BOBS_ATTEMPTS = """
import os, mlflow, requests
from mlflow import MlflowClient
client = MlflowClient()
def attempt(name, fn):
    try:
        fn()
        print(name + '=allowed')
    except Exception as exc:
        print(name + '=refused ' + str(getattr(exc, 'error_code', type(exc).__name__)))
attempt('get_run', lambda: client.get_run({run!r}))
attempt('set_tag', lambda: client.set_tag({run!r}, 'mlplat.team', 'fraud'))
attempt('log_metric', lambda: client.log_metric({run!r}, 'auc', 1.0))
attempt('alias', lambda: client.set_registered_model_alias('churn-model', 'production', '1'))
attempt('download', lambda: mlflow.artifacts.download_artifacts(run_id={run!r}, artifact_path='model'))
print('loopback=' + str(requests.get({loopback!r} + '/api/2.0/mlflow/experiments/search',
                                     params={{'max_results': 5}}, timeout=30).status_code))
print('own_token=' + str(os.environ['MLFLOW_TRACKING_TOKEN'] == os.environ['JUPYTERHUB_API_TOKEN']))
mlflow.set_experiment('fraud/from-kernel')
with mlflow.start_run():
    mlflow.log_metric('m', 1.0)
print('own_team=ok')
"""


async def test_from_bobs_kernel_churns_mlflow_data_is_out_of_reach(
    platform_hub, hub_tokens, churn_run, loopback_base
):
    platform_hub.spawn("bob")
    try:
        out = await platform_hub.execute(
            "bob",
            BOBS_ATTEMPTS.format(run=churn_run["run_id"], loopback=loopback_base),
            token=hub_tokens["bob"],
            timeout=120,
        )
    finally:
        platform_hub.stop_server("bob")
    lines = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    for name in ("get_run", "set_tag", "log_metric", "alias", "download"):
        assert lines[name].startswith("refused"), (name, out)
    assert lines["alias"] == "refused PERMISSION_DENIED"
    assert lines["loopback"] == "401"  # MLflow's own port wants the same identity
    assert lines["own_token"] == "True" and lines["own_team"] == "ok"


def test_a_model_the_platform_registers_for_churn_is_readable_by_churn_only(
    platform_hub, mlflow_base, as_user, churn_run
):
    from pathlib import Path

    secret = (Path(platform_hub.env["MLPLAT_HOME"]) / "hub" / "mlflow-platform.token").read_text()
    platform = Mlflow(mlflow_base, secret.strip())
    model = f"auth-read-{uuid.uuid4().hex[:6]}"
    platform.ok("POST", "registered-models/create", json={"name": model})
    platform.ok("POST", "model-versions/create", json={
        "name": model, "source": f"runs:/{churn_run['run_id']}/model",
        "run_id": churn_run["run_id"], "tags": [{"key": "mlplat.team", "value": "churn"}],
    })  # fmt: skip
    params = {"name": model}
    assert as_user["alice"].call("GET", "registered-models/get", params=params).status_code == 200
    assert as_user["rita"].call("GET", "registered-models/get", params=params).status_code == 200
    assert as_user["bob"].call("GET", "registered-models/get", params=params).status_code == 403
    version = {"name": model, "version": "1"}
    assert as_user["bob"].call("GET", "model-versions/get-download-uri", params=version).status_code == 403  # fmt: skip
    found = as_user["bob"].ok("GET", "registered-models/search", params={"max_results": 1000})
    assert model not in {m["name"] for m in found.get("registered_models", [])}
    found = as_user["alice"].ok("GET", "registered-models/search", params={"max_results": 1000})
    assert model in {m["name"] for m in found.get("registered_models", [])}
