"""The side panel in a real browser (Debian's Chromium, Playwright) on the real hub.

Seeded over the platform's HTTP API and MLflow behind the hub, with each user's own
token: alice's (churn) runs with notebook snapshots, two versions of her model (staging
approved, production requested), a job that succeeds and one that fails, a pipeline run;
bob's (fraud) run, model and job. Then, in the browser only: alice and bob see their own
team's rows and not the other's; rita (reviewer) approves alice's request and alice's page
shows the notification; alice deploys both versions, rolls back and tests a prediction,
re-runs her job with another parameter and sees it end, opens the failed job's notebook
and a run's snapshot, compares two runs. A screenshot of every tab, light and dark, goes to
``test-artifacts/``.
"""

from __future__ import annotations

import json
import re
import time

import nbformat
import pytest

from jupyter_mlplat.client import PlatformClient
from jupyter_mlplat.settings import MlplatSettings
from tests import browser
from tests.hub_fixtures import USERS
from tests.test_governance_flow import train_run  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(
    not __import__("os").path.exists(browser.CHROMIUM),
    reason="Debian's chromium is not installed (make test installs it)",
)
MODEL, FRAUD_MODEL = "panel-model", "panel-fraud-model"
DEPLOYMENT = f"{MODEL}-staging"  # <model>-<target>
FINAL = ("succeeded", "failed", "cancelled", "interrupted", "skipped")


def job_notebook(*cells: str) -> dict:
    nb = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell("x = 1")
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [parameters, *(nbformat.v4.new_code_cell(c) for c in cells)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return json.loads(nbformat.writes(nb))


def wait_job(client, run_id: int, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while (run := client.show_job(run_id)).status not in FINAL:
        assert time.monotonic() < deadline, run
        time.sleep(0.5)
    return run


@pytest.fixture
def seeded(platform_hub, hub_tokens, train_run, monkeypatch):  # noqa: F811
    def client(user: str) -> PlatformClient:
        settings = MlplatSettings(
            client_transport="http", service_url=f"{platform_hub.url}/services/mlplat/"
        )
        return PlatformClient(settings, token=hub_tokens[user], retry_seconds=10)

    # Their servers first: a first spawn makes a user's OS account, which their jobs run as.
    for user in ("alice", "bob", "rita"):
        platform_hub.spawn(user, timeout=120)
    hub_mlflow = f"{platform_hub.url}/services/mlflow"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", hub_tokens["alice"])
    runs = [train_run(hub_mlflow, "churn"), train_run(hub_mlflow, "churn")]
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", hub_tokens["bob"])
    fraud_run = train_run(hub_mlflow, "fraud")
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    alice, bob = client("alice"), client("bob")
    for run_id in runs:
        version = alice.register_model(MODEL, run_id).version
        assert alice.request_approval(MODEL, version, "staging").status == "approved"
    production = alice.request_approval(MODEL, "1", "production", reason="ship it")
    assert production.status == "requested"
    bob.register_model(FRAUD_MODEL, fraud_run)
    report = alice.run_job(
        "panel/report.ipynb", job_notebook("print('report', x * 2)"), {"x": 3}, "", None
    )
    broken = alice.run_job(
        "panel/broken.ipynb", job_notebook("raise ValueError('bad input')"), {}, "", None
    )
    bobs_job = bob.run_job("fraud/scan.ipynb", job_notebook("print(x)"), {}, "", None)
    from tests.test_pipelines_flow import compile_pipeline, local_features

    pipeline = alice.submit_pipeline(
        "panel-pipeline", compile_pipeline(local_features), {"flag": False}, "local", "", "", None
    )
    for client, run, status in ((alice, report, "succeeded"), (alice, broken, "failed"),
                                (bob, bobs_job, "succeeded")):  # fmt: skip
        done = wait_job(client, run.id)
        assert done.status == status, (done.reason, client.job_logs(run.id).text[-2000:])
    deadline = time.monotonic() + 180
    while alice.show_pipeline_run(pipeline.id).status not in FINAL:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    yield {
        "alice": alice, "bob": bob, "runs": runs, "fraud_run": fraud_run,
        "production": production, "report": report, "broken": broken, "bobs_job": bobs_job,
        "pipeline": pipeline,
    }  # fmt: skip
    if any(d.name == DEPLOYMENT for d in alice.list_deployments().items):
        alice.undeploy(DEPLOYMENT)  # its model server is not left to the rest of the session
    for user in ("alice", "bob", "rita"):
        platform_hub.stop_server(user)


def test_the_panel_from_login_to_rollback_in_chromium(platform_hub, seeded):
    from playwright.sync_api import expect, sync_playwright

    shots = []
    with sync_playwright() as playwright:
        chromium = browser.launch(playwright)
        pages = {
            u: browser.log_in(chromium, platform_hub.url, u, USERS[u][0])
            for u in ("alice", "bob", "rita")
        }
        for page in pages.values():
            browser.open_panel(page)
        browser.widen_panel(pages["alice"], 900)
        alice, bob, rita = pages["alice"], pages["bob"], pages["rita"]

        # Each sees their own team's runs, models and jobs, never the other team's.
        runs = browser.show_tab(alice, "Runs")
        for run_id in seeded["runs"]:
            expect(browser.row(runs, run_id)).to_be_visible()
        expect(browser.row(runs, seeded["fraud_run"])).to_have_count(0)
        bob_runs = browser.show_tab(bob, "Runs")
        expect(browser.row(bob_runs, seeded["fraud_run"])).to_be_visible()
        expect(browser.row(bob_runs, seeded["runs"][0])).to_have_count(0)
        models = browser.show_tab(alice, "Models")
        expect(browser.row(models, f"{MODEL}/1")).to_be_visible()
        expect(browser.row(models, f"{FRAUD_MODEL}/1")).to_have_count(0)
        bob_models = browser.show_tab(bob, "Models")
        expect(browser.row(bob_models, f"{FRAUD_MODEL}/1")).to_be_visible()
        expect(browser.row(bob_models, f"{MODEL}/1")).to_have_count(0)
        jobs = browser.show_tab(alice, "Jobs")
        expect(browser.row(jobs, str(seeded["report"].id))).to_be_visible()
        expect(browser.row(jobs, str(seeded["bobs_job"].id))).to_have_count(0)

        # Runs: compare two, open one's notebook snapshot.
        runs = browser.show_tab(alice, "Runs")
        for run_id in seeded["runs"]:
            browser.row(runs, run_id).get_by_role("checkbox").check()
        runs.get_by_role("button", name="Compare", exact=True).click()
        comparison = runs.get_by_role("region", name="Comparison")
        expect(comparison).to_contain_text("accuracy")
        shots.append(browser.screenshot(alice, "runs-compare-light"))
        browser.row(runs, seeded["runs"][0]).click()
        runs.get_by_role("button", name="Open notebook", exact=True).click()
        expect(
            alice.get_by_role("tab", name=re.compile(f"run-{seeded['runs'][0]}"))
        ).to_be_visible()

        # rita (reviewer) approves alice's production request; alice is told.
        models = browser.show_tab(rita, "Models")
        browser.row(models, f"{MODEL}/1").click()
        request = models.get_by_role("article", name=f"Request #{seeded['production'].id}")
        request.get_by_label("Comment").fill("checked the metrics")
        request.get_by_role("button", name="Approve", exact=True).click()
        expect(models.get_by_role("status")).to_contain_text("approved")
        expect(alice.get_by_text(re.compile(r"was approved by rita"))).to_be_visible(timeout=30_000)
        assert seeded["alice"].show_approval(seeded["production"].id).status == "approved"

        # alice deploys v1, then v2, rolls back to v1 and tests a prediction.
        models = browser.show_tab(alice, "Models")
        for version in ("1", "2"):
            browser.row(models, f"{MODEL}/{version}").click()
            staging = models.get_by_role("article").filter(has_text="staging: approved")
            staging.get_by_role("button", name="Deploy", exact=True).click()
            expect(models.get_by_role("status")).to_contain_text(
                f"Deployed {MODEL} v{version}", timeout=180_000
            )
        deployments = browser.show_tab(alice, "Deployments")
        browser.row(deployments, DEPLOYMENT).click()
        expect(deployments).to_contain_text("v2 100%")
        deployments.get_by_role("button", name="Rollback", exact=True).click()
        alice.get_by_role("dialog").get_by_role("button", name="Rollback").click()
        expect(deployments.get_by_role("status")).to_contain_text("v1 100%", timeout=180_000)
        shown = seeded["alice"].show_deployment(DEPLOYMENT)
        assert [(t.version, t.percent) for t in shown.traffic] == [("1", 100)]
        deployments.get_by_role("button", name="Test prediction", exact=True).click()
        deployments.get_by_label("Prediction input").fill(
            json.dumps({"records": [{"tenure_months": 3}, {"tenure_months": 40}]})
        )
        deployments.get_by_role("button", name="Send", exact=True).click()
        expect(deployments).to_contain_text("Outputs of v1")

        # alice re-runs her job with x = 21 and is told when it ends.
        jobs = browser.show_tab(alice, "Jobs")
        browser.row(jobs, str(seeded["report"].id)).click()
        jobs.get_by_role("button", name="Re-run", exact=True).click()
        jobs.get_by_label("x", exact=True).fill("21")
        jobs.get_by_role("button", name="Run", exact=True).click()
        expect(jobs.get_by_role("status")).to_contain_text("a re-run of job")
        said = jobs.get_by_role("status").inner_text()
        new_id = int(re.match(r"Job (\d+) is ", said)[1])
        expect(alice.get_by_text(re.compile(rf"Job {new_id} .*succeeded"))).to_be_visible(
            timeout=180_000
        )
        rerun = seeded["alice"].show_job(new_id)
        assert rerun.parameters == {"x": 21} and rerun.owner == "alice"
        text = json.dumps(seeded["alice"].job_notebook(new_id).notebook)
        assert "report 42" in text

        # The failed job: its failed cell in the details, its notebook opened.
        browser.row(jobs, str(seeded["broken"].id)).click()
        details = jobs.get_by_role("region", name=f"Job {seeded['broken'].id}")
        expect(details).to_contain_text("ValueError")
        details.get_by_role("button", name="Open notebook", exact=True).click()
        expect(
            alice.get_by_role("tab", name=re.compile(f"job-{seeded['broken'].id}"))
        ).to_be_visible()

        # Pipelines: the run and its tasks.
        pipelines = browser.show_tab(alice, "Pipelines")
        browser.row(pipelines, str(seeded["pipeline"].id)).click()
        expect(pipelines.locator("[data-testid=mlplat-task-row][data-id=total]")).to_be_visible()

        for dark in (False, True):
            browser.set_theme(alice, dark)
            browser.widen_panel(alice, 900)
            for tab in browser.TABS:
                browser.show_tab(alice, tab)
                alice.wait_for_timeout(300)  # (the theme's repaint, for the picture only)
                shots.append(
                    browser.screenshot(alice, f"{tab.lower()}-{'dark' if dark else 'light'}")
                )
        chromium.close()
    assert all(path.stat().st_size > 10_000 for path in shots), shots
