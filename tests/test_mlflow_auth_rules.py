"""The pure parts of MLflow behind hub identity: naming rules, registry rules, token checks
without a reachable hub (the hub-backed behaviour is in test_mlflow_auth.py)."""

from __future__ import annotations

import pytest

from jupyter_mlplat.embedded import free_port
from jupyter_mlplat.mlflow_auth import PLATFORM_USER
from jupyter_mlplat.mlflow_auth.grants import team_of_experiment
from jupyter_mlplat.mlflow_auth.hub_identity import (
    PLATFORM,
    HubUnavailable,
    HubUser,
    TokenChecker,
    token_from,
)
from jupyter_mlplat.mlflow_auth.rules import objection
from jupyter_mlplat.settings import MlplatSettings

ALICE = HubUser("alice", ("churn",), reader=False)


@pytest.mark.parametrize(
    ("name", "team"),
    [("churn/x", "churn"), ("churn/a/b", "churn"), ("churn/", ""), ("/x", ""), ("x", ""), ("", "")],
)
def test_an_experiments_team_is_the_part_before_the_first_slash(name, team):
    assert team_of_experiment(name) == team


def test_registry_writes_are_the_platforms_on_both_api_families():
    for prefix in ("/services/mlflow/api/2.0/mlflow", "/services/mlflow/ajax-api/2.0/mlflow"):
        for route in ("registered-models/create", "registered-models/alias",
                      "model-versions/create", "model-versions/set-tag"):  # fmt: skip
            assert "Only the platform" in objection(ALICE, "POST", f"{prefix}/{route}", {})
            assert objection(PLATFORM, "POST", f"{prefix}/{route}", {}) is None
        assert objection(ALICE, "DELETE", f"{prefix}/registered-models/delete", {})
        assert objection(ALICE, "GET", f"{prefix}/registered-models/search", None) is None
        get_latest = f"{prefix}/registered-models/get-latest-versions"
        assert objection(ALICE, "POST", get_latest, {}) is None  # a read sent as POST


def test_experiment_names_and_renames_stay_within_the_callers_teams():
    create = "/api/2.0/mlflow/experiments/create"
    assert objection(ALICE, "POST", create, {"name": "churn/x"}) is None
    refused = objection(ALICE, "POST", create, {"name": "x"})
    assert "<team>/<name>" in refused and "churn/x" in refused
    assert objection(ALICE, "POST", create, {"name": "fraud/x"})
    update = "/api/2.0/mlflow/experiments/update"
    names = {"1": "churn/old"}.get
    assert objection(ALICE, "POST", update, {"experiment_id": "1", "new_name": "churn/new"},
                     lambda i: names(i, "")) is None  # fmt: skip
    moved = objection(ALICE, "POST", update, {"experiment_id": "1", "new_name": "fraud/new"},
                      lambda i: names(i, ""))  # fmt: skip
    assert "stays with its team" in moved


def test_tokens_come_from_the_header_first_then_the_cookie():
    assert token_from("Bearer abc", "cookie") == ("abc", False)
    assert token_from("token abc", None) == ("abc", False)
    assert token_from("Basic dXNlcjpwdw==", "cookie") == ("cookie", True)
    assert token_from("", None) == ("", False)


def test_the_platform_secret_is_the_platform_and_a_dead_hub_is_unavailable_not_anonymous():
    settings = MlplatSettings(
        hub_api_url=f"http://127.0.0.1:{free_port()}/hub/api",
        hub_api_token="service-token",
        mlflow_platform_token="platform-secret",
        service_name="mlflow",
    )
    checker = TokenChecker(settings)
    assert checker.user_for("platform-secret") is PLATFORM
    assert PLATFORM.name == PLATFORM_USER
    assert checker.user_for("") is None
    with pytest.raises(HubUnavailable, match="could not check the token"):
        checker.user_for("some-user-token")
