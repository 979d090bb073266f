"""Our rendered profiles through the real KubeSpawner 7.x, pods validated with kubernetes-validate.

No cluster: KubeSpawner(_mock=True) with a throwaway kubeconfig builds the pod manifest the
way it would before creating it. Helm values are validated against the Zero to JupyterHub
schema from ../shared/schemas when that folder exists.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.config import kube_config
from kubespawner import KubeSpawner
from traitlets.config import Config

from jupyter_mlplat.profiles import (
    helm_values,
    kubespawner_profile_list,
    kubespawner_profile_list_callable,
    load_profiles,
    parse_memory,
    resolve,
)
from jupyter_mlplat.profiles.render import (
    GPU_RESOURCE,
    HELM_FILTER_CONFIG_KEY,
    gpu_node_labels,
    merge_values,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = REPO_ROOT.parent / "shared" / "schemas"
K8S_VERSION = "1.31"  # kubernetes-validate 1.37 ships schemas for 1.25 ... 1.37
PROFILES = load_profiles(REPO_ROOT / "spawner_profiles")
ALL_GROUPS = [f"team-{t}" for t in PROFILES.teams]

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: nobody
  user: {token: not-a-real-token}
contexts:
- name: nowhere
  context: {cluster: nowhere, user: nobody, namespace: default}
current-context: nowhere
"""

# Every profile x every GPU choice, plus "no gpu option given" (the choice marked default).
CASES = [(p.slug, choice) for p in PROFILES.profiles for choice in [None, *p.gpu_choices()]]


@pytest.fixture(autouse=True)
def kubeconfig(tmp_path, monkeypatch):
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(path))
    # kubernetes_asyncio reads $KUBECONFIG once, when it is imported: point it there too.
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # never in-cluster config
    return path


class MockUser(SimpleNamespace):
    """What KubeSpawner reads from a JupyterHub user, with groups like JupyterHub's ORM."""

    def __init__(self, name: str = "alice", groups=()):
        super().__init__(
            name=name, id=7, url=f"/user/{name}/", groups=[SimpleNamespace(name=g) for g in groups]
        )


def make_spawner(groups=ALL_GROUPS, **kwargs) -> KubeSpawner:
    """A KubeSpawner as kubespawner's own tests build it (no API calls are made)."""
    return KubeSpawner(_mock=True, user=MockUser(groups=groups), **kwargs)


async def pod_for(spawner: KubeSpawner, user_options: dict) -> dict:
    spawner.user_options = user_options
    await spawner.load_user_options()
    async with ApiClient() as api:
        pod = api.sanitize_for_serialization(await spawner.get_pod_manifest())
    # KubeSpawner passes the namespace to create_namespaced_pod; put it where kubectl would.
    pod["metadata"]["namespace"] = spawner.namespace
    return pod


def strict_validate(manifest: dict) -> None:
    assert kubernetes_validate.validate(manifest, K8S_VERSION, strict=True) == K8S_VERSION


@pytest.mark.parametrize(("slug", "choice"), CASES)
async def test_every_profile_and_gpu_choice_makes_a_valid_pod(slug, choice):
    profile = PROFILES.get(slug)
    spawner = make_spawner(profile_list=kubespawner_profile_list(PROFILES))
    options = {"profile": slug} if choice is None else {"profile": slug, "gpu": choice}
    pod = await pod_for(spawner, options)
    strict_validate(pod)

    # The same request through our own validation (what a local spawner would get).
    resolved = resolve(PROFILES, slug, options, profile.audience if not profile.shared else [])
    container = pod["spec"]["containers"][0]
    assert pod["metadata"]["namespace"] == profile.namespace == spawner.namespace
    assert container["image"] == profile.image
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert profile.environment.items() <= env.items()
    assert "CUDA_VISIBLE_DEVICES" not in env  # the device plugin decides inside the pod
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    assert (limits["cpu"], requests["cpu"]) == (profile.cpu_limit, profile.cpu_guarantee)
    assert limits["memory"] == parse_memory(profile.mem_limit)
    assert requests["memory"] == parse_memory(profile.mem_guarantee)

    spec = pod["spec"]
    if resolved.gpu_count:
        assert limits[GPU_RESOURCE] == str(resolved.gpu_count)
        assert spec["nodeSelector"] == resolved.gpu_type.node_selector
        assert spec["tolerations"] == list(resolved.gpu_type.tolerations)
        assert "affinity" not in spec
    else:
        # No GPU: no GPU limit, no GPU toleration, and a required affinity away from GPU nodes.
        assert GPU_RESOURCE not in limits and GPU_RESOURCE not in requests
        assert not spec.get("nodeSelector") and not spec.get("tolerations")
        terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        expressions = terms["nodeSelectorTerms"][0]["matchExpressions"]
        assert {e["key"]: e["values"] for e in expressions if e["operator"] == "NotIn"} == (
            gpu_node_labels(PROFILES)
        )
    if choice is None:  # KubeSpawner's default choice is ours
        assert resolved.gpu_choice == profile.default_gpu_key


async def test_unlisted_gpu_choice_is_rejected_by_both():
    spawner = make_spawner(profile_list=kubespawner_profile_list(PROFILES))
    spawner.user_options = {"profile": "vision-gpu", "gpu": "8x-h100"}
    # KubeSpawner 7.1 does not check choice keys in _validate_user_options: a KeyError.
    with pytest.raises((KeyError, ValueError)):
        await spawner.load_user_options()
    with pytest.raises(Exception, match="'8x-h100' is not a GPU choice of profile 'vision-gpu'"):
        resolve(PROFILES, "vision-gpu", {"gpu": "8x-h100"}, ["team-vision"])


@pytest.mark.parametrize(
    ("groups", "visible"),
    [
        (["team-churn"], ["churn-cpu", "churn-gpu", "shared-cpu"]),
        (["team-vision", "mlplat-reviewers"], ["vision-gpu", "vision-cpu", "shared-cpu"]),
        ([], ["shared-cpu"]),
    ],
)
async def test_group_filtering_through_kubespawner(groups, visible):
    spawner = make_spawner(groups, profile_list=kubespawner_profile_list_callable(PROFILES))
    form = await spawner.options_form(spawner)  # the rendered spawn page for this user
    for profile in PROFILES.profiles:
        assert (f'value="{profile.slug}"' in form) == (profile.slug in visible), profile.slug

    # No profile asked: the user's default (their team's, else the first they may use).
    pod = await pod_for(spawner, {})
    assert pod["metadata"]["namespace"] == resolve(PROFILES, None, {}, groups).namespace

    for profile in PROFILES.profiles:
        spawner = make_spawner(groups, profile_list=kubespawner_profile_list_callable(PROFILES))
        if profile.slug in visible:
            strict_validate(await pod_for(spawner, {"profile": profile.slug}))
        else:
            with pytest.raises(ValueError, match=f"No such profile: {profile.slug}"):
                await pod_for(spawner, {"profile": profile.slug})


# -- Helm values ----------------------------------------------------------------------------


@pytest.fixture
def z2jh_values():
    if not SCHEMAS.is_dir():
        pytest.skip(f"{SCHEMAS} is absent (a clone without ../shared): no z2jh schema to check")
    defaults = yaml.safe_load((SCHEMAS / "z2jh-values.default.yaml").read_text())
    schema = yaml.safe_load((SCHEMAS / "z2jh-values.schema.yaml").read_text())
    values = merge_values(defaults, helm_values(PROFILES)["jupyterhub"])
    return values, schema


def test_helm_values_match_the_z2jh_schema(z2jh_values):
    values, schema = z2jh_values
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(values)
    assert values["singleuser"]["profileList"] == kubespawner_profile_list(PROFILES)
    assert values["custom"]["mlplat"]["profileGroups"]["shared-cpu"] == ["*"]
    # Round trip through YAML as Helm would see it.
    assert yaml.safe_load(yaml.safe_dump(values)) == values


def hub_config_from(values: dict) -> Config:
    """Run our hub.extraConfig the way z2jh's jupyterhub_config.py would."""

    def get_config(key, default=None):
        node = values
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    c = Config()
    c.KubeSpawner.profile_list = values["singleuser"]["profileList"]
    code = values["hub"]["extraConfig"][HELM_FILTER_CONFIG_KEY]
    exec(compile(code, HELM_FILTER_CONFIG_KEY, "exec"), {"c": c, "get_config": get_config})
    return c


async def test_helm_extra_config_filters_profiles_per_user(z2jh_values):
    values, _ = z2jh_values
    config = hub_config_from(values)
    spawner = KubeSpawner(_mock=True, config=config, user=MockUser(groups=["team-fraud"]))
    pod = await pod_for(spawner, {"profile": "fraud-highmem"})
    strict_validate(pod)
    assert pod["metadata"]["namespace"] == "mlplat-fraud"

    spawner = KubeSpawner(_mock=True, config=config, user=MockUser(groups=["team-fraud"]))
    with pytest.raises(ValueError, match="No such profile: vision-gpu"):
        await pod_for(spawner, {"profile": "vision-gpu", "gpu": "1x-t4"})

    # A member of two teams gets one default: the first team's.
    spawner = KubeSpawner(
        _mock=True, config=config, user=MockUser(groups=["team-vision", "team-churn"])
    )
    listed = spawner.profile_list(spawner)
    assert [p["slug"] for p in listed if p["default"]] == ["churn-cpu"]
    assert [p["slug"] for p in listed] == [
        p["slug"] for p in kubespawner_profile_list(PROFILES, ["team-vision", "team-churn"])
    ]
    pod = await pod_for(spawner, {})
    assert pod["metadata"]["namespace"] == "mlplat-churn"
