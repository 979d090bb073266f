"""helm/mlplat rendered by Helm's own engine (helm-python-sdk), no cluster.

The z2jh dependency cannot be fetched offline, so only our templates render; our
`jupyterhub:` values are checked against z2jh's own schema instead (merged over its
defaults, from ../shared/schemas). Core objects are validated with kubernetes-validate
(strict), InferenceService/ServingRuntime with KServe's CRD schemas.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml
from traitlets.config import Config

from jupyter_mlplat.errors import UsageError
from jupyter_mlplat.hub.config import MLFLOW_SERVICE, SERVICE_NAME
from jupyter_mlplat.profiles import load_profiles
from jupyter_mlplat.profiles.render import merge_values
from jupyter_mlplat.serving.kubernetes import serving_runtime
from jupyter_mlplat.settings import MlplatSettings, reset_settings
from tests.conftest import REPO_ROOT
from tests.test_kubespawner import kubeconfig  # noqa: F401 (fixture: a throwaway kubeconfig)

CHART = REPO_ROOT / "helm" / "mlplat"
EXAMPLE = CHART / "examples" / "multi-team-values.yaml"
SCHEMAS = REPO_ROOT.parent / "shared" / "schemas"
K8S_VERSION = "1.31"
RELEASE_NS = "jhub"
CRD_SCHEMAS = {
    "ServingRuntime": "kserve-servingruntime-v1alpha1.schema.json",
    "InferenceService": "kserve-inferenceservice-v1beta1.schema.json",
}
# Prometheus Operator's CRD: no schema of it is on this machine; its fields are checked as data.
NO_SCHEMA_HERE = {"ServiceMonitor"}
TEAM = {
    "name": "churn",
    "quota": {"cpu": "4", "memory": "8Gi", "gpus": 1, "persistentVolumeClaims": 2, "storage": "10Gi"},
    "limits": {"defaultCpu": "1", "defaultMemory": "1Gi", "maxCpu": "2", "maxMemory": "4Gi"},
}  # fmt: skip


def example_values() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def chart_values() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def render(values: dict | None = None) -> list[dict]:
    """Every object the chart renders for ``values`` (over values.yaml), z2jh disabled."""
    values = merge_values(values or {}, {"jupyterhub": {"enabled": False}})
    with helm.Chart.load(str(CHART)) as chart:
        files = chart.render(values, name="mlplat", namespace=RELEASE_NS)
    objects = []
    for name, text in files.items():
        if name.endswith(".yaml"):
            objects += [doc for doc in yaml.safe_load_all(text) if doc]
    return objects


def render_error(values: dict) -> str:
    with pytest.raises(helm.HelmError) as caught, helm.Chart.load(str(CHART)) as chart:
        chart.render(values, name="mlplat", namespace=RELEASE_NS)
    return str(caught.value)


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict], kind: str, name: str, namespace: str | None = None) -> dict:
    found = [
        o
        for o in objects
        if o["kind"] == kind
        and o["metadata"]["name"] == name
        and (namespace is None or o["metadata"].get("namespace") == namespace)
    ]
    assert len(found) == 1, (kind, name, namespace, len(found))
    return found[0]


@pytest.fixture(scope="module")
def crd_validators():
    if not SCHEMAS.is_dir():
        pytest.skip(f"{SCHEMAS} is absent (a clone without ../shared): no KServe schema to check")
    validators = {}
    for kind, file in CRD_SCHEMAS.items():
        schema = json.loads((SCHEMAS / file).read_text())
        jsonschema.Draft7Validator.check_schema(schema)
        validators[kind] = jsonschema.Draft7Validator(schema)
    return validators


@pytest.fixture(scope="module")
def z2jh():
    if not SCHEMAS.is_dir():
        pytest.skip(f"{SCHEMAS} is absent (a clone without ../shared): no z2jh schema to check")
    defaults = yaml.safe_load((SCHEMAS / "z2jh-values.default.yaml").read_text())
    schema = yaml.safe_load((SCHEMAS / "z2jh-values.schema.yaml").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return defaults, jsonschema.Draft7Validator(schema)


# -- every rendered object validates -------------------------------------------------------


@pytest.mark.parametrize("values_name", ["default", "multi-team example"])
def test_every_rendered_object_validates(values_name, crd_validators):
    values = {} if values_name == "default" else example_values()
    objects = render(values)
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "ServiceAccount", "Namespace", "ResourceQuota"} <= kinds
    assert {"LimitRange", "NetworkPolicy", "Role", "RoleBinding", "ServingRuntime"} <= kinds
    assert "ClusterRole" not in kinds and "ClusterRoleBinding" not in kinds
    for obj in objects:
        where = f"{obj['kind']} {obj['metadata'].get('namespace', RELEASE_NS)}/{obj['metadata']['name']}"
        if obj["kind"] in crd_validators:
            errors = [e.message for e in crd_validators[obj["kind"]].iter_errors(obj["spec"])]
            assert errors == [], where
        elif obj["kind"] in NO_SCHEMA_HERE:
            assert values_name != "default", f"{where} is rendered with its feature off"
        else:
            assert kubernetes_validate.validate(obj, K8S_VERSION, strict=True) == K8S_VERSION, where


def test_the_example_turns_on_monitoring_and_its_objects_are_sound():
    objects = render(example_values())
    monitor = one(objects, "ServiceMonitor", "mlplat-platform")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/services/mlplat/metrics" and endpoint["port"] == "http"
    assert endpoint["authorization"]["credentials"] == {
        "name": "mlplat-metrics-token",
        "key": "token",
    }
    service = one(objects, "Service", "mlplat-platform")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["spec"]["selector"].items()
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"

    dashboard = one(objects, "ConfigMap", "mlplat-grafana-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = json.loads(dashboard["data"]["mlplat.json"])
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p["targets"])
    for metric in (
        "mlplat_job_runs", "mlplat_approval_requests", "mlplat_deployments",
        "mlplat_service_request_duration_seconds_bucket", "mlplat_service_requests_total",
    ):  # fmt: skip
        assert metric in exprs, metric
    # Off by default: no CRD the cluster may lack.
    assert by_kind(render(), "ServiceMonitor") == []


def test_the_dashboard_only_charts_metrics_the_platform_exports():
    from jupyter_mlplat.service.metrics import ServiceMetrics

    board = json.loads((CHART / "dashboards" / "mlplat.json").read_text())
    from jupyter_mlplat.store.counts import StateCounts

    exported = ServiceMetrics(lambda: StateCounts()).render()[0].decode()
    families = {line.split()[2] for line in exported.splitlines() if line.startswith("# TYPE")}
    for panel in board["panels"]:
        for target in panel["targets"]:
            names = {w for w in _metric_names(target["expr"]) if w.startswith("mlplat_")}
            assert names, target["expr"]
            for name in names:
                base = name.removesuffix("_bucket")
                assert base in families or base.removesuffix("_total") in families, (
                    f"{panel['title']}: {name} is not exported"
                )


def _metric_names(expr: str) -> set[str]:
    import re

    return set(re.findall(r"[a-z_][a-z0-9_]*", expr))


# -- what the objects say -------------------------------------------------------------------


def test_each_team_gets_a_restricted_namespace_quota_limits_and_no_cluster_rights():
    objects = render(example_values())
    for team in example_values()["teams"]:
        ns = team["namespace"]
        namespace = one(objects, "Namespace", ns)
        labels = namespace["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        assert labels["mlplat.io/team"] == team["name"]
        quota = one(objects, "ResourceQuota", "mlplat-team-quota", ns)["spec"]["hard"]
        assert quota["requests.nvidia.com/gpu"] == str(team["quota"]["gpus"])
        assert quota["requests.cpu"] == team["quota"]["cpu"]
        assert quota["persistentvolumeclaims"] == str(team["quota"]["persistentVolumeClaims"])
        limits = one(objects, "LimitRange", "mlplat-team-limits", ns)["spec"]["limits"][0]
        assert limits["max"]["memory"] == team["limits"]["maxMemory"]
        role = one(objects, "Role", "mlplat-platform", ns)
        granted = {
            (g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
        }
        assert {
            ("serving.kserve.io", "inferenceservices"),
            ("batch", "jobs"),
            ("batch", "cronjobs"),
        } <= granted
        assert not any("*" in rule["verbs"] or "*" in rule["resources"] for rule in role["rules"])
        assert ("", "secrets") not in granted  # the platform reads no team secret
        binding = one(objects, "RoleBinding", "mlplat-platform", ns)
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "mlplat-platform", "namespace": RELEASE_NS}
        ]
        assert binding["roleRef"]["kind"] == "Role"


def test_team_networking_is_default_deny_and_mlflow_only_answers_the_platform_and_proxy():
    objects = render(example_values())
    policies = by_kind(objects, "NetworkPolicy")
    deny = one(objects, "NetworkPolicy", "default-deny", "mlplat-churn")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    # Nothing in a team namespace may reach MLflow's pods: only the proxy and the hub.
    for policy in policies:
        if policy["metadata"].get("namespace") != "mlplat-churn":
            continue
        for rule in policy["spec"].get("egress", []):
            for peer in rule.get("to", []):
                selector = peer.get("podSelector", {}).get("matchLabels", {})
                assert selector.get("app.kubernetes.io/component") != "mlflow", policy
                if "namespaceSelector" in peer and "podSelector" in peer:
                    assert selector.get("component") in ("proxy", "hub"), policy
    mlflow = one(objects, "NetworkPolicy", "mlplat-mlflow")["spec"]
    (rule,) = mlflow["ingress"]
    sources = [peer["podSelector"]["matchLabels"] for peer in rule["from"]]
    assert all("namespaceSelector" not in peer for peer in rule["from"])  # same namespace only
    assert {"app.kubernetes.io/component": "platform"}.items() <= sources[0].items()
    assert sources[1] == {"app": "jupyterhub", "component": "proxy"}
    storage = one(objects, "NetworkPolicy", "allow-object-storage-egress", "mlplat-vision")
    assert storage["spec"]["egress"][0]["to"] == [{"ipBlock": {"cidr": "10.40.0.0/16"}}]


def test_credentials_only_come_from_secrets():
    objects = render(example_values())
    for obj in by_kind(objects, "Deployment"):
        for container in obj["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                if any(w in env["name"] for w in ("TOKEN", "PASSWORD", "SECRET", "URI", "URL")):
                    if "value" in env:
                        assert "://" not in env["value"] or "@" not in env["value"], env
                        assert env["name"] in {
                            "JUPYTERHUB_API_URL", "JUPYTERHUB_SERVICE_URL", "MLPLAT_TRACKING_URI",
                            "MLPLAT_TRACKING_UI_URL", "MLFLOW_S3_ENDPOINT_URL",
                        }, env  # fmt: skip
                    else:
                        assert env["valueFrom"]["secretKeyRef"]["name"] == "mlplat-secrets", env
    for obj in by_kind(objects, "ConfigMap"):
        text = json.dumps(obj["data"])
        assert "PASSWORD" not in text.upper().replace("MLFLOW-ADMIN-PASSWORD", "")
        assert "postgresql" not in text
    assert by_kind(objects, "Secret") == []


def test_the_platform_config_carries_the_settings_as_python():
    objects = render(example_values())
    config = one(objects, "ConfigMap", "mlplat-platform-config")["data"]["mlplat_config.py"]
    c = Config()
    exec(compile(config, "mlplat_config.py", "exec"), {"c": c})  # noqa: S102 - our own render
    settings = MlplatSettings(config=c)
    assert settings.mode == "kubernetes"
    assert settings.serving_storage_uri == "s3://ml-models/frozen"
    assert settings.serving_runtime_image == "registry.corp.example/mlplat/serving:0.1.0"
    assert settings.approval_metric == "roc_auc"
    assert settings.approval_min_improvement == 0.002
    assert settings.staging_auto_approval is True
    assert settings.high_risk_models == ["fraud-scorer"]


def test_the_chart_serving_runtime_is_the_one_the_platform_builds():
    objects = render(example_values())
    chart = one(objects, "ServingRuntime", "mlplat-mlserver", "mlplat-fraud")
    built = serving_runtime(
        image="registry.corp.example/mlplat/serving:0.1.0", namespace="mlplat-fraud",
        mlflow_version=chart_values()["servingRuntime"]["mlflowVersion"],
    )  # fmt: skip
    assert chart["metadata"]["annotations"] == built["metadata"]["annotations"]
    assert chart["spec"] == built["spec"]


def test_the_images_the_chart_names_have_dockerfiles_that_agree_with_it():
    import re

    import mlflow

    docker = REPO_ROOT / "docker"
    for image in ("hub", "singleuser", "platform", "serving"):
        text = (docker / image / "Dockerfile").read_text()
        assert re.search(r"^FROM \S+", text, re.M), image
        users = re.findall(r"^USER (\S+)$", text, re.M)
        assert users and users[-1] in ("1000", "${NB_UID}"), image  # the image never runs as root
    values = chart_values()
    names = {values["images"][k]["repository"].rsplit("/", 1)[1] for k in values["images"]}
    names |= {
        values["jupyterhub"][k]["image"]["name"].rsplit("/", 1)[1] for k in ("hub", "singleuser")
    }
    assert names == {"hub", "singleuser", "platform", "serving"}
    serving = (docker / "serving" / "Dockerfile").read_text()
    pinned = re.search(r"^ARG MLFLOW_VERSION=(\S+)$", serving, re.M).group(1)
    assert pinned == values["servingRuntime"]["mlflowVersion"]
    # The serving image must load what this mlflow logs: the same major version at least.
    assert pinned.split(".")[0] == mlflow.__version__.split(".")[0]


def test_pods_meet_pod_security_restricted():
    objects = render(example_values())
    pods = [
        (o["metadata"]["name"], o["spec"]["template"]["spec"])
        for o in by_kind(objects, "Deployment")
    ]
    for name, spec in pods:
        assert_restricted(name, spec)
    for runtime in by_kind(objects, "ServingRuntime"):
        for container in runtime["spec"]["containers"]:
            assert_restricted_container(runtime["metadata"]["name"], container, pod_seccomp=False)


def assert_restricted(name: str, spec: dict) -> None:
    """The checks of Pod Security Admission's "restricted" profile that a spec can fail."""
    pod = spec.get("securityContext", {})
    assert pod.get("runAsNonRoot") is True, name
    assert pod.get("seccompProfile", {}).get("type") in ("RuntimeDefault", "Localhost"), name
    assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC")
    for volume in spec.get("volumes", []):
        assert set(volume) - {"name"} <= {
            "configMap", "emptyDir", "persistentVolumeClaim", "secret", "projected",
            "downwardAPI", "csi", "ephemeral",
        }, (name, volume)  # fmt: skip
    for container in spec.get("initContainers", []) + spec["containers"]:
        assert_restricted_container(name, container, pod_seccomp=True)


def assert_restricted_container(name: str, container: dict, *, pod_seccomp: bool) -> None:
    ctx = container.get("securityContext", {})
    assert ctx.get("allowPrivilegeEscalation") is False, name
    assert ctx.get("capabilities", {}).get("drop") == ["ALL"], name
    assert not ctx.get("capabilities", {}).get("add"), name
    assert not ctx.get("privileged"), name
    if not pod_seccomp:
        assert ctx.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
    assert all("hostPort" not in p for p in container.get("ports", [])), name


# -- values: the schema refuses bad ones with a message naming the field --------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"quota": {**TEAM["quota"], "gpus": -1}},
            "at '/teams/0/quota/gpus': minimum: got -1, want 0",
        ),
        ({"owner": "ana"}, "at '/teams/0': additional properties 'owner' not allowed"),
        ({"name": "Churn_Team"}, "at '/teams/0/name': 'Churn_Team' does not match pattern"),
        ({"namespace": "x" * 64}, "at '/teams/0/namespace'"),
        ({"quota": {**TEAM["quota"], "cpu": "lots"}}, "at '/teams/0/quota/cpu'"),
    ],
)
def test_bad_team_values_are_refused_by_the_schema(change, message):
    values = {"teams": [{**TEAM, **change}]}
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmValuesError) as caught:
        chart.validate_schema(values)
    assert message in str(caught.value)
    # Rendering (what `helm install` does) refuses them too, before any object is made.
    assert message in render_error(values)


def test_other_bad_values_are_refused():
    assert "at '/platform/replicas': maximum: got 2, want 1" in render_error(
        {"platform": {"replicas": 2}}
    )
    assert "additional properties 'imagez' not allowed" in render_error({"imagez": {}})
    # A misspelt platform setting would be ignored by the platform: the schema refuses it.
    error = render_error({"platform": {"settings": {"jobs_max_runtime_seconds": 7200}}})
    assert "invalid propertyName 'jobs_max_runtime_seconds'" in error
    assert "value must be one of 'admin_group'," in error and "'jobs_timeout_seconds'" in error
    assert "at '/metrics/serviceMonitor/interval'" in render_error(
        {"metrics": {"serviceMonitor": {"interval": "often"}}}
    )


def test_a_profile_namespace_without_a_team_is_refused():
    values = {"teams": [TEAM]}  # z2jh on: the profiles also spawn into mlplat-fraud, ...
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmError) as caught:
        chart.render(values, name="mlplat", namespace=RELEASE_NS)
    assert "The profiles spawn servers into namespace mlplat-fraud, which no entry of teams" in str(
        caught.value
    )


def test_hub_urls_that_miss_the_services_are_refused():
    values = {"fullnameOverride": "ml"}
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmError) as caught:
        chart.render(values, name="mlplat", namespace=RELEASE_NS)
    assert 'platform_url is "http://mlplat-platform:8080" but the platform\'s Service is' in str(
        caught.value
    )
    assert "http://ml-platform:8080" in str(caught.value)


# -- lint -----------------------------------------------------------------------------------


def test_lint(tmp_path):
    found = helm.lint(str(CHART))
    # The only finding: the z2jh package is not in charts/ (it cannot be fetched here).
    assert found["errors"] == []
    worse_than_info = [m for m in found["messages"] if m["severity"] > 1]
    assert [m["error"] for m in worse_than_info] == [
        "chart directory is missing these dependencies: jupyterhub"
    ]
    # Our own templates, strictly: a copy without the dependency, with the example values.
    copy_dir = tmp_path / "mlplat"
    shutil.copytree(CHART, copy_dir)
    chart_yaml = yaml.safe_load((copy_dir / "Chart.yaml").read_text())
    chart_yaml.pop("dependencies")
    (copy_dir / "Chart.yaml").write_text(yaml.safe_dump(chart_yaml))
    values = merge_values(example_values(), {"jupyterhub": {"enabled": False}})
    strict = helm.lint(str(copy_dir), values, strict=True)
    assert strict["errors"] == [], strict
    assert [m for m in strict["messages"] if m["severity"] > 1] == [], strict


# -- the jupyterhub: values -----------------------------------------------------------------


@pytest.mark.parametrize("values_name", ["default", "multi-team example"])
def test_jupyterhub_values_meet_the_z2jh_schema(values_name, z2jh):
    defaults, validator = z2jh
    ours = chart_values()["jupyterhub"]
    if values_name != "default":
        ours = merge_values(ours, example_values()["jupyterhub"])
    merged = merge_values(defaults, ours)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(merged)]
    assert errors == []


def test_a_z2jh_value_error_is_caught(z2jh):
    defaults, validator = z2jh
    bad = merge_values(
        defaults, merge_values(chart_values()["jupyterhub"], {"cull": {"every": "x"}})
    )
    assert any(list(e.absolute_path) == ["cull", "every"] for e in validator.iter_errors(bad))


def test_the_generated_values_are_current():
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "chart_values.py"), "--check"],
        capture_output=True, text=True, cwd=REPO_ROOT,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    values = chart_values()["jupyterhub"]
    profiles = load_profiles(REPO_ROOT / "spawner_profiles")
    assert [p["slug"] for p in values["singleuser"]["profileList"]] == [
        p.slug for p in profiles.profiles if not p.shared
    ] + [p.slug for p in profiles.profiles if p.shared]
    governed = {t["namespace"] for t in chart_values()["teams"]}
    assert set(values["custom"]["mlplat"]["namespaces"]) <= governed


# -- the hub's extraConfig, run as z2jh runs it ---------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_settings():
    yield
    reset_settings()


def run_extra_config(values: dict, monkeypatch, c: Config | None = None) -> Config:
    """Each hub.extraConfig snippet exec'd in key order over ``c``, as z2jh's hub does."""
    c = c or Config()
    jh = values["jupyterhub"]

    def get_config(key, default=None):
        node = jh
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    # What z2jh's own jupyterhub_config.py has set by then: its culler and our services.
    c.JupyterHub.services = [
        {"name": "jupyterhub-idle-culler", "api_token": "z2jh-made"},
        *({"name": n, "api_token": "z2jh-made", **s} for n, s in jh["hub"]["services"].items()),
    ]
    c.JupyterHub.load_roles = [{"name": "jupyterhub-idle-culler", "services": ["culler"]}]
    c.KubeSpawner.profile_list = jh["singleuser"]["profileList"]
    c.KubeSpawner.environment = {"EXISTING": "1"}
    c.merge(Config(jh["hub"]["config"]))  # hub.config, merged as z2jh does
    monkeypatch.setenv("POD_NAMESPACE", RELEASE_NS)
    reset_settings()  # the tokens come from the environment, as in the hub pod
    for key in sorted(jh["hub"]["extraConfig"]):
        code = jh["hub"]["extraConfig"][key]
        exec(compile(code, key, "exec"), {"c": c, "get_config": get_config})  # noqa: S102
    return c


def test_the_hub_extra_config_registers_the_platform_with_the_secret_tokens(monkeypatch):
    monkeypatch.setenv("MLPLAT_SERVICE_TOKEN", "platform-secret")
    monkeypatch.setenv("MLPLAT_MLFLOW_SERVICE_TOKEN", "mlflow-secret")
    c = run_extra_config(chart_values(), monkeypatch)
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert services[SERVICE_NAME]["api_token"] == "platform-secret"
    assert services[SERVICE_NAME]["url"] == "http://mlplat-platform:8080"
    assert services[MLFLOW_SERVICE]["api_token"] == "mlflow-secret"
    assert services[MLFLOW_SERVICE]["oauth_no_confirm"] is True
    assert services["jupyterhub-idle-culler"]["api_token"] == "z2jh-made"  # the culler is kept
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert "jupyterhub-idle-culler" in roles
    assert "tokens" in roles["mlplat-service"]["scopes"]
    assert f"access:services!service={SERVICE_NAME}" in roles["user"]["scopes"]
    env = c.KubeSpawner.environment
    assert env["EXISTING"] == "1"
    proxy = f"http://proxy-public.{RELEASE_NS}.svc.cluster.local"
    assert env["MLPLAT_SERVICE_URL"] == f"{proxy}/services/mlplat"
    assert env["MLFLOW_TRACKING_URI"] == f"{proxy}/services/mlflow"
    assert callable(env["MLFLOW_TRACKING_TOKEN"])  # the server's own token, per user
    assert c.JupyterHub.authenticator_class == "generic-oauth"
    assert c.GenericOAuthenticator.manage_groups is True
    assert "team-churn" in c.GenericOAuthenticator.allowed_groups
    assert "mlplat-reviewers" in c.GenericOAuthenticator.allowed_groups
    # The profile filter ran too: a churn member sees churn's and the shared profiles.
    spawner = type(
        "S", (), {"user": type("U", (), {"groups": [type("G", (), {"name": "team-churn"})]})}
    )
    slugs = [p["slug"] for p in c.KubeSpawner.profile_list(spawner)]
    assert slugs == ["churn-cpu", "churn-gpu", "shared-cpu"]


def test_a_hub_without_the_secret_tokens_refuses_to_start(monkeypatch):
    monkeypatch.delenv("MLPLAT_SERVICE_TOKEN", raising=False)
    monkeypatch.setenv("MLPLAT_MLFLOW_SERVICE_TOKEN", "mlflow-secret")
    with pytest.raises(UsageError, match="The hub has no MLPLAT_SERVICE_TOKEN"):
        run_extra_config(chart_values(), monkeypatch)


async def test_users_pods_from_the_chart_values_meet_pod_security_restricted():
    """What KubeSpawner makes from our z2jh values (singleuser.* as z2jh maps them onto
    KubeSpawner, plus hub.config.KubeSpawner), for every profile and GPU choice."""
    from tests.test_kubespawner import CASES, make_spawner, pod_for

    jh = chart_values()["jupyterhub"]
    single = jh["singleuser"]
    knobs = {
        # z2jh's own mapping of these singleuser values (its jupyterhub_config.py).
        "uid": 1000, "fs_gid": 100, "allow_privilege_escalation": False,
        "extra_pod_config": single["extraPodConfig"],
        "profile_list": single["profileList"],
        **{k: v for k, v in jh["hub"]["config"]["KubeSpawner"].items()},
    }  # fmt: skip
    assert single["cloudMetadata"]["blockWithIptables"] is False  # no privileged init container
    for slug, choice in CASES:
        spawner = make_spawner(**knobs)
        options = {"profile": slug} | ({"gpu": choice} if choice else {})
        pod = await pod_for(spawner, options)
        assert_restricted(f"{slug}/{choice}", pod["spec"])
        namespace = pod["metadata"]["namespace"]
        assert namespace in {t["namespace"] for t in chart_values()["teams"]}, slug


def test_notes_tell_the_operator_to_create_every_secret_key_the_pods_read():
    values = example_values()
    with helm.Chart.load(str(CHART)) as chart:
        files = chart.render(values, name="mlplat", namespace=RELEASE_NS)
    notes = files["mlplat/templates/NOTES.txt"]
    assert f"kubectl -n {RELEASE_NS} create secret generic mlplat-secrets" in notes
    read = set()
    for obj in by_kind(render(values), "Deployment"):
        for container in obj["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["name"] == "mlplat-secrets":
                    read.add(ref["key"])
    hub_env = chart_values()["jupyterhub"]["hub"]["extraEnv"].values()
    read |= {e["valueFrom"]["secretKeyRef"]["key"] for e in hub_env}
    assert len(read) == 8
    for key in read:
        assert f"--from-literal={key}=" in notes, key
    groups = "team-churn, team-fraud, team-vision, mlplat-reviewers, mlplat-admins"
    assert f"its\n   values are these hub groups: {groups}." in notes
    assert "mlplat-metrics-token" in notes  # the example turns the ServiceMonitor on
    assert chart_values()["jupyterhub"]["cull"]["enabled"] is True  # the idle culler is on
