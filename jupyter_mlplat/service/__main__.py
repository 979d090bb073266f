"""``python -m jupyter_mlplat.service``: run the platform service (JupyterHub starts it).

JupyterHub passes JUPYTERHUB_API_URL, JUPYTERHUB_API_TOKEN, JUPYTERHUB_SERVICE_NAME,
JUPYTERHUB_SERVICE_URL and JUPYTERHUB_SERVICE_PREFIX; :mod:`jupyter_mlplat.settings`
reads them.
"""

import sys

from .app import main

sys.exit(main())
