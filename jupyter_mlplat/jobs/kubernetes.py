"""Production notebook runs as Kubernetes manifests (pure builders): a Job, or a CronJob.

A run is a ``batch/v1`` ``Job`` in the team's namespace whose one container runs papermill
on the notebook snapshot, with the team profile's image, CPU/memory, GPU and environment:
``backoffLimit: 0`` (a failed notebook is not run again behind anyone's back),
``activeDeadlineSeconds`` and ``ttlSecondsAfterFinished``. A schedule is a ``CronJob`` with
``concurrencyPolicy: Forbid`` around the same Job spec.

The snapshot and the output live on the platform's storage, a PersistentVolumeClaim,
addressed as ``pvc://<claim>/<folder>/<file>.ipynb``. The pod mounts the snapshot file
read-only in :data:`SNAPSHOT_DIR` and the output folder read-write at :data:`OUTPUT_DIR`
(each a ``subPath`` of the claim, so the notebook sees nothing else of the storage: not
the other snapshots beside its own), and papermill reads and writes those paths. The
platform writes the snapshot and creates the output folder, writable by the image's user,
before it applies the Job (a missing ``subPath`` is created by the kubelet, as root).

The container's argv is ``papermill <snapshot> <output> --log-output --no-progress-bar``
then one option per parameter: ``-r name value`` for a string (kept as a string), ``-p
name value`` for a number, boolean or None (papermill reads the type back), ``-y '{name:
…}'`` (YAML) for a list or a mapping. No shell runs; ``$`` in values is doubled because
the kubelet expands ``$(VAR)`` in a container's command. Nothing here talks to a cluster:
see :mod:`jupyter_mlplat.serving.kube_api`.
"""

from __future__ import annotations

import keyword
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from ..errors import TooLarge, UsageError
from ..profiles.model import NO_GPU, GpuChoice, Profile
from ..profiles.render import GPU_RESOURCE

# One rule for GPUs, quantities and CPU pods off GPU nodes, shared with serving and sessions.
from ..serving.kubernetes import _avoid_gpu_nodes, cpu_quantity, gpu_choice, memory_quantity

API_VERSION = "batch/v1"
PREFIX = "mlplat.io/"
CONTAINER = "notebook"
MOUNT_ROOT = "/mnt/mlplat"
SNAPSHOT_DIR = f"{MOUNT_ROOT}/snapshot"
OUTPUT_DIR = f"{MOUNT_ROOT}/output"
JOB_NAME_ENV = "MLPLAT_JOB_NAME"
# Set by the Job controller on its pods since Kubernetes 1.27 (CronJob timeZone is GA there).
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
# A Job's name is a pod label value (63); a CronJob's Jobs are "<name>-<minutes>", 11 more.
NAME_MAX = {"Job": 63, "CronJob": 52}
NAME_PREFIX = {"Job": "notebook-run-", "CronJob": "notebook-schedule-"}
PARAMETERS_MAX_BYTES = 64 * 1024  # far below ARG_MAX; large inputs belong in a file
MIN_STARTING_DEADLINE = 10  # the CronJob controller looks every 10 s; less may never start
CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?\Z")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?\Z")
_PARAMETER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*\Z")
# Path segments papermill and the kubelet take literally: no "{" (papermill formats paths
# with the parameters), no "$" (the kubelet's $(VAR)), no spaces or quotes.
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*\Z")
_DIGEST = re.compile(r"(sha256:)?[0-9a-f]{64}\Z")
_CRON_FIELD = re.compile(r"[0-9A-Za-z*?/,-]+\Z")


def _kind(kind: str) -> str:
    if kind not in NAME_MAX:
        raise UsageError(f"Kind {kind!r} is not a notebook job kind; use 'Job' or 'CronJob'.")
    return kind


def check_name(kind: str, name: str) -> str:
    """``name`` when it is a valid name for a ``kind`` ("Job" or "CronJob"), else UsageError."""
    limit = NAME_MAX[_kind(kind)]
    example = f"Use a name such as {NAME_PREFIX[kind]}42."
    if not isinstance(name, str) or not _DNS_LABEL.match(name):
        raise UsageError(
            f"{kind} name {name!r} is not a DNS-1123 label (lowercase letters, digits and '-', "
            f"starting and ending with a letter or digit). {example}"
        )
    if len(name) > limit:
        raise UsageError(
            f"{kind} name {name!r} has {len(name)} characters; Kubernetes allows at most "
            f"{limit} for a {kind}. {example}"
        )
    return name


def job_name(kind: str, ident: str | int) -> str:
    """``notebook-run-<ident>`` (Job, <= 63) or ``notebook-schedule-<ident>`` (CronJob, <= 52).

    ``ident`` is a run or schedule id, or a lowercase DNS label; anything else is refused
    rather than rewritten, since two idents rewritten alike would apply onto one object."""
    prefix = NAME_PREFIX[_kind(kind)]
    if isinstance(ident, int) and not isinstance(ident, bool) and ident >= 0:
        part = str(ident)
    elif isinstance(ident, str) and _DNS_LABEL.match(ident):
        part = ident
    else:
        raise UsageError(
            f"{ident!r} cannot name a {kind}: give a run or schedule id (a whole number >= 0) "
            "or lowercase letters, digits and '-', starting and ending with a letter or digit."
        )
    room = NAME_MAX[kind] - len(prefix)
    if len(part) > room:
        raise UsageError(
            f"{ident!r} has {len(part)} characters; a {kind} name {prefix}<id> leaves room for "
            f"at most {room}, so use a shorter id."
        )
    return prefix + part


def _check_seconds(what: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{what} must be a whole number of seconds >= {minimum}, not {value!r}.")
    return value


def check_timezone(timezone: str) -> str:
    """``timezone`` when it is an IANA time zone name Kubernetes accepts, else UsageError."""
    problem = not isinstance(timezone, str) or timezone.lower() in ("local", "localtime")
    if not problem:
        try:
            zoneinfo.ZoneInfo(timezone)
        except (ValueError, KeyError, OSError):  # malformed, unknown, a folder such as 'Europe'
            problem = True
    if problem:
        raise UsageError(
            f"Time zone {timezone!r} is not an IANA time zone name; use e.g. 'UTC' or "
            "'Europe/Berlin'."
        )
    return timezone


def check_schedule(schedule: str) -> str:
    """A five-field cron expression or a macro (``@daily``); the time zone goes elsewhere."""
    text = " ".join(str(schedule).split()) if isinstance(schedule, str) else ""
    if "TZ=" in text:
        raise UsageError(
            f"Schedule {schedule!r} names a time zone; Kubernetes refuses TZ= in a schedule, "
            "so give the time zone separately (e.g. 'Europe/Berlin')."
        )
    fields = text.split(" ")
    if text in CRON_MACROS or (len(fields) == 5 and all(_CRON_FIELD.match(f) for f in fields)):
        return text
    raise UsageError(
        f"Schedule {schedule!r} is not a cron expression of five fields (minute hour day month "
        "weekday) or a macro such as '@daily'; e.g. '0 6 * * *' is 06:00 every day."
    )


def parse_pvc_uri(uri: str, what: str, notebook: bool = True) -> tuple[str, str, str]:
    """``pvc://<claim>/<folder>/<file>.ipynb`` as (claim, folder, file); ``notebook=False``:
    ``pvc://<claim>/<folder>`` as (claim, folder, "")."""
    shape = "pvc://<claim>/<folder>/<name>.ipynb" if notebook else "pvc://<claim>/<folder>"
    rest = uri[len("pvc://") :] if isinstance(uri, str) and uri.startswith("pvc://") else None
    claim, _, path = (rest or "").partition("/")
    segments = path.rstrip("/").split("/") if notebook else path.strip("/").split("/")
    valid = (
        rest is not None
        and len(claim) <= 253
        and bool(_DNS_SUBDOMAIN.match(claim))
        and all(_SEGMENT.match(s) and s.strip(".") for s in segments)
        and (not notebook or (len(segments) >= 2 and segments[-1].endswith(".ipynb")))
    )
    if not valid:
        raise UsageError(
            f"{what} {uri!r} is not a notebook on platform storage; give {shape}, with path "
            "parts of letters, digits, '.', '_' and '-'."
        )
    if notebook:
        return claim, "/".join(segments[:-1]), segments[-1]
    return claim, "/".join(segments), ""


def _check_value(value: Any, where: str) -> None:
    if value is None or isinstance(value, (bool, int, str)):
        if isinstance(value, str) and "\0" in value:
            raise UsageError(f"Parameter {where} contains a NUL character, which no argv holds.")
        return
    if isinstance(value, float):
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_value(item, f"{where}[{i}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise UsageError(f"Parameter {where} has a key {key!r}; mapping keys are strings.")
            _check_value(item, f"{where}[{key!r}]")
        return
    raise UsageError(
        f"Parameter {where} is a {type(value).__name__}; parameters are strings, numbers, "
        "booleans, None, lists and mappings (JSON values)."
    )


def _plain(value: Any) -> Any:
    """Lists and mappings as the plain types ``yaml.safe_dump`` writes (tuples as lists)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _kubelet_literal(text: str) -> str:
    # The kubelet expands $(VAR) in command and args, and $$ to $: doubled, a $ stays a $.
    return text.replace("$", "$$")


def parameter_args(parameters: Mapping[str, Any]) -> list[str]:
    """papermill options setting ``parameters``, one option (2-3 argv items) per parameter."""
    if not isinstance(parameters, Mapping):
        raise UsageError("Parameters must be a mapping of names to values.")
    args: list[str] = []
    for name, value in parameters.items():
        if not isinstance(name, str) or not _PARAMETER.match(name) or keyword.iskeyword(name):
            raise UsageError(
                f"Parameter name {name!r} is not a Python identifier; papermill assigns each "
                "parameter to a variable, so use letters, digits and '_' (e.g. 'start_date')."
            )
        _check_value(value, repr(name))
        if isinstance(value, str):
            args += ["-r", name, value]  # raw: papermill keeps it a string ("007" stays)
        elif value is None or isinstance(value, (bool, int, float)):
            # papermill reads True/None/42/0.1 back as such; repr of a float is exact, and
            # float() reads its "inf" and "nan" too.
            args += ["-p", name, repr(value)]
        else:
            # YAML (papermill's own reader for -y); safe_dump writes floats YAML 1.1 reads as
            # floats, which JSON's "1e-07" is not.
            doc = yaml.safe_dump(
                {name: _plain(value)}, default_flow_style=True, allow_unicode=True, width=2**30
            )
            args += ["-y", doc.strip()]
    size = sum(len(a.encode()) for a in args)
    if size > PARAMETERS_MAX_BYTES:
        raise TooLarge(
            f"Parameters take {size} bytes on the command line, more than "
            f"{PARAMETERS_MAX_BYTES}; put large inputs in a file beside the notebook and pass "
            "its name."
        )
    return [_kubelet_literal(a) for a in args]


def papermill_argv(input_path: str, output_path: str, parameters: Mapping[str, Any]) -> list[str]:
    """The container's command: papermill, its two paths, logging flags, the parameters."""
    return [
        "papermill",
        input_path,
        output_path,
        "--log-output",  # cell output in the pod's log, where kubectl logs finds it
        "--no-progress-bar",
        *parameter_args(parameters),
    ]


def provenance_labels(
    *, owner: str, team: str, profile: Profile, run_id: str | int | None = None,
    schedule_id: str | int | None = None,
) -> dict[str, str]:  # fmt: skip
    """Selectable facts; a value that is no valid label value stays annotation-only."""
    values = {
        "app.kubernetes.io/managed-by": "jupyter-mlplat",
        "app.kubernetes.io/component": "notebook-job",
        f"{PREFIX}owner": owner,
        f"{PREFIX}team": team,
        f"{PREFIX}profile": profile.slug,
        f"{PREFIX}run-id": "" if run_id is None else str(run_id),
        f"{PREFIX}schedule-id": "" if schedule_id is None else str(schedule_id),
    }
    return {k: v for k, v in values.items() if v and len(v) <= 63 and _LABEL_VALUE.match(v)}


def _env(profile: Profile, env: Mapping[str, str] | None) -> list[dict[str, Any]]:
    merged = {**profile.environment, **(env or {})}
    for name, value in merged.items():
        if not isinstance(name, str) or not _ENV_NAME.match(name) or name == JOB_NAME_ENV:
            raise UsageError(
                f"Environment variable name {name!r} cannot be set: use letters, digits, "
                f"'_', '-' and '.', not starting with a digit, and not {JOB_NAME_ENV}."
            )
        if not isinstance(value, str):
            raise UsageError(f"Environment variable {name} must be a string, not {value!r}.")
    items: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in merged.items()]
    job = {"fieldRef": {"fieldPath": f"metadata.labels['{JOB_NAME_LABEL}']"}}
    return [*items, {"name": JOB_NAME_ENV, "valueFrom": job}]


def _job_spec(
    *, profile: Profile, snapshot_uri: str, output: tuple[str, str, str],
    parameters: Mapping[str, Any], choice: GpuChoice | None, deadline_seconds: int,
    ttl_seconds: int, gpu_node_labels: Mapping[str, Sequence[str]] | None,
    service_account: str | None, env: Mapping[str, str] | None, labels: dict[str, str],
    annotations: dict[str, str],
) -> dict[str, Any]:  # fmt: skip
    _check_seconds("The deadline", deadline_seconds, 1)
    _check_seconds("The TTL after finishing", ttl_seconds, 0)
    snap_claim, snap_folder, snap_file = parse_pvc_uri(snapshot_uri, "Snapshot URI")
    out_claim, out_folder, out_file = output
    if snap_claim == out_claim and (
        f"{out_folder}/".startswith(f"{snap_folder}/")
        or f"{snap_folder}/".startswith(f"{out_folder}/")
    ):
        raise UsageError(
            f"The output folder {out_folder!r} and the snapshot folder {snap_folder!r} overlap "
            "on one claim; a snapshot is immutable, so write the output to a folder of its own."
        )
    if service_account is not None and not (
        len(service_account) <= 253 and _DNS_SUBDOMAIN.match(service_account)
    ):
        raise UsageError(
            f"Service account {service_account!r} is not a Kubernetes name; use lowercase "
            "letters, digits, '-' and '.'."
        )
    limits: dict[str, str] = {
        "cpu": cpu_quantity(profile.cpu_limit),
        "memory": memory_quantity(profile.mem_limit),
    }
    if choice is not None:
        limits[GPU_RESOURCE] = str(choice.count)
    if snap_claim == out_claim:
        volumes = {snap_claim: "storage"}
    else:
        volumes = {snap_claim: "snapshot", out_claim: "output"}
    container = {
        "name": CONTAINER,
        "image": profile.image,
        "command": papermill_argv(
            f"{SNAPSHOT_DIR}/{snap_file}", f"{OUTPUT_DIR}/{out_file}", parameters
        ),
        # Files the notebook writes by relative path land beside its output, not in the
        # read-only snapshot.
        "workingDir": OUTPUT_DIR,
        "env": _env(profile, env),
        "resources": {
            "requests": {
                "cpu": cpu_quantity(profile.cpu_guarantee),
                "memory": memory_quantity(profile.mem_guarantee),
            },
            "limits": limits,
        },
        "volumeMounts": [
            {
                "name": volumes[snap_claim],
                "mountPath": f"{SNAPSHOT_DIR}/{snap_file}",
                "subPath": f"{snap_folder}/{snap_file}",  # the file alone
                "readOnly": True,
            },
            {"name": volumes[out_claim], "mountPath": OUTPUT_DIR, "subPath": out_folder},
        ],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        # papermill's last lines (the failing cell) become the pod's termination message.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        # A notebook gets a Kubernetes token only from a service account it is given.
        "automountServiceAccountToken": service_account is not None,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": [
            {"name": volume, "persistentVolumeClaim": {"claimName": claim}}
            for claim, volume in volumes.items()
        ],
    }
    if service_account is not None:
        pod["serviceAccountName"] = service_account
    if choice is not None:
        pod["nodeSelector"] = dict(choice.type.node_selector)
        if choice.type.tolerations:
            pod["tolerations"] = [dict(t) for t in choice.type.tolerations]
    elif gpu_node_labels:
        pod["affinity"] = _avoid_gpu_nodes(gpu_node_labels)
    return {
        "backoffLimit": 0,
        "activeDeadlineSeconds": deadline_seconds,
        "ttlSecondsAfterFinished": ttl_seconds,
        "template": {
            "metadata": {"labels": dict(labels), "annotations": dict(annotations)},
            "spec": pod,
        },
    }


def _annotations(
    *, owner: str, team: str, profile: Profile, snapshot_uri: str, snapshot_digest: str,
    output_uri: str, ident: tuple[str, str | int], choice: GpuChoice | None,
) -> dict[str, str]:  # fmt: skip
    if not isinstance(snapshot_digest, str) or not _DIGEST.match(snapshot_digest):
        raise UsageError(
            f"Snapshot digest {snapshot_digest!r} is not a SHA-256 digest; give 64 lowercase "
            "hex digits (optionally after 'sha256:')."
        )
    for what, value in (("Owner", owner), ("Team", team)):
        if not isinstance(value, str) or not value:
            raise UsageError(f"{what} must be a non-empty string, not {value!r}.")
    return {
        f"{PREFIX}owner": owner,
        f"{PREFIX}team": team,
        f"{PREFIX}{ident[0]}": str(ident[1]),
        f"{PREFIX}profile": profile.slug,
        # 64 hex digits are one too many for a label value.
        f"{PREFIX}snapshot-digest": snapshot_digest,
        f"{PREFIX}snapshot-uri": snapshot_uri,
        f"{PREFIX}output-uri": output_uri,
        f"{PREFIX}gpu": choice.key if choice is not None else NO_GPU,
    }


def notebook_job(
    *,
    name: str,
    profile: Profile,
    owner: str,
    team: str,
    snapshot_uri: str,
    snapshot_digest: str,
    parameters: Mapping[str, Any],
    run_id: str | int,
    output_uri: str,
    deadline_seconds: int,
    ttl_seconds: int,
    gpu: str | None = None,
    gpu_node_labels: Mapping[str, Sequence[str]] | None = None,
    namespace: str | None = None,
    service_account: str | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``Job`` running the snapshot once, writing the executed notebook to ``output_uri``.

    ``snapshot_uri`` and ``output_uri`` are ``pvc://<claim>/<folder>/<name>.ipynb`` (see the
    module docstring). ``namespace`` defaults to the profile's. ``gpu`` is one of the
    profile's GPU choice keys (``None``: its default, ``"none"``: no GPU); without a GPU and
    with ``gpu_node_labels`` (``profiles.render.gpu_node_labels``) the pod avoids GPU nodes.
    ``env`` adds to (and overrides) the profile's environment.
    """
    check_name("Job", name)
    namespace = _namespace(namespace, profile)
    output = parse_pvc_uri(output_uri, "Output URI")
    choice = gpu_choice(profile, gpu)
    labels = provenance_labels(owner=owner, team=team, profile=profile, run_id=run_id)
    annotations = _annotations(
        owner=owner, team=team, profile=profile, snapshot_uri=snapshot_uri,
        snapshot_digest=snapshot_digest, output_uri=output_uri, ident=("run-id", run_id),
        choice=choice,
    )  # fmt: skip
    spec = _job_spec(
        profile=profile, snapshot_uri=snapshot_uri, output=output, parameters=parameters,
        choice=choice, deadline_seconds=deadline_seconds,
        ttl_seconds=ttl_seconds, gpu_node_labels=gpu_node_labels,
        service_account=service_account, env=env, labels=labels, annotations=annotations,
    )  # fmt: skip
    return {
        "apiVersion": API_VERSION,
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    }


def notebook_cronjob(
    *,
    name: str,
    schedule: str,
    timezone: str | None,
    profile: Profile,
    owner: str,
    team: str,
    snapshot_uri: str,
    snapshot_digest: str,
    parameters: Mapping[str, Any],
    schedule_id: str | int,
    output_dir_uri: str,
    deadline_seconds: int,
    ttl_seconds: int,
    starting_deadline_seconds: int | None,
    successful_jobs_history_limit: int = 3,
    failed_jobs_history_limit: int = 3,
    gpu: str | None = None,
    gpu_node_labels: Mapping[str, Sequence[str]] | None = None,
    namespace: str | None = None,
    service_account: str | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``CronJob`` running the snapshot on ``schedule``, never two runs at once.

    Each Job it creates writes ``<output_dir_uri>/<job name>.ipynb`` (``output_dir_uri`` is
    ``pvc://<claim>/<folder>``; the pod learns its Job's name from the Job controller's
    label), so runs never overwrite each other. ``timezone`` is an IANA name (``None``: the
    controller's, usually UTC). ``starting_deadline_seconds`` (>= 10, or ``None``) is how
    late a missed start may still run. Other inputs as :func:`notebook_job`.
    """
    check_name("CronJob", name)
    namespace = _namespace(namespace, profile)
    schedule = check_schedule(schedule)
    if timezone is not None:
        check_timezone(timezone)
    if starting_deadline_seconds is not None:
        _check_seconds("The starting deadline", starting_deadline_seconds, MIN_STARTING_DEADLINE)
    _check_seconds("The successful jobs history limit", successful_jobs_history_limit, 0)
    _check_seconds("The failed jobs history limit", failed_jobs_history_limit, 0)
    claim, folder, _ = parse_pvc_uri(output_dir_uri, "Output folder URI", notebook=False)
    # $(VAR) is the kubelet's expansion of the pod's own variable, not a shell's.
    output = (claim, folder, f"$({JOB_NAME_ENV}).ipynb")
    choice = gpu_choice(profile, gpu)
    labels = provenance_labels(owner=owner, team=team, profile=profile, schedule_id=schedule_id)
    annotations = _annotations(
        owner=owner, team=team, profile=profile, snapshot_uri=snapshot_uri,
        snapshot_digest=snapshot_digest, output_uri=output_dir_uri,
        ident=("schedule-id", schedule_id), choice=choice,
    )  # fmt: skip
    job_spec = _job_spec(
        profile=profile, snapshot_uri=snapshot_uri, output=output, parameters=parameters,
        choice=choice, deadline_seconds=deadline_seconds,
        ttl_seconds=ttl_seconds, gpu_node_labels=gpu_node_labels,
        service_account=service_account, env=env, labels=labels, annotations=annotations,
    )  # fmt: skip
    spec: dict[str, Any] = {
        "schedule": schedule,
        "concurrencyPolicy": "Forbid",
        "successfulJobsHistoryLimit": successful_jobs_history_limit,
        "failedJobsHistoryLimit": failed_jobs_history_limit,
        "jobTemplate": {
            "metadata": {"labels": dict(labels), "annotations": dict(annotations)},
            "spec": job_spec,
        },
    }
    if timezone is not None:
        spec["timeZone"] = timezone
    if starting_deadline_seconds is not None:
        spec["startingDeadlineSeconds"] = starting_deadline_seconds
    return {
        "apiVersion": API_VERSION,
        "kind": "CronJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    }


def _namespace(namespace: str | None, profile: Profile) -> str:
    namespace = namespace or profile.namespace
    if not isinstance(namespace, str) or len(namespace) > 63 or not _DNS_LABEL.match(namespace):
        raise UsageError(
            f"Namespace {namespace!r} is not a DNS-1123 label; use lowercase letters, digits "
            "and '-', e.g. 'mlplat-fraud'."
        )
    return namespace
