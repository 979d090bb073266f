"""The Kubernetes deployer: KServe manifests validated against KServe's CRD schemas, names
and canary shares checked, and the API calls run against a local HTTP stand-in of the
Kubernetes API (tests/kube_standin.py; no cluster runs on these machines)."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import jsonschema
import pytest

from jupyter_mlplat.errors import (
    NotFoundError,
    ServiceUnavailable,
    UsageError,
)
from jupyter_mlplat.profiles import default_profiles_dir, load_profiles
from jupyter_mlplat.profiles.model import NO_GPU
from jupyter_mlplat.profiles.render import gpu_node_labels
from jupyter_mlplat.serving import kube_api
from jupyter_mlplat.serving.kubernetes import (
    NAME_MAX,
    check_canary,
    check_name,
    cpu_quantity,
    inference_service,
    memory_quantity,
    serving_runtime,
)
from tests.kube_standin import NOT_READY_MESSAGE, KubeStandIn

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = REPO_ROOT.parent / "shared" / "schemas"
ISVC_SCHEMA = SCHEMAS / "kserve-inferenceservice-v1beta1.schema.json"
RUNTIME_SCHEMA = SCHEMAS / "kserve-servingruntime-v1alpha1.schema.json"
PROFILES = load_profiles(default_profiles_dir())
DIGEST = "sha256:" + "ab" * 32
RUN_ID = "0123456789abcdef0123456789abcdef"
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?\Z")
LABEL_KEY = re.compile(r"([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?\Z")
SWEEP = [
    (profile.slug, choice, canary)
    for profile in PROFILES.profiles
    for choice in ([c.key for c in profile.gpu_options()] or [NO_GPU])
    for canary in (None, 1, 50, 99)
]


def build(slug="fraud-cpu", gpu=None, canary=None, **overrides):
    args = dict(
        name="fraud-model",
        storage_uri=f"s3://mlplat/frozen/sha256/{DIGEST[7:]}/model",
        profile=PROFILES.get(slug),
        model="fraud-model",
        version="3",
        approval_id=17,
        run_id=RUN_ID,
        digest=DIGEST,
        target="staging",
        gpu=gpu,
        canary_percent=canary,
        gpu_node_labels=gpu_node_labels(PROFILES),
    )
    return inference_service(**(args | overrides))


def load_schema(path: Path) -> dict:
    if not path.is_file():
        pytest.skip(f"{path} is absent (a clone without ../shared): no KServe schema to check")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def isvc_validator():
    schema = load_schema(ISVC_SCHEMA)
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="module")
def runtime_validator():
    schema = load_schema(RUNTIME_SCHEMA)
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def undeclared_fields(value, schema, where="") -> list[str]:
    """Keys the CRD does not declare: its schema allows unknown fields, the API prunes them."""
    found = []
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            if key not in schema["properties"]:
                found.append(f"{where}.{key}")
            else:
                found += undeclared_fields(item, schema["properties"][key], f"{where}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found += undeclared_fields(item, schema["items"], f"{where}[{i}]")
    return found


def assert_metadata_valid(manifest):
    meta = manifest["metadata"]
    for key, value in meta.get("labels", {}).items():
        assert LABEL_KEY.match(key) and LABEL_VALUE.match(value) and len(value) <= 63, key
    for key in meta.get("annotations", {}):
        assert LABEL_KEY.match(key), key


# -- builders: every manifest they can produce validates ----------------------------------


@pytest.mark.parametrize(("slug", "gpu", "canary"), SWEEP)
def test_every_inference_service_validates(isvc_validator, slug, gpu, canary):
    manifest = build(slug, gpu, canary)
    isvc_validator.validate(manifest)
    assert undeclared_fields(manifest, isvc_validator.schema) == []
    assert_metadata_valid(manifest)
    profile = PROFILES.get(slug)
    predictor = manifest["spec"]["predictor"]
    model = predictor["model"]
    assert manifest["metadata"]["namespace"] == profile.namespace
    assert model["modelFormat"] == {"name": "mlflow"}
    assert model["protocolVersion"] == "v2" and model["runtime"] == "mlplat-mlserver"
    assert model["storageUri"].endswith(f"/frozen/sha256/{DIGEST[7:]}/model")
    assert model["resources"]["requests"]["memory"] == memory_quantity(profile.mem_guarantee)
    assert model["resources"]["limits"]["cpu"] == cpu_quantity(profile.cpu_limit)
    assert predictor.get("canaryTrafficPercent") == canary
    choice = next((c for c in profile.gpu_options() if c.key == gpu), None)
    if gpu == NO_GPU:
        assert "nvidia.com/gpu" not in model["resources"]["limits"]
        assert "tolerations" not in predictor and "nodeSelector" not in predictor
        assert predictor["affinity"]["nodeAffinity"]  # CPU pods stay off GPU nodes
    else:
        assert model["resources"]["limits"]["nvidia.com/gpu"] == str(choice.count)
        assert predictor["nodeSelector"] == choice.type.node_selector
        assert predictor["tolerations"] == [dict(t) for t in choice.type.tolerations]


def test_the_sweep_covers_gpu_choices_and_every_profile():
    assert {slug for slug, _, _ in SWEEP} == set(PROFILES.slugs)
    assert any(gpu.startswith("2x-") for _, gpu, _ in SWEEP)


def test_provenance_links_approval_version_run_and_digest():
    meta = build()["metadata"]
    assert meta["labels"] == {
        "app.kubernetes.io/managed-by": "jupyter-mlplat",
        "mlplat.io/approval-id": "17",
        "mlplat.io/model-version": "3",
        "mlplat.io/run-id": RUN_ID,
        "mlplat.io/model": "fraud-model",
        "mlplat.io/target": "staging",
    }
    assert meta["annotations"]["mlplat.io/frozen-digest"] == DIGEST
    assert meta["annotations"]["mlplat.io/profile"] == "fraud-cpu"


def test_a_model_name_that_is_no_label_value_stays_in_the_annotations():
    meta = build(model="Fraud Model (EU)")["metadata"]
    assert "mlplat.io/model" not in meta["labels"]
    assert meta["annotations"]["mlplat.io/model"] == "Fraud Model (EU)"


def test_the_default_gpu_choice_is_the_profiles():
    limits = build("vision-gpu")["spec"]["predictor"]["model"]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1"  # vision-gpu defaults to 1 GPU (a100)


def test_an_unknown_gpu_choice_is_a_usage_error():
    with pytest.raises(UsageError, match="has no GPU choice '1x-a100'; choose one of: none"):
        build("fraud-cpu", gpu="1x-a100")


@pytest.mark.parametrize("uri", ["", "/srv/frozen/model", "s3:/bucket"])
def test_a_storage_uri_that_is_no_uri_is_refused(uri):
    with pytest.raises(UsageError, match="is not a URI KServe can fetch"):
        build(storage_uri=uri)


def test_quantities_use_kubernetes_units():
    assert memory_quantity("8G") == "8Gi"  # binary, as JupyterHub reads the profile
    assert memory_quantity("1.5G") == "1536Mi"
    assert cpu_quantity(2) == "2" and cpu_quantity(0.5) == "500m"


def test_serving_runtime_validates_and_matches_kserve_mlserver(runtime_validator):
    manifest = serving_runtime(
        image="registry.example/mlplat-mlserver:1.7.1-mlflow3", namespace="mlplat-fraud",
        mlflow_version="3.1.0",
    )  # fmt: skip
    runtime_validator.validate(manifest)
    assert undeclared_fields(manifest, runtime_validator.schema) == []
    assert_metadata_valid(manifest)
    spec = manifest["spec"]
    assert spec["supportedModelFormats"] == [{"name": "mlflow", "autoSelect": True, "priority": 1}]
    assert spec["protocolVersions"] == ["v2"]
    env = {e["name"]: e["value"] for e in spec["containers"][0]["env"]}
    assert env == {
        "MLSERVER_MODEL_IMPLEMENTATION": "mlserver_mlflow.MLflowRuntime",
        "MLSERVER_HTTP_PORT": "8080",
        "MLSERVER_GRPC_PORT": "9000",
        "MODELS_DIR": "/mnt/models",
    }
    # KServe sets MLSERVER_MODEL_NAME/URI only for runtimes of this server type.
    assert manifest["metadata"]["annotations"]["serving.kserve.io/server-type"] == "mlserver"


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["Fraud-model", "fraud_model", "3fraud", "-fraud", "fraud-", "", "fraud.model"],
)
def test_names_that_are_not_dns_1035_are_refused(name):
    with pytest.raises(UsageError) as caught:
        check_name(name)
    message = str(caught.value)
    assert f"Deployment name {name!r} is not a DNS-1035 label" in message
    assert message.endswith("Use a name such as 'fraud-model-v3'.")


def test_names_longer_than_kserve_can_derive_from_are_refused():
    assert check_name("a" * NAME_MAX) == "a" * NAME_MAX
    with pytest.raises(UsageError, match=f"has {NAME_MAX + 1} characters; .* at most {NAME_MAX}"):
        check_name("a" * (NAME_MAX + 1))
    with pytest.raises(
        UsageError, match="has 64 characters; .* Use a name such as 'fraud-model-v3'."
    ):
        check_name("a" * 64)  # beyond DNS-1035's own 63 too


def test_a_name_too_long_for_its_namespace_is_refused():
    namespace = "mlplat-" + "x" * 30  # "-predictor-" + 37 leaves 15 characters
    assert check_name("a" * 15, namespace)
    with pytest.raises(UsageError, match="at most 15 characters. Use a name such as"):
        check_name("a" * 16, namespace)
    with pytest.raises(UsageError, match="not a DNS-1035 label"):
        build(name="Fraud")


@pytest.mark.parametrize("percent", [0, 100, -1, 50.5, True, "10"])
def test_canary_outside_1_to_99_is_refused(percent):
    with pytest.raises(UsageError, match=r"is not a whole percentage from 1 to 99; use e\.g\."):
        check_canary(percent)
    with pytest.raises(UsageError, match="from 1 to 99"):
        build(canary=percent)


# -- API calls, against the local HTTP stand-in of the Kubernetes API -----------------------


@pytest.fixture
def standin():
    with KubeStandIn(ready_after=3) as api:
        yield api


def client_for(api: KubeStandIn, token: str | None = None):
    return kube_api.connect(api.url, token or api.token, verify=False)


def test_apply_creates_then_updates_by_server_side_apply(standin):
    with client_for(standin) as client:
        created = kube_api.apply(client, build())
        assert created["metadata"]["generation"] == 1
        canary = kube_api.apply(client, build(version="4", canary=10))
        assert canary["metadata"]["uid"] == created["metadata"]["uid"]
        assert canary["metadata"]["generation"] == 2
        assert canary["spec"]["predictor"]["canaryTrafficPercent"] == 10
        assert canary["metadata"]["labels"]["mlplat.io/model-version"] == "4"
        # Promote: the applied manifest no longer sets the canary share, so it goes away.
        promoted = kube_api.apply(client, build(version="4"))
        assert "canaryTrafficPercent" not in promoted["spec"]["predictor"]
    patches = [r for r in standin.requests if r[0] == "PATCH"]
    assert len(patches) == 3
    assert all(ct == "application/apply-patch+yaml" for _, _, ct in patches)
    assert all("fieldManager=jupyter-mlplat" in path and "force=true" in path
               for _, path, _ in patches)  # fmt: skip


def test_apply_serving_runtime(standin):
    runtime = serving_runtime(image="registry.example/mlserver:mlflow3", namespace="mlplat-fraud")
    with client_for(standin) as client:
        applied = kube_api.apply(client, runtime)
    assert applied["kind"] == "ServingRuntime"
    assert ("servingruntimes", "mlplat-fraud", "mlplat-mlserver") in standin.objects


def test_wait_ready_returns_the_ready_object(standin):
    with client_for(standin) as client:
        kube_api.apply(client, build())
        ready = kube_api.wait_ready(
            client, "mlplat-fraud", "fraud-model", timeout=10, interval=0.01
        )
    assert kube_api.is_ready(ready)
    assert ready["status"]["observedGeneration"] == 1
    assert standin.reads[("inferenceservices", "mlplat-fraud", "fraud-model")] == 3


def test_a_ready_left_from_the_previous_generation_does_not_count(standin):
    with client_for(standin) as client:
        kube_api.apply(client, build())
        kube_api.wait_ready(client, "mlplat-fraud", "fraud-model", timeout=10, interval=0.01)
        kube_api.apply(client, build(version="4", canary=10))
        obj = kube_api.get_inference_service(client, "mlplat-fraud", "fraud-model")
        obj["status"] = {"conditions": [{"type": "Ready", "status": "True"}],
                         "observedGeneration": 1}  # fmt: skip
        assert not kube_api.is_ready(obj)


def test_wait_ready_times_out_naming_the_object_and_its_condition():
    with KubeStandIn(ready_after=None) as api, client_for(api) as client:
        kube_api.apply(client, build())
        with pytest.raises(ServiceUnavailable) as caught:
            kube_api.wait_ready(client, "mlplat-fraud", "fraud-model", timeout=0.2, interval=0.02)
    assert str(caught.value) == (
        "InferenceService mlplat-fraud/fraud-model was not Ready after 0.2 s; "
        f"last condition: Ready=Unknown: {NOT_READY_MESSAGE}."
    )


def test_a_rejected_platform_token_is_a_503_naming_the_api(standin):
    with client_for(standin, token="wrong") as client, pytest.raises(ServiceUnavailable) as caught:
        kube_api.apply(client, build())
    message = str(caught.value)
    assert f"The Kubernetes API at {standin.url} rejected the platform's token (401)" in message
    assert "apply InferenceService mlplat-fraud/fraud-model" in message
    assert standin.objects == {}


def test_delete_then_gone(standin):
    with client_for(standin) as client:
        kube_api.apply(client, build())
        assert kube_api.delete(client, build()) is True
        assert kube_api.delete(client, build()) is False  # already gone: nothing to do
        with pytest.raises(NotFoundError, match="read InferenceService mlplat-fraud/fraud-model"):
            kube_api.get_inference_service(client, "mlplat-fraud", "fraud-model")


def test_an_unreachable_api_is_unavailable():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    unreachable = f"http://127.0.0.1:{port}"
    with (
        kube_api.connect(unreachable, "t") as client,
        pytest.raises(ServiceUnavailable, match=f"at {unreachable} did not answer"),
    ):
        kube_api.apply(client, build())
