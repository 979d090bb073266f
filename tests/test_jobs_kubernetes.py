"""Notebook Jobs and CronJobs: manifests validated with kubernetes-validate (strict) for every
shipped profile and GPU choice, the pod's argv read back by the real papermill, bad input
refused, and apply/delete run against a local HTTP stand-in of the Kubernetes API
(tests/kube_standin.py: not a cluster; nothing runs the pods)."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import nbformat
import pytest

from jupyter_mlplat.errors import TooLarge, UsageError
from jupyter_mlplat.jobs.kubernetes import (
    JOB_NAME_ENV,
    OUTPUT_DIR,
    SNAPSHOT_DIR,
    check_name,
    job_name,
    notebook_cronjob,
    notebook_job,
)
from jupyter_mlplat.profiles import default_profiles_dir, load_profiles
from jupyter_mlplat.profiles.model import NO_GPU
from jupyter_mlplat.profiles.render import gpu_node_labels
from jupyter_mlplat.serving import kube_api
from jupyter_mlplat.serving.kubernetes import cpu_quantity, memory_quantity
from tests.kube_standin import KubeStandIn

K8S_VERSION = "1.31"  # CronJob timeZone and the batch.kubernetes.io/job-name label: >= 1.27
PROFILES = load_profiles(default_profiles_dir())
DIGEST = "0f" * 32
SNAPSHOT = f"pvc://mlplat-storage/snapshots/{DIGEST}/train.ipynb"
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?\Z")
LABEL_KEY = re.compile(r"([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?\Z")
SWEEP = [
    (profile.slug, choice, kind)
    for profile in PROFILES.profiles
    for choice in ([c.key for c in profile.gpu_options()] or [NO_GPU])
    for kind in ("Job", "CronJob")
]
# Values a shell, papermill's type guessing, YAML 1.1 or the kubelet's $(VAR) would change.
TRICKY = {
    "alpha": 0.5,
    "tiny": 1e-07,
    "big": 2**70,
    "negative": -3,
    "flag": True,
    "nothing": None,
    "infinite": float("inf"),
    "zip_code": "007",
    "word_true": "True",
    "word_none": "None",
    "as_float": "1e-07",
    "shell": "a b; rm -rf / && echo $HOME `id` 'q' \"dq\"",
    "kubelet": f"$({JOB_NAME_ENV}) $$ $(HOME) $",
    "braces": "{alpha}",
    "option": "--help",
    "dash": "-p",
    "multiline": "one\ntwo",
    "unicode": "café ✓",
    "empty": "",
    "listed": [1, 1e-07, "yes", "no", "~", "null", "2024-01-01", None, True],
    "nested": {"a": {"b": [0.1, "x: y"]}, "on": "off"},
}


def build_job(slug="fraud-cpu", gpu=None, **overrides):
    args = dict(
        name="notebook-run-42",
        profile=PROFILES.get(slug),
        owner="alice",
        team="fraud",
        snapshot_uri=SNAPSHOT,
        snapshot_digest=DIGEST,
        parameters={"alpha": 0.5, "region": "eu-west"},
        run_id=42,
        output_uri="pvc://mlplat-storage/runs/42/train.ipynb",
        gpu=gpu,
        deadline_seconds=3600,
        ttl_seconds=86400,
        gpu_node_labels=gpu_node_labels(PROFILES),
    )
    return notebook_job(**(args | overrides))


def build_cron(slug="fraud-cpu", gpu=None, **overrides):
    args = dict(
        name="notebook-schedule-7",
        schedule="0 6 * * 1-5",
        timezone="Europe/Berlin",
        profile=PROFILES.get(slug),
        owner="alice",
        team="fraud",
        snapshot_uri=SNAPSHOT,
        snapshot_digest=DIGEST,
        parameters={"alpha": 0.5, "region": "eu-west"},
        schedule_id=7,
        output_dir_uri="pvc://mlplat-storage/schedules/7",
        gpu=gpu,
        deadline_seconds=3600,
        ttl_seconds=86400,
        starting_deadline_seconds=300,
        gpu_node_labels=gpu_node_labels(PROFILES),
    )
    return notebook_cronjob(**(args | overrides))


def job_spec(manifest):
    return manifest["spec"]["jobTemplate"]["spec"] if manifest["kind"] == "CronJob" else (
        manifest["spec"]
    )  # fmt: skip


def container_of(manifest):
    [container] = job_spec(manifest)["template"]["spec"]["containers"]
    return container


def strict_validate(manifest):
    assert kubernetes_validate.validate(manifest, K8S_VERSION, strict=True) == K8S_VERSION


def assert_metadata_valid(metadata):
    for key, value in metadata.get("labels", {}).items():
        assert LABEL_KEY.match(key) and LABEL_VALUE.match(value) and len(value) <= 63, key
    for key in metadata.get("annotations", {}):
        assert LABEL_KEY.match(key), key


def kubelet_expand(text: str, env: dict[str, str]) -> str:
    """What the kubelet makes of ``$`` in a command (Kubernetes' expansion.Expand)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            if text[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            end = text.find(")", i + 2) if text[i + 1] == "(" else -1
            if end != -1:
                name = text[i + 2 : end]
                out.append(env.get(name, text[i : end + 1]))
                i = end + 1
                continue
        out.append(text[i])
        i += 1
    return "".join(out)


# -- builders: every manifest they can produce validates ----------------------------------


def test_strict_validation_refuses_an_unknown_field():
    manifest = build_job()
    container_of(manifest)["commands"] = ["papermill"]  # a typo the API would drop
    with pytest.raises(kubernetes_validate.ValidationError):
        strict_validate(manifest)


@pytest.mark.parametrize(("slug", "gpu", "kind"), SWEEP)
def test_every_job_and_cronjob_validates(slug, gpu, kind):
    manifest = (build_job if kind == "Job" else build_cron)(slug, gpu)
    strict_validate(manifest)
    profile = PROFILES.get(slug)
    spec = job_spec(manifest)
    pod = spec["template"]["spec"]
    container = container_of(manifest)
    assert manifest["apiVersion"] == "batch/v1" and manifest["kind"] == kind
    assert manifest["metadata"]["namespace"] == profile.namespace
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"]) == (0, 3600)
    assert spec["ttlSecondsAfterFinished"] == 86400
    assert pod["restartPolicy"] == "Never"
    assert container["image"] == profile.image
    assert container["resources"]["requests"] == {
        "cpu": cpu_quantity(profile.cpu_guarantee),
        "memory": memory_quantity(profile.mem_guarantee),
    }
    limits = container["resources"]["limits"]
    assert (limits["cpu"], limits["memory"]) == (
        cpu_quantity(profile.cpu_limit), memory_quantity(profile.mem_limit)
    )  # fmt: skip
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert profile.environment.items() <= env.items()
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    # No shell: papermill is the process, its arguments are the argv.
    assert container["command"][:3] == [
        "papermill",
        f"{SNAPSHOT_DIR}/train.ipynb",
        f"{OUTPUT_DIR}/train.ipynb" if kind == "Job" else f"{OUTPUT_DIR}/$({JOB_NAME_ENV}).ipynb",
    ]
    assert "args" not in container and not {"sh", "bash", "-c"} & set(container["command"])
    choice = next((c for c in profile.gpu_options() if c.key == gpu), None)
    if gpu == NO_GPU:
        assert "nvidia.com/gpu" not in limits
        assert "tolerations" not in pod and "nodeSelector" not in pod
        assert pod["affinity"]["nodeAffinity"]  # CPU pods stay off GPU nodes
    else:
        assert limits["nvidia.com/gpu"] == str(choice.count)
        assert pod["nodeSelector"] == choice.type.node_selector
        assert pod["tolerations"] == [dict(t) for t in choice.type.tolerations]
    for metadata in (manifest["metadata"], spec["template"]["metadata"]):
        assert_metadata_valid(metadata)
        assert metadata["annotations"]["mlplat.io/snapshot-digest"] == DIGEST
    if kind == "CronJob":
        cron = manifest["spec"]
        assert cron["concurrencyPolicy"] == "Forbid"
        assert (cron["schedule"], cron["timeZone"]) == ("0 6 * * 1-5", "Europe/Berlin")
        assert cron["startingDeadlineSeconds"] == 300
        assert (cron["successfulJobsHistoryLimit"], cron["failedJobsHistoryLimit"]) == (3, 3)
        assert_metadata_valid(cron["jobTemplate"]["metadata"])


def test_the_sweep_covers_gpu_choices_and_every_profile():
    assert {slug for slug, _, _ in SWEEP} == set(PROFILES.slugs)
    assert any(gpu.startswith("2x-") for _, gpu, _ in SWEEP)


def test_the_default_gpu_choice_is_the_profiles():
    limits = container_of(build_job("vision-gpu"))["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1"  # vision-gpu defaults to 1 GPU (a100)


def test_without_gpu_node_labels_a_cpu_pod_has_no_affinity():
    pod = job_spec(build_job(gpu_node_labels=None))["template"]["spec"]
    assert "affinity" not in pod


def test_only_the_snapshot_read_only_and_the_output_folder_writable_from_one_claim():
    pod = job_spec(build_job())["template"]["spec"]
    assert pod["volumes"] == [
        {"name": "storage", "persistentVolumeClaim": {"claimName": "mlplat-storage"}}
    ]
    assert pod["containers"][0]["volumeMounts"] == [
        {"name": "storage", "mountPath": f"{SNAPSHOT_DIR}/train.ipynb",
         "subPath": f"snapshots/{DIGEST}/train.ipynb", "readOnly": True},
        {"name": "storage", "mountPath": OUTPUT_DIR, "subPath": "runs/42"},
    ]  # fmt: skip
    assert pod["containers"][0]["workingDir"] == OUTPUT_DIR


def test_snapshot_and_output_on_two_claims_are_two_volumes():
    pod = job_spec(build_job(output_uri="pvc://team-out/runs/42/out.ipynb"))["template"]["spec"]
    assert [(v["name"], v["persistentVolumeClaim"]["claimName"]) for v in pod["volumes"]] == [
        ("snapshot", "mlplat-storage"),
        ("output", "team-out"),
    ]
    strict_validate(build_job(output_uri="pvc://team-out/runs/42/out.ipynb"))


def test_the_pod_runs_papermill_with_one_option_per_parameter():
    params = {"alpha": 0.5, "region": "eu-west", "n": 3, "dry_run": False, "xs": [1, "a"]}
    assert container_of(build_job(parameters=params))["command"] == [
        "papermill", f"{SNAPSHOT_DIR}/train.ipynb", f"{OUTPUT_DIR}/train.ipynb",
        "--log-output", "--no-progress-bar",
        "-p", "alpha", "0.5",
        "-r", "region", "eu-west",
        "-p", "n", "3",
        "-p", "dry_run", "False",
        "-y", "{xs: [1, a]}",
    ]  # fmt: skip


def test_provenance_links_owner_team_run_and_digest():
    meta = build_job()["metadata"]
    assert meta["labels"] == {
        "app.kubernetes.io/managed-by": "jupyter-mlplat",
        "app.kubernetes.io/component": "notebook-job",
        "mlplat.io/owner": "alice",
        "mlplat.io/team": "fraud",
        "mlplat.io/profile": "fraud-cpu",
        "mlplat.io/run-id": "42",
    }
    assert meta["annotations"]["mlplat.io/snapshot-digest"] == DIGEST
    assert meta["annotations"]["mlplat.io/output-uri"] == "pvc://mlplat-storage/runs/42/train.ipynb"
    assert meta["annotations"]["mlplat.io/gpu"] == NO_GPU
    cron = build_cron()
    assert cron["metadata"]["labels"]["mlplat.io/schedule-id"] == "7"
    assert "mlplat.io/run-id" not in cron["metadata"]["labels"]  # each Job is its own run


def test_an_owner_that_is_no_label_value_stays_in_the_annotations():
    manifest = build_job(owner="alice@example.org")
    assert "mlplat.io/owner" not in manifest["metadata"]["labels"]
    assert manifest["metadata"]["annotations"]["mlplat.io/owner"] == "alice@example.org"
    strict_validate(manifest)


def test_namespace_service_account_and_env_when_given():
    manifest = build_job(
        namespace="mlplat-prod", service_account="notebook-runner", env={"MODE": "prod"}
    )
    strict_validate(manifest)
    pod = job_spec(manifest)["template"]["spec"]
    assert manifest["metadata"]["namespace"] == "mlplat-prod"
    assert pod["serviceAccountName"] == "notebook-runner"
    assert pod["automountServiceAccountToken"] is True
    assert {"name": "MODE", "value": "prod"} in pod["containers"][0]["env"]


def test_a_cronjob_without_timezone_or_starting_deadline_leaves_them_to_kubernetes():
    manifest = build_cron(timezone=None, starting_deadline_seconds=None, schedule="@daily")
    strict_validate(manifest)
    assert "timeZone" not in manifest["spec"] and "startingDeadlineSeconds" not in manifest["spec"]
    assert manifest["spec"]["schedule"] == "@daily"


# -- what the pod runs, read back by the real papermill -----------------------------------


def run_papermill(command, tmp_path, job="notebook-run-42"):
    """``command`` as the kubelet expands it and papermill parses it (--prepare-only: the
    parameters are injected, no kernel runs); the injected values and the output path."""
    snapshot, output = tmp_path / "snapshot", tmp_path / "output"
    snapshot.mkdir()
    output.mkdir()
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "language": "python",
                                       "display_name": "Python 3"}  # fmt: skip
    cell = nbformat.v4.new_code_cell("alpha = 1")
    cell.metadata["tags"] = ["parameters"]
    notebook.cells = [cell]
    nbformat.write(notebook, snapshot / "train.ipynb")
    argv = [kubelet_expand(a, {JOB_NAME_ENV: job}) for a in command]
    argv = [a.replace(SNAPSHOT_DIR, str(snapshot)).replace(OUTPUT_DIR, str(output)) for a in argv]
    papermill = Path(sys.executable).with_name("papermill")
    done = subprocess.run(
        [str(papermill), *argv[1:], "--prepare-only"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    written = nbformat.read(argv[2], as_version=4)
    [injected] = [c for c in written.cells if "injected-parameters" in c.metadata.get("tags", [])]
    values: dict = {}
    exec(injected.source, {}, values)  # the cell papermill wrote for the kernel
    return values, Path(argv[2])


def test_papermill_receives_every_parameter_unchanged(tmp_path):
    command = container_of(build_job(parameters=TRICKY))["command"]
    values, output = run_papermill(command, tmp_path)
    assert output == tmp_path / "output" / "train.ipynb"
    assert values.keys() == TRICKY.keys()
    for name, expected in TRICKY.items():
        assert values[name] == expected and type(values[name]) is type(expected), name
    assert math.isinf(values["infinite"])


def test_each_scheduled_run_writes_its_own_output(tmp_path):
    command = container_of(build_cron(parameters={"note": "$(MLPLAT_JOB_NAME)"}))["command"]
    values, output = run_papermill(command, tmp_path, job="notebook-schedule-7-29000000")
    assert output == tmp_path / "output" / "notebook-schedule-7-29000000.ipynb"
    assert values == {"note": "$(MLPLAT_JOB_NAME)"}  # a value is never expanded


# -- bad input ----------------------------------------------------------------------------


def test_job_names_from_ids():
    assert job_name("Job", 42) == "notebook-run-42"
    assert job_name("CronJob", "fraud-daily") == "notebook-schedule-fraud-daily"
    assert len(job_name("CronJob", "a" * 34)) == 52
    assert len(job_name("Job", "a" * 50)) == 63


@pytest.mark.parametrize("ident", ["Fraud", "fraud_daily", "-x", "x-", "", -1, True, 1.5, None])
def test_an_id_that_cannot_name_a_job_is_refused(ident):
    with pytest.raises(UsageError, match=r"cannot name a Job: give a run or schedule id"):
        job_name("Job", ident)


def test_an_id_too_long_for_the_kind_is_refused():
    with pytest.raises(UsageError, match=r"has 35 characters; .* at most 34, so use a shorter"):
        job_name("CronJob", "a" * 35)
    with pytest.raises(UsageError, match=r"has 51 characters; .* at most 50"):
        job_name("Job", "a" * 51)
    with pytest.raises(UsageError, match=r"Kind 'Pod' is not a notebook job kind"):
        job_name("Pod", 1)


@pytest.mark.parametrize("name", ["Run-42", "run_42", "-run", "run-", "", "run.42"])
def test_names_that_are_not_dns_1123_labels_are_refused(name):
    with pytest.raises(UsageError, match=r"is not a DNS-1123 label .* Use a name such as"):
        build_job(name=name)
    with pytest.raises(UsageError, match=r"is not a DNS-1123 label"):
        build_cron(name=name)


def test_names_too_long_for_the_kind_are_refused():
    assert check_name("CronJob", "a" * 52) and check_name("Job", "a" * 63)
    with pytest.raises(UsageError, match=r"has 53 characters; Kubernetes allows at most 52"):
        build_cron(name="a" * 53)
    with pytest.raises(UsageError, match=r"has 64 characters; Kubernetes allows at most 63"):
        build_job(name="a" * 64)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Europe", "../etc/passwd", "", "Local"])
def test_an_unknown_timezone_is_refused(zone):
    with pytest.raises(UsageError, match=r"is not an IANA time zone name; use e\.g\. 'UTC'"):
        build_cron(timezone=zone)


@pytest.mark.parametrize("schedule", ["", "0 6 * *", "every day", "0 6 * * * *", "@often"])
def test_a_schedule_that_is_no_cron_expression_is_refused(schedule):
    with pytest.raises(UsageError, match=r"is not a cron expression of five fields"):
        build_cron(schedule=schedule)


def test_a_timezone_inside_the_schedule_is_refused():
    with pytest.raises(UsageError, match=r"names a time zone; .* give the time zone separately"):
        build_cron(schedule="CRON_TZ=Europe/Berlin 0 6 * * *")


def test_an_unknown_gpu_choice_is_a_usage_error():
    with pytest.raises(UsageError, match="has no GPU choice '1x-a100'; choose one of: none"):
        build_job("fraud-cpu", gpu="1x-a100")
    with pytest.raises(UsageError, match="has no GPU choice '4x-a100'; choose one of: none, "):
        build_cron("vision-gpu", gpu="4x-a100")


@pytest.mark.parametrize(
    "uri",
    [
        "s3://bucket/snapshots/train.ipynb",
        "pvc://mlplat-storage/train.ipynb",  # no folder: the whole claim would be mounted
        "pvc://mlplat-storage/snapshots/train.py",
        "pvc://mlplat-storage/../secrets/train.ipynb",
        "pvc://mlplat-storage/snap shots/train.ipynb",
        "pvc://mlplat-storage/{alpha}/train.ipynb",
        "pvc://mlplat-storage/$(HOME)/train.ipynb",
        "pvc://Storage/snapshots/train.ipynb",
        "/srv/snapshots/train.ipynb",
    ],
)
def test_a_snapshot_uri_not_on_platform_storage_is_refused(uri):
    with pytest.raises(UsageError, match=r"is not a notebook on platform storage; give pvc://"):
        build_job(snapshot_uri=uri)


def test_an_output_folder_overlapping_the_snapshot_is_refused():
    with pytest.raises(UsageError, match=r"overlap on one claim; a snapshot is immutable"):
        build_job(output_uri=f"pvc://mlplat-storage/snapshots/{DIGEST}/out.ipynb")
    with pytest.raises(UsageError, match=r"overlap on one claim"):
        build_cron(output_dir_uri="pvc://mlplat-storage/snapshots")


@pytest.mark.parametrize("name", ["1st", "my-param", "class", "a b", ""])
def test_a_parameter_name_that_is_no_identifier_is_refused(name):
    with pytest.raises(UsageError, match=r"is not a Python identifier; papermill assigns"):
        build_job(parameters={name: 1})


@pytest.mark.parametrize("value", [{1, 2}, b"bytes", {"k": object()}, {3: "x"}, "nul\0"])
def test_a_parameter_value_that_is_no_json_value_is_refused(value):
    with pytest.raises(UsageError, match=r"Parameter 'p'"):
        build_job(parameters={"p": value})


def test_parameters_too_large_for_a_command_line_are_refused():
    with pytest.raises(TooLarge, match=r"put large inputs in a file beside the notebook"):
        build_job(parameters={"blob": "x" * 70_000})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("deadline_seconds", 0, "The deadline must be a whole number of seconds >= 1"),
        ("deadline_seconds", True, "The deadline must be"),
        ("ttl_seconds", -1, "The TTL after finishing must be a whole number of seconds >= 0"),
        ("snapshot_digest", "sha256:abc", "is not a SHA-256 digest; give 64 lowercase hex"),
        ("owner", "", "Owner must be a non-empty string"),
        ("namespace", "Prod", "Namespace 'Prod' is not a DNS-1123 label"),
        ("service_account", "Runner", "Service account 'Runner' is not a Kubernetes name"),
        ("env", {JOB_NAME_ENV: "x"}, "cannot be set"),
        ("env", {"1X": "x"}, "cannot be set"),
        ("env", {"X": 1}, "Environment variable X must be a string"),
    ],
)
def test_bad_job_inputs_are_refused(field, value, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        build_job(**{field: value})


def test_a_starting_deadline_the_controller_may_miss_is_refused():
    with pytest.raises(UsageError, match=r"starting deadline must be a whole number .* >= 10"):
        build_cron(starting_deadline_seconds=5)
    with pytest.raises(UsageError, match=r"successful jobs history limit must be"):
        build_cron(successful_jobs_history_limit=-1)


# -- API calls, against the local HTTP stand-in of the Kubernetes API -----------------------


@pytest.fixture
def standin():
    with KubeStandIn() as api:
        yield api


def client_for(api: KubeStandIn):
    return kube_api.connect(api.url, api.token, verify=False)


def test_apply_a_job_then_again_then_delete(standin):
    job = build_job()
    key = ("jobs", "mlplat-fraud", "notebook-run-42")
    with client_for(standin) as client:
        created = kube_api.apply(client, job)
        assert created["kind"] == "Job" and created["metadata"]["generation"] == 1
        # A retried submit applies the same Job: nothing changes.
        again = kube_api.apply(client, job)
        assert again["metadata"]["uid"] == created["metadata"]["uid"]
        assert again["metadata"]["generation"] == 1
        assert standin.objects[key]["spec"] == job["spec"]
        assert kube_api.delete(client, job) is True
        assert key not in standin.objects
        assert kube_api.delete(client, job) is False  # already gone: nothing to do
    paths = [(method, path) for method, path, _ in standin.requests]
    assert paths[0][1].startswith("/apis/batch/v1/namespaces/mlplat-fraud/jobs/notebook-run-42?")
    deletes = [path for method, path in paths if method == "DELETE"]
    # A Job's pods are orphaned unless the delete says otherwise.
    assert deletes and all("propagationPolicy=Background" in path for path in deletes)


def test_a_changed_job_is_refused_by_the_api(standin):
    with client_for(standin) as client:
        kube_api.apply(client, build_job())
        with pytest.raises(UsageError) as caught:
            kube_api.apply(client, build_job(parameters={"alpha": 0.9}))
    assert str(caught.value).startswith(
        "Could not apply Job mlplat-fraud/notebook-run-42: Kubernetes answered 422"
    )
    assert "field is immutable" in str(caught.value)
    pod = standin.objects[("jobs", "mlplat-fraud", "notebook-run-42")]["spec"]["template"]
    assert "0.5" in pod["spec"]["containers"][0]["command"]  # the first Job stands


def test_apply_update_and_delete_a_cronjob(standin):
    key = ("cronjobs", "mlplat-fraud", "notebook-schedule-7")
    with client_for(standin) as client:
        created = kube_api.apply(client, build_cron())
        assert created["metadata"]["generation"] == 1
        updated = kube_api.apply(client, build_cron(schedule="30 7 * * *", timezone="UTC"))
        assert updated["metadata"]["uid"] == created["metadata"]["uid"]
        assert updated["metadata"]["generation"] == 2
        assert (updated["spec"]["schedule"], updated["spec"]["timeZone"]) == ("30 7 * * *", "UTC")
        assert updated["spec"]["concurrencyPolicy"] == "Forbid"
        # Dropping the start deadline removes it (server-side apply, not a merge).
        trimmed = kube_api.apply(client, build_cron(starting_deadline_seconds=None))
        assert "startingDeadlineSeconds" not in trimmed["spec"]
        assert kube_api.delete(client, build_cron()) is True
    assert key not in standin.objects
    patches = [path for method, path, _ in standin.requests if method == "PATCH"]
    assert len(patches) == 3
    assert all(
        p.startswith("/apis/batch/v1/namespaces/mlplat-fraud/cronjobs/notebook-schedule-7?")
        and "fieldManager=jupyter-mlplat" in p
        for p in patches
    )
