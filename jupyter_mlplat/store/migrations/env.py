"""Alembic environment of the platform store, driven from code (no alembic.ini).

:func:`jupyter_mlplat.store.db.Store.upgrade` passes an open connection in
``config.attributes["connection"]``; new revisions can be generated against a
scratch database with::

    from alembic import command
    from jupyter_mlplat.store.db import Store, alembic_config
    store = Store("sqlite:////tmp/scratch.db")
    with store.engine.begin() as connection:
        command.revision(alembic_config(connection), "what changed", autogenerate=True)
"""

from __future__ import annotations

from alembic import context

from jupyter_mlplat.store.db import VERSION_TABLE
from jupyter_mlplat.store.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "Run the platform migrations through jupyter_mlplat.store.db.upgrade(url); "
        "they need an open connection."
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
