"""Pipelines in the Kubernetes mode: submit, status and cancel against a Kubeflow Pipelines
v2 API. The API here is ``tests/kfp_standin.py``, a local HTTP stand-in of it, NOT a KFP
cluster: these tests see what the platform sends and how it reads the answers, nothing a
cluster would do with them."""

# No `from __future__ import annotations`: KFP reads components' annotations as types.
import os

import pytest
import yaml
from kfp import dsl

from jupyter_mlplat.client import PlatformClient
from jupyter_mlplat.errors import PermissionDenied, ServiceUnavailable
from jupyter_mlplat.pipelines.compile import compile_pipeline
from jupyter_mlplat.profiles import load_profiles
from tests.kfp_standin import KfpStandIn
from tests.test_jobs_flow import ALICE, BOB, jobs  # noqa: F401 - the fixture


@dsl.component(install_kfp_package=False)
def add(a: int) -> int:
    return a + 1


@dsl.pipeline(name="adder")
def adder(a: int = 1):
    add(a=add(a=a).output)


@pytest.fixture
def kfp(jobs, tmp_path):  # noqa: F811
    standin = KfpStandIn()
    token = tmp_path / "kfp-token"
    token.write_text("platform-token\n")
    os.chmod(token, 0o600)
    settings = jobs.make_settings(
        tmp_path / "home", kfp_api_url=standin.url, kfp_token_file=str(token)
    )
    clients = {u.user: PlatformClient(settings, transport="inprocess", identity=u)
               for u in (ALICE, BOB)}  # fmt: skip
    yield standin, clients, settings
    for client in clients.values():
        client._transport.platform.resources.close()
    standin.stop()


def test_a_run_goes_to_the_teams_namespace_as_its_user_and_is_read_back(kfp):
    standin, clients, settings = kfp
    alice = clients["alice"]
    compiled = compile_pipeline(adder)
    run = alice.submit_pipeline("adder", compiled, {"a": 4}, "kfp", "nightly", "", None)
    assert run.mode == "kfp" and run.status == "running" and run.kfp_run_id
    (sent,) = [r for r in standin.requests if r["method"] == "POST" and r["path"].endswith("/runs")]
    assert sent["body"]["pipeline_spec"] == yaml.safe_load(compiled)
    assert sent["body"]["runtime_config"]["parameters"] == {"a": 4}
    assert sent["headers"]["kubeflow-userid"] == "alice"
    assert sent["headers"]["authorization"] == "Bearer platform-token"
    allowed = [p for p in load_profiles(settings.profiles_dir).profiles
               if p.allowed_for(["team-churn"])]  # fmt: skip
    namespace = next((p for p in allowed if p.default), allowed[0]).namespace
    (experiment,) = standin.experiments.values()
    assert experiment["namespace"] == namespace and experiment["display_name"] == "churn/nightly"

    assert alice.show_pipeline_run(run.id).status == "running"
    standin.finish(run.kfp_run_id, "SUCCEEDED", [("add", "SUCCEEDED"), ("add-2", "SUCCEEDED")])
    done = alice.show_pipeline_run(run.id)
    assert done.status == "succeeded" and done.finished_at is not None
    assert [(t.name, t.state) for t in done.tasks] == [("add", "succeeded"), ("add-2", "succeeded")]
    with pytest.raises(PermissionDenied):
        clients["bob"].show_pipeline_run(run.id)


def test_cancel_terminates_the_kfp_run_and_a_failed_one_names_its_task(kfp):
    standin, clients, _ = kfp
    alice = clients["alice"]
    compiled = compile_pipeline(adder)
    run = alice.submit_pipeline("adder", compiled, {}, "kfp", "", "", None)
    with pytest.raises(PermissionDenied):
        clients["bob"].cancel_pipeline_run(run.id)
    cancelled = alice.cancel_pipeline_run(run.id)
    assert cancelled.status == "cancelled" and "cancelled by alice" in cancelled.reason
    assert standin.runs[run.kfp_run_id]["state"] == "CANCELED"
    failing = alice.submit_pipeline("adder", compiled, {}, "kfp", "", "", None)
    standin.finish(failing.kfp_run_id, "FAILED", [("add", "SUCCEEDED"), ("add-2", "FAILED")])
    assert clients["alice"]._transport.platform.areas["pipelines"].sync_kfp() == 1
    done = alice.show_pipeline_run(failing.id)
    assert done.status == "failed" and done.reason == "the task add-2 failed"


def test_a_refused_token_or_an_api_that_is_away_is_a_503_naming_it(kfp):
    standin, clients, _ = kfp
    compiled = compile_pipeline(adder)
    standin.refusing = True
    with pytest.raises(
        ServiceUnavailable, match="refused the platform's credentials.*kfp_token_file"
    ):
        clients["alice"].submit_pipeline("adder", compiled, {}, "kfp", "", "", None)
    standin.refusing = False
    standin.stop()
    with pytest.raises(ServiceUnavailable, match="did not answer"):
        clients["alice"].submit_pipeline("adder", compiled, {}, "kfp", "", "", None)
