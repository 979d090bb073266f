"""Embedded-mode authenticator: users, groups and password hashes from a YAML file."""

from __future__ import annotations

from pathlib import Path

from jupyterhub.auth import Authenticator
from traitlets import Unicode, default

from .users import load_users, verify_password


class MlplatFileAuthenticator(Authenticator):
    """Log in users listed in the users file; their groups become JupyterHub groups.

    There is no sign-up: only users in the file can log in. The file is re-read
    when it changes, so adding a user needs no hub restart. The file is the source of
    truth for groups too: every request of a logged-in user or token re-checks it (at most
    every ``auth_refresh_age`` seconds), so a user removed from the file is refused at
    once, cookies and tokens alike (``auth_refresh_strict``), and a group change applies
    to the next request, whatever the hub's REST API was told in between.
    """

    users_file = Unicode(
        config=True,
        help="""YAML file of users (see jupyter_mlplat.hub.users).
        Example: c.MlplatFileAuthenticator.users_file = "/srv/mlplat/hub/users.yaml" """,
    )

    @default("users_file")
    def _default_users_file(self):
        from ..settings import get_settings

        return str(Path(get_settings().home) / "hub" / "users.yaml")

    @default("manage_groups")
    def _default_manage_groups(self):
        return True

    _cache: tuple[tuple, dict] | None = None

    def _records(self) -> dict:
        path = Path(self.users_file)
        stat = path.stat()
        # Every change replaces the file (a new inode), so this never misses one.
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, load_users(path))
        return self._cache[1]

    def check_allowed(self, username, authentication=None):
        return username in self._records()

    @default("auth_refresh_age")
    def _default_auth_refresh_age(self):
        return 1  # reading the (cached) users file is cheap

    @default("auth_refresh_strict")
    def _default_auth_refresh_strict(self):
        return True

    async def refresh_user(self, user, handler=None):
        record = self._records().get(user.name)
        if record is None:
            self.log.warning("%s is no longer in the users file: refused", user.name)
            return False
        if sorted(g.name for g in user.groups) == sorted(record.groups):
            return True
        return {"name": user.name, "groups": list(record.groups)}

    async def authenticate(self, handler, data):
        username = (data or {}).get("username", "")
        password = (data or {}).get("password", "")
        record = self._records().get(username)
        if record is None or not verify_password(password, record.password_hash):
            self.log.warning("Failed login for %r", username)
            return None
        return {"name": username, "groups": list(record.groups)}
