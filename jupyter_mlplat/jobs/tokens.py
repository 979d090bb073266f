"""A job's token of its owner, from JupyterHub: the job logs to MLflow as them.

The platform service asks the Hub (its role has the ``tokens`` scope) for a token of the
owner limited to MLflow and the platform service, expiring after the job's longest time, so
a scheduled notebook logs as its owner while their server is stopped or culled, through
MLflow's authenticated path, and the token is useless afterwards.
"""

from __future__ import annotations

from urllib.parse import quote

from ..errors import ServiceUnavailable


def owner_token(
    api_url: str, api_token: str, user: str, expires_in: float, scopes: list[str], note: str
) -> str:
    import requests

    url = f"{api_url.rstrip('/')}/users/{quote(user, safe='')}/tokens"
    try:
        answer = requests.post(
            url,
            json={"expires_in": int(expires_in), "scopes": scopes, "note": note},
            headers={"Authorization": f"token {api_token}"},
            timeout=30,
        )
    except requests.RequestException as exc:
        raise ServiceUnavailable(
            f"JupyterHub at {api_url} did not answer when asked for a token of {user} for "
            f"their job ({exc}); the job was not started."
        ) from exc
    if answer.status_code not in (200, 201):
        raise ServiceUnavailable(
            f"JupyterHub refused a token of {user} for their job (HTTP {answer.status_code}: "
            f"{answer.text[:200]}); grant the platform service the scope 'tokens'."
        )
    return answer.json()["token"]
