"""The newcomer's path on the real hub, as the user's own OS account, with MLflow behind hub
identity: alice runs the shipped example notebook (copied into her home at spawn) with
papermill from her own kernel — features from her copy of the feature repo, a tracked run,
registration and an auto-approved staging request through the platform service — twice
(two versions); then deploys version 1, predicts from her notebook, canaries version 2,
promotes and rolls back, while a standard V2 client reaches the deployment through the
platform service with her hub token and bob's token is refused."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import requests

from jupyter_mlplat.client import PlatformClient
from jupyter_mlplat.settings import MlplatSettings

RUN_EXAMPLE = """
import json, os, papermill
os.environ["MLPLAT_NOTEBOOK_PATH"] = os.path.abspath("01_track_and_features.ipynb")
texts = []
for n, C in enumerate((1.0, 0.5)):
    papermill.execute_notebook(
        "01_track_and_features.ipynb", f"quickstart-out-{n}.ipynb",
        parameters={"experiment": "hub-quickstart", "C": C}, progress_bar=False,
    )
    out = json.load(open(f"quickstart-out-{n}.ipynb"))
    texts += ["".join(o.get("data", {}).get("text/plain", "")) for c in out["cells"]
              if c["cell_type"] == "code" for o in c.get("outputs", [])]
print("RESULT=" + json.dumps({"uid": os.getuid(), "texts": texts}))
"""

SERVE = """
import json
import pandas as pd
import jupyter_mlplat as mlplat
rows = pd.DataFrame({"tenure_months": [3, 40], "monthly_spend": [20.0, 90.0],
                     "support_tickets": [5, 0], "sessions_7d": [1, 9]})
first = %mlplat deploy hub-quickstart-model 1
print("DEPLOYED=" + repr(first).splitlines()[0])
from ipywidgets.widgets.widget import _instances
bars = [w for w in _instances.values() if type(w).__name__ == "IntProgress"]
labels = [w.value for w in _instances.values() if type(w).__name__ == "Label"]
print("PROGRESS=" + json.dumps({"styles": [b.bar_style for b in bars], "labels": labels}))
%mlplat predict hub-quickstart-model --data rows -o predicted
print("PREDICTED=" + json.dumps({"version": predicted.attrs["version"],
                                 "values": predicted.iloc[:, 0].tolist()}))
canary = %mlplat deploy hub-quickstart-model 2 --canary 30
print("CANARY=" + repr(canary).splitlines()[0])
promoted = %mlplat promote hub-quickstart-model
print("PROMOTED=" + repr(promoted).splitlines()[0])
back = %mlplat rollback hub-quickstart-model
print("ROLLEDBACK=" + repr(back).splitlines()[0])
# Its own row: the session's hub may list other tests' deployments of team churn too.
print("LIST=" + next(x for x in repr(mlplat.deployments()).splitlines()
                     if x.startswith("hub-quickstart-model-staging")))
"""

NAME = "hub-quickstart-model-staging"


async def test_alice_runs_the_example_and_serves_it_from_her_own_server(platform_hub, hub_tokens):
    platform_hub.spawn("alice")
    try:
        out = await platform_hub.execute(
            "alice", RUN_EXAMPLE, token=hub_tokens["alice"], timeout=400
        )
        served = await platform_hub.execute("alice", SERVE, token=hub_tokens["alice"], timeout=300)
    finally:
        platform_hub.stop_server("alice")
    line = next(x for x in out.splitlines() if x.startswith("RESULT="))
    result = json.loads(line[len("RESULT=") :])
    shown = "\n".join(result["texts"])
    assert "churn/hub-quickstart" in shown, shown  # the experiment, in alice's team
    assert "hub-quickstart-model v1 → staging is APPROVED" in shown, shown
    assert "hub-quickstart-model v2 → staging is APPROVED" in shown, shown
    assert "frozen copy sha256 " in shown  # the approved files, copied where alice cannot write
    assert result["uid"] != 0

    lines = dict(x.split("=", 1) for x in served.splitlines() if "=" in x and x[:1].isupper())
    assert lines["DEPLOYED"] == f"Deployment {NAME}: ACTIVE — v1 100% (ready)", served
    # The deploy's wait was shown as a progress widget, updated in place to its end.
    progress = json.loads(lines["PROGRESS"])
    assert progress["styles"] == ["success"], progress
    assert progress["labels"][0].startswith("deploy hub-quickstart-model v1 to staging: ready ("), (
        progress
    )
    predicted = json.loads(lines["PREDICTED"])
    assert predicted["version"] == "1" and len(predicted["values"]) == 2
    assert lines["CANARY"] == f"Deployment {NAME}: ACTIVE — v1 70% (ready), v2 30% (ready)"
    assert lines["PROMOTED"] == f"Deployment {NAME}: ACTIVE — v2 100% (ready)"
    assert lines["ROLLEDBACK"] == f"Deployment {NAME}: ACTIVE — v1 100% (ready)"
    assert lines["LIST"].startswith(NAME)

    # A standard V2 client, pointed at the deployment under the platform service.
    base = f"{platform_hub.url}/services/mlplat/api/deployments/{NAME}/v2/models/{NAME}"
    alice = {"Authorization": f"token {hub_tokens['alice']}"}
    metadata = requests.get(base, headers=alice, timeout=30)
    assert metadata.status_code == 200 and metadata.json()["name"] == NAME, metadata.text
    assert requests.get(f"{base}/ready", headers=alice, timeout=30).json()["ready"] is True
    body = {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {"name": n, "shape": [2], "datatype": t, "data": v}
            for n, t, v in (("tenure_months", "INT64", [3, 40]),
                            ("monthly_spend", "FP64", [20.0, 90.0]),
                            ("support_tickets", "INT64", [5, 0]),
                            ("sessions_7d", "INT64", [1, 9]))
        ],
    }  # fmt: skip
    answer = requests.post(f"{base}/infer", json=body, headers=alice, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == predicted["values"]
    bob = {"Authorization": f"token {hub_tokens['bob']}"}
    refused = requests.post(f"{base}/infer", json=body, headers=bob, timeout=60)
    assert refused.status_code == 403 and "belongs to team 'churn'" in refused.json()["error"]
    anonymous = requests.post(f"{base}/infer", json=body, timeout=60)
    assert anonymous.status_code == 401

    # every step is in the audit log, which rita (a reviewer) reads
    rita = PlatformClient(
        MlplatSettings(client_transport="http", service_url=f"{platform_hub.url}/services/mlplat/"),
        token=hub_tokens["rita"], retry_seconds=10,
    )  # fmt: skip
    actions = [e.action for e in rita.iter_audit_events()
               if e.subject == f"deployment:{NAME}"]  # fmt: skip
    assert actions == ["deployment.deploy", "deployment.canary", "deployment.promote",
                       "deployment.rollback"]  # fmt: skip
    # The platform service's supervision round brings a killed model server back by itself.
    (leader,) = model_servers(NAME)
    os.killpg(leader, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while True:
        shown = requests.get(
            f"{platform_hub.url}/services/mlplat/api/deployments/{NAME}", headers=alice, timeout=30
        ).json()
        now = model_servers(NAME)
        if shown["traffic"][0]["server"] == "ready" and now and now != [leader]:
            break
        assert time.monotonic() < deadline, (shown, platform_hub.log_tail())
        time.sleep(0.5)
    again = requests.post(f"{base}/infer", json=body, headers=alice, timeout=60)
    assert again.status_code == 200 and again.json()["outputs"][0]["data"] == predicted["values"]

    undeployed = PlatformClient(
        MlplatSettings(client_transport="http", service_url=f"{platform_hub.url}/services/mlplat/"),
        token=hub_tokens["alice"], retry_seconds=10,
    ).undeploy(NAME)  # fmt: skip
    assert undeployed.status == "undeployed"


def model_servers(name: str) -> list[int]:
    """Process-group leaders of the MLServer processes serving ``name``."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            serves = f"MLSERVER_MODEL_NAME={name}".encode() in environ.read_bytes().split(b"\0")
            pid = int(environ.parent.name)
            if serves and os.getpgid(pid) == pid:
                found.append(pid)
        except OSError:
            continue
    return found
