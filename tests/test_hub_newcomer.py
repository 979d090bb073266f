"""The newcomer's path on the real hub, as the user's own OS account, with MLflow behind hub
identity: alice runs the shipped example notebook (copied into her home at spawn) with
papermill from her own kernel — features from her copy of the feature repo, a tracked run,
registration and an auto-approved staging request through the platform service."""

from __future__ import annotations

import json

RUN_EXAMPLE = """
import json, os, papermill
os.environ["MLPLAT_NOTEBOOK_PATH"] = os.path.abspath("01_track_and_features.ipynb")
papermill.execute_notebook(
    "01_track_and_features.ipynb", "quickstart-out.ipynb",
    parameters={"experiment": "hub-quickstart"}, progress_bar=False,
)
out = json.load(open("quickstart-out.ipynb"))
texts = [o.get("data", {}).get("text/plain", "") for c in out["cells"] if c["cell_type"] == "code"
         for o in c.get("outputs", [])]
print("RESULT=" + json.dumps({"uid": os.getuid(), "texts": ["".join(t) for t in texts]}))
"""


async def test_alice_runs_the_example_notebook_in_her_own_server(platform_hub, hub_tokens):
    platform_hub.spawn("alice")
    try:
        out = await platform_hub.execute(
            "alice", RUN_EXAMPLE, token=hub_tokens["alice"], timeout=300
        )
    finally:
        platform_hub.stop_server("alice")
    line = next(x for x in out.splitlines() if x.startswith("RESULT="))
    result = json.loads(line[len("RESULT=") :])
    shown = "\n".join(result["texts"])
    assert "churn/hub-quickstart" in shown, shown  # the experiment, in alice's team
    assert "hub-quickstart-model v1 → staging is APPROVED" in shown, shown  # the last cell
    assert "frozen copy sha256 " in shown  # the approved files, copied where alice cannot write
    assert result["uid"] != 0
