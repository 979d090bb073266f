"""Team profiles: shipped files valid, broken files rejected by name, per-user selection, CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
import yaml

from jupyter_mlplat.errors import PermissionDenied, UsageError
from jupyter_mlplat.profiles import (
    ProfileError,
    ProfileForbidden,
    SpawnRequestError,
    default_profiles_dir,
    kubespawner_profile_list,
    load_profiles,
    parse_memory,
    profiles_for_groups,
    resolve,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED = REPO_ROOT / "spawner_profiles"
TEAM_FILES = ("churn.yaml", "fraud.yaml", "vision.yaml", "shared.yaml")


@pytest.fixture(scope="module")
def profiles():
    return load_profiles(SHIPPED)


@pytest.fixture
def folder(tmp_path):
    """A writable copy of the shipped profiles folder (schema included)."""
    target = tmp_path / "profiles"
    shutil.copytree(SHIPPED, target)
    return target


# -- shipped files --------------------------------------------------------------------------


def test_shipped_profiles_are_valid(profiles):
    assert {p.name for p in profiles.files} == set(TEAM_FILES)
    assert profiles.slugs == [
        "churn-cpu", "churn-gpu", "fraud-cpu", "fraud-highmem",
        "shared-cpu", "vision-gpu", "vision-cpu",
    ]  # fmt: skip
    assert profiles.known_groups() == (
        "team-churn", "team-fraud", "team-vision", "mlplat-reviewers", "mlplat-admins",
    )  # fmt: skip
    gpu_profiles = [p.slug for p in profiles.profiles if p.gpu_max_count]
    assert gpu_profiles == ["churn-gpu", "vision-gpu"]
    vision = profiles.get("vision-gpu")
    assert [t.name for t in vision.gpu_types] == ["a100", "t4"]
    assert vision.gpu_max_count == 2 and vision.namespace == "mlplat-vision"
    shared = profiles.get("shared-cpu")
    assert shared.shared and shared.audience == ("*",) and shared.gpu_max_count == 0


@pytest.mark.parametrize("name", TEAM_FILES)
def test_shipped_files_match_the_json_schema(name):
    schema = json.loads((SHIPPED / "profile.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load((SHIPPED / name).read_text()))


def test_gpu_choices_encode_count_and_type(profiles):
    vision = profiles.get("vision-gpu")
    options = vision.gpu_options()
    assert [c.key for c in options] == ["none", "1x-a100", "2x-a100", "1x-t4", "2x-t4"]
    assert [(c.count, c.type and c.type.name) for c in options[:3]] == [
        (0, None), (1, "a100"), (2, "a100"),
    ]  # fmt: skip
    assert [c.key for c in options if c.default] == [vision.default_gpu_key] == ["1x-a100"]
    assert vision.gpu_choices()["2x-t4"] == "2 GPUs: NVIDIA T4 (16 GB)"
    assert profiles.get("churn-cpu").gpu_options() == []
    assert profiles.get("churn-cpu").gpu_choices() == {}


def test_memory_uses_jupyterhub_binary_units():
    assert parse_memory("2G") == 2 * 1024**3
    assert parse_memory("512M") == 512 * 1024**2
    assert parse_memory("1.5T") == int(1.5 * 1024**4)


# -- broken files ---------------------------------------------------------------------------


def _edit(name, change):
    """A case that loads ``name``, applies ``change(data)`` and writes it back."""

    def apply(folder):
        path = folder / name
        data = yaml.safe_load(path.read_text())
        change(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    return apply


def _write(name, text):
    return lambda folder: (folder / name).write_text(text)


def _profile(data, slug):
    return next(p for p in data["profiles"] if p["slug"] == slug)


def _gpu_type(data, slug, index):
    return _profile(data, slug)["gpu"]["types"][index]


def _set(slug, dotted_key, value):
    def change(data):
        target = _profile(data, slug)
        *parents, last = dotted_key.split(".")
        for key in parents:
            target = target[key]
        target[last] = value

    return change


def _drop(slug, key):
    return lambda data: _profile(data, slug).pop(key)


BROKEN = {
    "bad yaml": (
        _write("churn.yaml", "profiles:\n  - slug: churn-cpu\n    cpu: {guarantee: 1\n"),
        "churn.yaml: is not valid YAML",
    ),
    "duplicate yaml key": (
        _write("fraud.yaml", "profiles:\n  - slug: a\n    slug: b\n"),
        "fraud.yaml: is not valid YAML (duplicate key 'slug' at line 3",
    ),
    "empty file": (
        _write("shared.yaml", ""),
        "shared.yaml: the file must be a mapping with a 'profiles' list (got nothing); fix the "
        "file and restart.",
    ),
    "missing field": (
        _edit("churn.yaml", _drop("churn-cpu", "image")),
        "churn.yaml: profile 'churn-cpu': image is required",
    ),
    "missing nested field": (
        _edit("fraud.yaml", lambda d: _profile(d, "fraud-cpu")["memory"].pop("limit")),
        "fraud.yaml: profile 'fraud-cpu': memory.limit is required",
    ),
    "missing slug": (
        _edit("fraud.yaml", _drop("fraud-highmem", "slug")),
        "fraud.yaml: profile '#2': slug is required",
    ),
    "wrong type": (
        _edit("churn.yaml", _set("churn-gpu", "cpu.limit", "eight")),
        "churn.yaml: profile 'churn-gpu': cpu.limit must be a number (got the string 'eight')",
    ),
    "env value not a string": (
        _edit("vision.yaml", _set("vision-cpu", "environment.OMP_NUM_THREADS", 4)),
        "vision.yaml: profile 'vision-cpu': environment.OMP_NUM_THREADS must be a string "
        "(got the int 4)",
    ),
    "bad env name": (
        _edit("vision.yaml", _set("vision-cpu", "environment.1BAD", "x")),
        "vision.yaml: profile 'vision-cpu': environment has an invalid key '1BAD'",
    ),
    "yaml boolean key": (
        _write(
            "shared.yaml", (SHIPPED / "shared.yaml").read_text().replace("OMP_NUM_THREADS", "on")
        ),
        "shared.yaml: profile 'shared-cpu': environment has the key True (YAML reads yes/no/on/off "
        "as booleans: quote the key)",
    ),
    "node selector value not a string": (
        _edit(
            "churn.yaml",
            lambda d: _gpu_type(d, "churn-gpu", 0)["node_selector"].update(
                {"nvidia.com/gpu.product": True}
            ),
        ),
        """churn.yaml: profile 'churn-gpu': gpu.types[0].node_selector["nvidia.com/gpu.product"] """
        "must be a string (got a boolean True)",
    ),
    "reserved env name": (
        _edit("vision.yaml", _set("vision-gpu", "environment.CUDA_VISIBLE_DEVICES", "0")),
        "vision.yaml: profile 'vision-gpu': environment.CUDA_VISIBLE_DEVICES is set from the "
        "chosen GPU count; remove it and restart.",
    ),
    "unknown field": (
        _edit("churn.yaml", _set("churn-cpu", "gpus", 1)),
        "churn.yaml: profile 'churn-cpu': gpus is not a known field (known fields: cpu, default,",
    ),
    "duplicate slug across files": (
        _edit("fraud.yaml", _set("fraud-highmem", "slug", "churn-gpu")),
        "fraud.yaml: profile 'churn-gpu': slug is already used in ",
    ),
    "duplicate slug across files (message end)": (
        _edit("fraud.yaml", _set("fraud-highmem", "slug", "churn-gpu")),
        "churn.yaml; give each profile a unique slug and restart.",
    ),
    "negative gpu count": (
        _edit("churn.yaml", _set("churn-gpu", "gpu.max_count", -1)),
        "churn.yaml: profile 'churn-gpu': gpu.max_count must be >= 0 (got -1); "
        "fix the file and restart.",
    ),
    "gpu without types": (
        _edit("churn.yaml", lambda d: _profile(d, "churn-gpu")["gpu"].pop("types")),
        "churn.yaml: profile 'churn-gpu': gpu.types must list at least one GPU type",
    ),
    "default gpu count above max": (
        _edit("vision.yaml", _set("vision-gpu", "gpu.default_count", 3)),
        "vision.yaml: profile 'vision-gpu': gpu.default_count must be <= gpu.max_count 2 (got 3)",
    ),
    "gpu type without node selector": (
        _edit("vision.yaml", lambda d: _gpu_type(d, "vision-gpu", 1).pop("node_selector")),
        "vision.yaml: profile 'vision-gpu': gpu.types[1].node_selector is required",
    ),
    "empty toleration": (
        _edit("vision.yaml", lambda d: _gpu_type(d, "vision-gpu", 0)["tolerations"][0].clear()),
        "vision.yaml: profile 'vision-gpu': gpu.types[0].tolerations[0].key is required",
    ),
    "bad toleration effect": (
        _edit(
            "vision.yaml",
            lambda d: _gpu_type(d, "vision-gpu", 0)["tolerations"][0].update(effect="Never"),
        ),
        "vision.yaml: profile 'vision-gpu': gpu.types[0].tolerations[0].effect must be one of "
        "'NoSchedule', 'PreferNoSchedule', 'NoExecute' (got 'Never')",
    ),
    "unknown group": (
        _edit("churn.yaml", _set("churn-cpu", "groups", ["team-marketing"])),
        "churn.yaml: profile 'churn-cpu': groups[0] names unknown group 'team-marketing' "
        "(known: team-churn, team-fraud, team-vision, mlplat-reviewers, mlplat-admins)",
    ),
    "no groups and not shared": (
        _edit("churn.yaml", _drop("churn-cpu", "groups")),
        "churn.yaml: profile 'churn-cpu': groups is required unless shared is true",
    ),
    "shared with groups": (
        _edit("shared.yaml", _set("shared-cpu", "groups", ["team-churn"])),
        "shared.yaml: profile 'shared-cpu': groups must be left out when shared is true",
    ),
    "cpu guarantee above limit": (
        _edit("churn.yaml", _set("churn-cpu", "cpu.guarantee", 6)),
        "churn.yaml: profile 'churn-cpu': cpu.guarantee must be <= cpu.limit 4 (got 6)",
    ),
    "memory guarantee above limit": (
        _edit("fraud.yaml", _set("fraud-cpu", "memory.guarantee", "32G")),
        "fraud.yaml: profile 'fraud-cpu': memory.guarantee must be <= memory.limit 16G (got 32G)",
    ),
    "bad memory format": (
        _edit("fraud.yaml", _set("fraud-cpu", "memory.limit", "16GB")),
        "fraud.yaml: profile 'fraud-cpu': memory.limit must be a number followed by K, M, G or T",
    ),
    "bad slug format": (
        _edit("churn.yaml", _set("churn-cpu", "slug", "Churn_CPU")),
        "churn.yaml: profile 'Churn_CPU': slug must be lowercase letters, digits and '-'",
    ),
    "bad namespace": (
        _edit("churn.yaml", _set("churn-cpu", "namespace", "mlplat_churn")),
        "churn.yaml: profile 'churn-cpu': namespace must be lowercase letters",
    ),
    "two defaults for one team": (
        _edit("churn.yaml", _set("churn-gpu", "default", True)),
        "churn.yaml: profile 'churn-gpu': default is true but members of team-churn already "
        "get default profile 'churn-cpu'; keep one default per group and restart.",
    ),
    "bad team name in groups.yaml": (
        _write("groups.yaml", "teams: [churn, Fraud]\nroles: []\n"),
        "groups.yaml: teams[1] must be lowercase letters",
    ),
}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_broken_files_are_rejected_with_file_profile_and_field(folder, case):
    breaker, expected = BROKEN[case]
    breaker(folder)
    with pytest.raises(ProfileError) as info:
        load_profiles(folder)
    assert expected in str(info.value)
    assert str(info.value).endswith(".")
    assert isinstance(info.value, UsageError)


def test_missing_groups_file_and_empty_folder(folder, tmp_path):
    (folder / "groups.yaml").unlink()
    with pytest.raises(ProfileError, match="groups.yaml: is missing"):
        load_profiles(folder)
    with pytest.raises(ProfileError, match="is not a folder of profiles"):
        load_profiles(tmp_path / "nowhere")


def test_all_problems_are_collected(folder):
    _edit("churn.yaml", _set("churn-gpu", "gpu.max_count", -1))(folder)
    _edit("fraud.yaml", _set("fraud-cpu", "cpu.guarantee", 9))(folder)
    with pytest.raises(ProfileError) as info:
        load_profiles(folder)
    assert len(info.value.problems) == 2
    assert "(1 more problem(s): run `mlplat profiles validate`" in str(info.value)


def test_default_profiles_are_package_data():
    """Found in the installed package, not by walking up to a checkout."""
    import jupyter_mlplat

    shipped = default_profiles_dir()
    assert shipped.is_relative_to(Path(jupyter_mlplat.__file__).parent)
    assert shipped.resolve() == SHIPPED.resolve()  # the checkout's folder links to it
    assert len(load_profiles().profiles) == 7


# -- per-user selection ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        (["team-churn"], ["churn-cpu", "churn-gpu", "shared-cpu"]),
        (["team-fraud", "mlplat-reviewers"], ["fraud-cpu", "fraud-highmem", "shared-cpu"]),
        (["team-vision"], ["vision-gpu", "vision-cpu", "shared-cpu"]),
        (
            ["team-churn", "team-vision"],
            ["churn-cpu", "churn-gpu", "vision-gpu", "vision-cpu", "shared-cpu"],
        ),
        (["mlplat-admins"], ["shared-cpu"]),
        ([], ["shared-cpu"]),
    ],
)
def test_users_see_their_teams_and_shared_profiles(profiles, groups, expected):
    assert [p.slug for p in profiles_for_groups(profiles, groups)] == expected
    group_objects = [SimpleNamespace(name=g) for g in groups]
    assert [p.slug for p in profiles_for_groups(profiles, group_objects)] == expected
    rendered = kubespawner_profile_list(profiles, groups=groups)
    assert [p["slug"] for p in rendered] == expected
    assert sum(p["default"] for p in rendered) <= 1


def test_resolve_defaults_and_gpu_choices(profiles):
    churn = resolve(profiles, None, None, ["team-churn"])
    assert (churn.slug, churn.gpu_count, churn.gpu_type) == ("churn-cpu", 0, None)
    assert churn.env == {"OMP_NUM_THREADS": "4", "CUDA_VISIBLE_DEVICES": ""}
    assert churn.namespace == "mlplat-churn" and churn.mem_limit_bytes == 16 * 1024**3

    vision = resolve(profiles, "vision-gpu", {}, ["team-vision"])
    assert (vision.gpu_count, vision.gpu_type.name, vision.gpu_choice) == (1, "a100", "1x-a100")
    assert vision.env["CUDA_VISIBLE_DEVICES"] == "0"

    two_t4 = resolve(profiles, "vision-gpu", {"gpu": "2x-t4"}, ["team-vision"])
    assert (two_t4.gpu_count, two_t4.gpu_type.name) == (2, "t4")
    assert two_t4.env["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert two_t4.kubespawner_user_options == {"profile": "vision-gpu", "gpu": "2x-t4"}

    by_count = resolve(
        profiles, "vision-gpu", {"gpu_count": "2", "gpu_type": "t4"}, ["team-vision"]
    )
    assert by_count.gpu_choice == "2x-t4"
    none = resolve(
        profiles, "vision-gpu", {"profile": "vision-gpu", "gpu": "none"}, ["team-vision"]
    )
    assert (none.gpu_count, none.env["CUDA_VISIBLE_DEVICES"]) == (0, "")
    assert resolve(profiles, "shared-cpu", {"gpu_count": 0}, []).gpu_choice == "none"


ALLOWED_CHURN = "churn-cpu, churn-gpu, shared-cpu"
RESOLVE_ERRORS = [
    ("Churn CPU!", {}, SpawnRequestError, 400,
     f"'Churn CPU!' is not a valid profile slug (lowercase letters, digits and '-'); "
     f"choose one of: {ALLOWED_CHURN}."),
    ("churn-xl", {}, SpawnRequestError, 400,
     f"There is no profile 'churn-xl'; choose one of: {ALLOWED_CHURN}."),
    ("fraud-cpu", {}, ProfileForbidden, 403,
     f"Profile 'fraud-cpu' is for team-fraud and you are not a member; choose one of your "
     f"profiles: {ALLOWED_CHURN}."),
    ("churn-gpu", {"gpu_count": 2}, SpawnRequestError, 400,
     "Profile 'churn-gpu' allows at most 1 GPU(s) (got 2); choose one of: none, 1x-t4."),
    ("churn-gpu", {"gpu": "2x-t4"}, SpawnRequestError, 400,
     "'2x-t4' is not a GPU choice of profile 'churn-gpu'; choose one of: none, 1x-t4."),
    ("churn-gpu", {"gpu_count": 1, "gpu_type": "a100"}, SpawnRequestError, 400,
     "'a100' is not a GPU type of profile 'churn-gpu'; choose one of: t4 (choices: none, 1x-t4)."),
    ("churn-cpu", {"gpu_count": 1}, SpawnRequestError, 400,
     "Profile 'churn-cpu' allows at most 0 GPU(s) (got 1); choose one of: none."),
    ("churn-gpu", {"gpu_count": "-1"}, SpawnRequestError, 400,
     "gpu_count must be a whole number from 0 to 1 (got '-1'); choose one of: none, 1x-t4."),
    ("churn-gpu", {"gpus": 1}, SpawnRequestError, 400,
     "Unknown spawn option(s) 'gpus'; use only profile, gpu, gpu_count, gpu_type."),
    ("churn-gpu", {"profile": "churn-cpu"}, SpawnRequestError, 400,
     "The options name profile 'churn-cpu' but the request is for 'churn-gpu'; give the "
     "profile once."),
]  # fmt: skip


@pytest.mark.parametrize(("slug", "options", "error", "status", "message"), RESOLVE_ERRORS)
def test_resolve_rejects_bad_requests(profiles, slug, options, error, status, message):
    with pytest.raises(error) as info:
        resolve(profiles, slug, options, ["team-churn"])
    assert str(info.value) == message
    assert info.value.http_status == status
    assert isinstance(info.value, PermissionDenied if status == 403 else UsageError)


def test_resolve_with_a_vision_gpu_above_max(profiles):
    with pytest.raises(SpawnRequestError, match=r"at most 2 GPU\(s\) \(got 3\); choose one of: "
                       r"none, 1x-a100, 2x-a100, 1x-t4, 2x-t4\."):  # fmt: skip
        resolve(profiles, "vision-gpu", {"gpu_count": 3, "gpu_type": "t4"}, ["team-vision"])


# -- CLI ------------------------------------------------------------------------------------


def _run(argv, capsys):
    from jupyter_mlplat.cli import main

    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_validate(folder, capsys):
    code, out, _ = _run(["profiles", "validate", "--folder", str(SHIPPED)], capsys)
    assert code == 0 and out.startswith("7 profiles in 4 files valid")
    _edit("churn.yaml", _set("churn-gpu", "gpu.max_count", -1))(folder)
    code, out, err = _run(["profiles", "validate", "--folder", str(folder)], capsys)
    assert code == 1 and out == ""
    assert "profile 'churn-gpu': gpu.max_count must be >= 0 (got -1)" in err


def test_cli_render(profiles, capsys):
    argv = ["profiles", "render", "--format", "kubespawner", "--folder", str(SHIPPED)]
    code, out, _ = _run([*argv, "--group", "team-vision"], capsys)
    assert code == 0
    assert yaml.safe_load(out) == kubespawner_profile_list(profiles, groups=["team-vision"])
    argv[3] = "helm-values"
    code, out, _ = _run([*argv, "--output", "json"], capsys)
    assert code == 0 and "profileList" in json.loads(out)["jupyterhub"]["singleuser"]
    code, _, err = _run([*argv, "--group", "team-churn"], capsys)
    assert code == 1 and "--group applies to --format kubespawner only" in err


def test_importing_profiles_stays_light():
    code = (
        "import sys, jupyter_mlplat.profiles, jupyter_mlplat.profiles.cli\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('kubespawner', 'kubernetes', 'kubernetes_asyncio', 'jupyterhub', 'mlflow', 'traitlets')]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)
