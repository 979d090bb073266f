"""Serving in the kubernetes mode, through the application (issue 9), against
tests/kube_standin.py: a local HTTP stand-in of the Kubernetes API, not a cluster (none
runs on these machines). It stores what is applied and plays the controller's Ready; its
``status.address.url`` points at a real MLServer (bare, on a loopback port) serving the
approved version's frozen copy, so predictions really travel. What a real KServe does with
these objects (pulling the image, fetching ``storageUri``, splitting traffic) is not seen
here.

Real MLflow server and platform store; the governance flow approves the versions.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

from jupyter_mlplat.client import PlatformClient
from jupyter_mlplat.errors import ServiceUnavailable
from jupyter_mlplat.identity import ROLE_REVIEWER, Identity
from jupyter_mlplat.store.models import AuditEvent
from jupyter_mlplat.tracking import Tracker
from tests.kube_standin import NOT_READY_MESSAGE, KubeStandIn

SCHEMAS = Path(__file__).resolve().parents[2] / "shared" / "schemas"
ALICE = Identity("alice", ("churn",), "test")
RITA = Identity("rita", ("churn",), "test", roles=(ROLE_REVIEWER,))
X = pd.DataFrame({"tenure": [0.1, 0.2, 0.8, 0.9] * 5, "calls": [1.0, 0.0, 1.0, 0.0] * 5})
Y = np.array([0, 0, 1, 1] * 5)
IMAGE = "registry.example.com/mlplat-mlserver:1.7.1"


def schema(name: str) -> jsonschema.Draft7Validator:
    path = SCHEMAS / name
    if not path.is_file():
        pytest.skip(f"{path} is missing: ../shared must sit beside the project")
    return jsonschema.Draft7Validator(json.loads(path.read_text()))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, mlflow_server):
    """One in-process platform in the kubernetes mode, talking to the stand-in."""
    from jupyter_mlplat import fluent
    from jupyter_mlplat.settings import MlplatSettings, reset_settings

    home = tmp_path_factory.mktemp("kube-home")
    # The object store KServe fetches from: a local folder through MLflow's artifact
    # repository (the upload code of s3:// or gs:// too, without a network).
    storage_dir = tmp_path_factory.mktemp("object-store")
    token = home / "kube-token"
    token.write_text("standin-token\n")
    with KubeStandIn(ready_after=2) as api:
        settings = MlplatSettings(
            mode="kubernetes", kube_api_url=api.url, kube_token_file=str(token),
            kube_ca_file="", serving_storage_uri=storage_dir.as_uri(), serving_runtime_image=IMAGE,
            kube_ready_timeout=3.0, serving_route_cache_seconds=0.0,
            home=str(home), user="alice", teams=["churn"], teams_source="test",
            tracking_uri=mlflow_server.uri, store_url=f"sqlite:///{home / 'platform.db'}",
        )  # fmt: skip
        fluent.reset()
        reset_settings(settings)
        clients = {}

        def as_user(identity: Identity) -> PlatformClient:
            if identity.user not in clients:
                client = PlatformClient(settings, transport="inprocess", identity=identity)
                kube = client._transport.platform.resources.kube
                kube.poll_interval = 0.05  # the stand-in's controller answers at once
                clients[identity.user] = client
            return clients[identity.user]

        as_user.settings, as_user.api, as_user.storage_dir = settings, api, storage_dir
        yield as_user
        for client in clients.values():
            client._transport.platform.resources.close()
        reset_settings(None)
        fluent.reset()


def train(settings, flip: bool) -> str:
    import mlflow
    from sklearn.linear_model import LogisticRegression

    tracker = Tracker(settings)
    tracker.set_experiment("served-on-kube")
    with tracker.run("train", autolog=False) as info:
        model = LogisticRegression().fit(X, 1 - Y if flip else Y)
        mlflow.sklearn.log_model(model, name="model", input_example=X.head(2))
    return info.run_id


@pytest.fixture(scope="module")
def versions(cluster):
    alice, rita = cluster(ALICE), cluster(RITA)
    name = f"kube-{uuid.uuid4().hex[:6]}"
    found = {}
    for number, flip in ((1, False), (2, True)):
        version = alice.register_model(name, train(cluster.settings, flip)).version
        request = alice.request_approval(name, version, "staging")
        rita.approve(request.id, "checked by hand for this test")
        found[number] = version
    return name, found


@pytest.fixture(scope="module")
def address(cluster, versions, tmp_path_factory):
    """A bare MLServer on a loopback port serving version 1's frozen copy as the
    InferenceService would (model name = deployment name, MLSERVER_MODEL_VERSION set)."""
    from jupyter_mlplat.serving import gate
    from jupyter_mlplat.serving.environment import find_serving_environment
    from jupyter_mlplat.serving.local import LocalModelServer
    from jupyter_mlplat.store.db import get_store

    model, found = versions
    servable = gate.servable(
        get_store(cluster.settings), cluster.settings, ALICE, model, found[1], "staging"
    )
    copy = tmp_path_factory.mktemp("isvc-model") / "model"
    shutil.copytree(servable.model_path, copy)
    server = LocalModelServer.start(
        find_serving_environment(cluster.settings.serving_python or None), copy,
        f"{model}-staging", tmp_path_factory.mktemp("isvc-work"),
        extra_env={"MLSERVER_MODEL_VERSION": found[1]},
    )  # fmt: skip
    try:
        server.wait_ready(120)
        cluster.api.address_url = server.handle.base_url
        yield servable
    finally:
        server.stop(5)


def isvc(cluster, name: str) -> dict | None:
    return cluster.api.objects.get(("inferenceservices", "mlplat-churn", name))


def test_deploy_canary_promote_rollback_undeploy_drive_one_inference_service(
    cluster, versions, address
):
    alice = cluster(ALICE)
    model, found = versions
    name = f"{model}-staging"
    validate_isvc = schema("kserve-inferenceservice-v1beta1.schema.json")
    validate_runtime = schema("kserve-servingruntime-v1alpha1.schema.json")

    shown = alice.deploy(model, found[1], "staging", None)
    assert shown.status == "active" and [t.server for t in shown.traffic] == ["ready"]
    applied = isvc(cluster, name)
    validate_isvc.validate(applied)
    runtime = cluster.api.objects[("servingruntimes", "mlplat-churn", "mlplat-mlserver")]
    validate_runtime.validate(runtime)
    assert runtime["spec"]["containers"][0]["image"] == IMAGE
    spec = applied["spec"]["predictor"]
    storage = cluster.settings.serving_storage_uri
    assert spec["model"]["storageUri"] == f"{storage}/sha256/{address.frozen_digest}/model"
    # What the storage initializer would fetch is the approved copy, file for file.
    from jupyter_mlplat.governance.frozen import folder_digest

    published = cluster.storage_dir / "sha256" / address.frozen_digest
    assert folder_digest(published / "model") == address.frozen_digest
    assert (published / "manifest.json").is_file()
    sent = (published / "manifest.json").stat().st_mtime_ns
    assert "canaryTrafficPercent" not in spec
    notes = applied["metadata"]["annotations"]
    assert notes["mlplat.io/approval-id"] == str(address.approval_id)
    assert notes["mlplat.io/frozen-digest"] == f"sha256:{address.frozen_digest}"
    assert cluster.api.reads[("inferenceservices", "mlplat-churn", name)] >= 2  # it waited

    answer = alice.predict(name, X.head(6).to_dict(orient="records"), None)
    assert answer.version == found[1]  # from the answer's model_version
    from mlflow.pyfunc import load_model

    expected = load_model(str(address.model_path)).predict(X.head(6))
    (column,) = answer.outputs.values()
    assert list(column) == list(expected)

    canary = alice.deploy(model, found[2], "staging", 30)
    spec = isvc(cluster, name)["spec"]["predictor"]
    assert spec["canaryTrafficPercent"] == 30
    assert spec["model"]["storageUri"].endswith(f"/{canary.traffic[1].digest}/model")
    assert [(t.version, t.percent) for t in canary.traffic] == [(found[1], 70), (found[2], 30)]
    validate_isvc.validate(isvc(cluster, name))

    alice.promote(name)
    spec = isvc(cluster, name)["spec"]["predictor"]
    assert "canaryTrafficPercent" not in spec
    assert spec["model"]["storageUri"].endswith(f"/{canary.traffic[1].digest}/model")

    back = alice.rollback(name)
    assert [t.version for t in back.traffic] == [found[1]]
    spec = isvc(cluster, name)["spec"]["predictor"]
    assert spec["model"]["storageUri"].endswith(f"/{address.frozen_digest}/model")

    alice.undeploy(name)
    assert isvc(cluster, name) is None

    from jupyter_mlplat.store.db import get_store

    with get_store(cluster.settings).session() as session:
        actions = [
            e.action for e in session.query(AuditEvent).order_by(AuditEvent.seq)
            if e.subject == f"deployment:{name}"
        ]  # fmt: skip
    assert actions == ["deployment.deploy", "deployment.canary", "deployment.promote",
                       "deployment.rollback", "deployment.undeploy"]  # fmt: skip

    # Deployed again, the same content-addressed copy is not sent a second time.
    alice.deploy(model, found[1], "staging", None)
    assert (published / "manifest.json").stat().st_mtime_ns == sent
    alice.undeploy(name)


def test_an_inference_service_that_never_gets_ready_leaves_the_record_and_cluster_as_they_were(
    cluster, versions, address
):
    alice = cluster(ALICE)
    model, found = versions
    name = f"{model}-staging"
    alice.deploy(model, found[1], "staging", None)
    before = json.dumps(isvc(cluster, name)["spec"], sort_keys=True)
    cluster.api.ready_after = None  # the controller never reports Ready again
    try:
        with pytest.raises(ServiceUnavailable) as caught:
            alice.deploy(model, found[2], "staging", 20)
    finally:
        cluster.api.ready_after = 2
    assert f"InferenceService mlplat-churn/{name} was not Ready after 3 s" in str(caught.value)
    assert NOT_READY_MESSAGE in str(caught.value)
    shown = alice.show_deployment(name)
    assert [t.version for t in shown.traffic] == [found[1]]  # the record did not change
    assert json.dumps(isvc(cluster, name)["spec"], sort_keys=True) == before  # re-applied
    alice.undeploy(name)


def test_missing_kubernetes_settings_are_named(cluster, versions):
    alice = cluster(ALICE)
    model, found = versions
    kube = alice._transport.platform.resources.kube
    saved = kube.storage_uri
    kube.storage_uri = ""
    try:
        with pytest.raises(ServiceUnavailable) as caught:
            alice.deploy(model, found[1], "staging", None)
    finally:
        kube.storage_uri = saved
    assert "MlplatSettings.serving_storage_uri" in str(caught.value)
    assert isvc(cluster, f"{model}-staging") is None


def test_publishing_to_a_store_that_refuses_is_unavailable_and_applies_nothing(tmp_path):
    from jupyter_mlplat.serving.publish import publish

    copy = tmp_path / "copy"
    (copy / "model").mkdir(parents=True)
    (copy / "model" / "MLmodel").write_text("flavors: {}\n")
    (copy / "manifest.json").write_text("[]")
    digest = "a" * 64
    assert publish("pvc://mlplat-frozen", digest, copy) is False  # mounted: nothing to send
    blocked = tmp_path / "store"
    blocked.write_text("a file where the store's folder should be")
    with pytest.raises(
        ServiceUnavailable, match=r"Could not upload the frozen model copy to file:"
    ):
        publish(blocked.as_uri(), digest, copy)
    store = tmp_path / "ok"
    assert publish(store.as_uri(), digest, copy) is True
    assert publish(store.as_uri(), digest, copy) is False  # already there
    assert (store / "sha256" / digest / "model" / "MLmodel").read_text() == "flavors: {}\n"
