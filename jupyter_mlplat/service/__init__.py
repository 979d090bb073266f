"""The platform service: shared state and long-running work behind one REST API.

JupyterHub runs it as a managed service (``python -m jupyter_mlplat.service``) at
``/services/mlplat/``; every request carries a JupyterHub token (see :mod:`.auth`).
The same operations (:mod:`.operations`) run in-process when there is no hub, so
:class:`jupyter_mlplat.client.PlatformClient` behaves the same either way.

Importing this package is cheap; :mod:`.app` pulls in tornado and JupyterHub.
"""
