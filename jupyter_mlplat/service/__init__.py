"""The platform service: shared state and long-running work behind one REST API.

JupyterHub runs it as a managed service (``python -m jupyter_mlplat.service``) at
``/services/mlplat/``; every request carries a JupyterHub token (see :mod:`.auth`).
It is HTTP only: routes come from the endpoint declarations of
:mod:`jupyter_mlplat.application`, which the client's in-process transport calls too.

Importing this package is cheap; :mod:`.app` pulls in tornado and JupyterHub.
"""
