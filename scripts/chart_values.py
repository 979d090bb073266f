"""Write the generated parts of helm/mlplat: values.yaml's `jupyterhub:` (below its
`# --- generated ---`) and, in values.schema.json, the names `platform.settings` may use.

It is the z2jh configuration the platform needs (hub image and config, the services, the
Secret's tokens as environment, Pod Security settings of users' pods, the idle culler)
merged with `mlplat profiles render --format helm-values` of spawner_profiles/.

    python scripts/chart_values.py           # rewrite values.yaml
    python scripts/chart_values.py --check   # exit 1 when values.yaml is not current
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from jupyter_mlplat.hub.z2jh import EXTRA_CONFIG, EXTRA_CONFIG_KEY
from jupyter_mlplat.profiles import helm_values, load_profiles
from jupyter_mlplat.profiles.render import merge_values

ROOT = Path(__file__).resolve().parent.parent
VALUES = ROOT / "helm" / "mlplat" / "values.yaml"
SCHEMA = ROOT / "helm" / "mlplat" / "values.schema.json"
MARKER = "# --- generated ---\n"


def _secret_env(key: str) -> dict:
    return {"valueFrom": {"secretKeyRef": {"name": "mlplat-secrets", "key": key}}}


# Users' pods run in the team namespaces, whose Pod Security Admission is "restricted".
_RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}

STATIC = {
    "enabled": True,
    # Plain names (hub, proxy-public): the platform's Deployment reaches http://hub:8081.
    "fullnameOverride": "",
    "hub": {
        "image": {"name": "registry.example.com/jupyter-mlplat/hub", "tag": "0.1.0"},
        "config": {
            "JupyterHub": {"admin_access": False, "authenticator_class": "generic-oauth"},
            "MlplatKubeHub": {
                "platform_url": "http://mlplat-platform:8080",
                "mlflow_url": "http://mlplat-mlflow:5000",
            },
            "KubeSpawner": {"container_security_context": _RESTRICTED_CONTAINER},
        },
        "services": {
            "mlplat": {"url": "http://mlplat-platform:8080", "display": True},
            "mlflow": {"url": "http://mlplat-mlflow:5000", "display": True},
        },
        "extraEnv": {
            "MLPLAT_SERVICE_TOKEN": _secret_env("platform-token"),
            "MLPLAT_MLFLOW_SERVICE_TOKEN": _secret_env("mlflow-token"),
        },
        "extraConfig": {EXTRA_CONFIG_KEY: EXTRA_CONFIG},
        # Users' servers live in the team namespaces, labelled to be let in.
        "networkPolicy": {"interNamespaceAccessLabels": "accept"},
    },
    "proxy": {"chp": {"networkPolicy": {"interNamespaceAccessLabels": "accept"}}},
    "singleuser": {
        "image": {"name": "registry.example.com/jupyter-mlplat/singleuser", "tag": "0.1.0"},
        # The iptables init container is privileged, which "restricted" refuses; the team
        # namespaces' default-deny egress keeps the metadata server out of reach instead.
        "cloudMetadata": {"blockWithIptables": False},
        "extraPodConfig": {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
        },
        "defaultUrl": "/lab",
    },
    "cull": {"enabled": True, "timeout": 3600, "every": 600},
}


def jupyterhub_values(profiles_dir: Path = ROOT / "spawner_profiles") -> dict:
    rendered = helm_values(load_profiles(profiles_dir))["jupyterhub"]
    values = merge_values(STATIC, rendered)
    # The profile filter must run before ours: keep its key first.
    values["hub"]["extraConfig"] = {
        **rendered["hub"]["extraConfig"],
        EXTRA_CONFIG_KEY: EXTRA_CONFIG,
    }
    return {"jupyterhub": values}


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render() -> str:
    head, found, _ = VALUES.read_text().partition(MARKER)
    if not found:
        raise SystemExit(f"{VALUES} has no line {MARKER.strip()!r} to write below.")
    body = yaml.dump(jupyterhub_values(), Dumper=_Dumper, sort_keys=False, width=100)
    return head + MARKER + body


def render_schema() -> str:
    """values.schema.json with platform.settings' keys limited to MlplatSettings' knobs, so a
    misspelt one is refused at install instead of being ignored by the platform."""
    import json

    from jupyter_mlplat.settings import MlplatSettings

    schema = json.loads(SCHEMA.read_text())
    settings = schema["properties"]["platform"]["properties"]["settings"]
    names = sorted(MlplatSettings.class_traits(config=True))
    settings["propertyNames"] = {"enum": names}
    return json.dumps(schema, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check values.yaml")
    args = parser.parse_args(argv)
    outputs = {VALUES: render(), SCHEMA: render_schema()}
    if args.check:
        stale = [str(path) for path, text in outputs.items() if path.read_text() != text]
        if stale:
            print(f"{', '.join(stale)} not current: run python scripts/chart_values.py",
                  file=sys.stderr)  # fmt: skip
            return 1
        return 0
    for path, text in outputs.items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
