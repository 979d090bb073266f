"""JupyterHub configuration of jupyter-mlplat, for both modes.

The mode comes from MLPLAT_MODE (`embedded` by default, or `kubernetes`); everything
else is in jupyter_mlplat.hub.config. Override knobs in a config loaded before this
file, e.g. ``jupyterhub -f my_config.py`` where my_config.py sets
``c.MlplatHub.port = 9000`` and then calls ``load_subconfig(<this file>)``.
"""

import os

from jupyter_mlplat.hub.config import configure

# Nothing the hub and the services it starts write (secrets, databases, artifacts, logs)
# may be readable by other accounts: users' servers run as their own accounts.
os.umask(0o077)
c = get_config()  # noqa: F821 - provided by JupyterHub
configure(c)
