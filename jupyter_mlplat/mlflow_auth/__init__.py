"""MLflow behind JupyterHub identity: the ``mlplat-hub`` MLflow app.

``mlflow server --app-name mlplat-hub`` runs MLflow's own authorization app
(``mlflow.server.auth``: default permission NO_PERMISSIONS, fail-closed) with

- :mod:`.hub_identity` — the authorization function: a JupyterHub token (the header
  ``Authorization: Bearer <token>`` that MLflow clients send for MLFLOW_TRACKING_TOKEN, or
  the cookie the hub login sets for the UI), or the platform's own secret;
- :mod:`.grants` — permissions derived from hub groups, kept in MLflow's auth store:
  members of team T edit experiments ``T/…``, reviewers and admins read everything;
- :mod:`.rules` — what only the platform may do (registry writes) and experiment naming;
- :mod:`.app` — the factory tying them to MLflow's Flask app, with the hub OAuth login.
"""

PLATFORM_USER = "mlplat-platform"
TOKEN_COOKIE = "mlplat-mlflow-token"
