"""Embedded-mode spawner: local processes that honour the team profiles.

On one machine a profile's environment, working directory and GPU choice
(``CUDA_VISIBLE_DEVICES``) are applied; CPU and memory limits, the image, the
namespace and the GPU type cannot be enforced, and the options form says so.

When the hub runs as root, each hub user's server runs as an OS account of its own
(``jupyter-alice``, made on first spawn, see :mod:`.accounts`) with a private home;
otherwise every server runs as the hub's own account. Before a server starts, its home
is prepared (:mod:`.home`: example notebooks, Lab settings, kernel config, feature repo).
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

from jupyterhub.spawner import SimpleLocalProcessSpawner, set_user_setuid
from tornado import web
from traitlets import Bool, Unicode, default

from ..errors import MlplatError
from ..profiles import load_profiles, profiles_for_groups, resolve
from .accounts import account_name, ensure_account, ensure_home, unreachable_part
from .home import FEATURE_REPO_DIR, copy_examples, pack_repo, prepare

__all__ = ["MlplatLocalSpawner", "copy_examples", "running_as_root"]

NOT_ENFORCED = (
    "On this single machine the profile's environment, working directory and GPU count "
    "(CUDA_VISIBLE_DEVICES) apply; CPU and memory limits, the container image, the "
    "Kubernetes namespace and the GPU type are not enforced."
)


# Shows a profile's GPU choice only while that profile is selected; a disabled
# fieldset is not posted, and options_from_form reads only the chosen profile's choice.
_FORM_SCRIPT = """<script>
(function () {
  var root = document.getElementById("mlplat-profiles");
  function sync() {
    root.querySelectorAll("fieldset[data-gpu-of]").forEach(function (box) {
      var radio = document.getElementById("mlplat-profile-" + box.dataset.gpuOf);
      var on = !!(radio && radio.checked);
      box.disabled = !on;
      box.hidden = !on;
    });
  }
  root.addEventListener("change", sync);
  sync();
})();
</script>"""


def user_groups(user) -> list[str]:
    return [group.name for group in getattr(user, "groups", [])]


class MlplatLocalSpawner(SimpleLocalProcessSpawner):
    """Local single-user servers with a team profile chosen in the options form or API."""

    profiles_dir = Unicode(
        config=True,
        help="""Folder of team profiles (YAML). Example:
        c.MlplatLocalSpawner.profiles_dir = "/srv/mlplat/spawner_profiles" """,
    )

    @default("options_from_form")
    def _default_options_from_form(self):
        return "simple"

    def _profiles(self):
        return load_profiles(Path(self.profiles_dir))

    def _allowed(self):
        return profiles_for_groups(self._profiles(), user_groups(self.user))

    @default("options_form")
    def _default_options_form(self):
        return self._render_form

    def _render_form(self, spawner) -> str:
        profiles = self._allowed()
        chosen = next((p for p in profiles if p.default), profiles[0] if profiles else None)
        items = [_profile_item(p, p is chosen) for p in profiles]
        return (
            '<div id="mlplat-profiles">'
            '<fieldset class="mb-3"><legend class="form-label fs-5">Team profile</legend>'
            + "".join(items)
            + "</fieldset>"
            f'<p class="form-text">{html.escape(NOT_ENFORCED)}</p>' + _FORM_SCRIPT + "</div>"
        )

    def options_from_form(self, form_data):
        slug = (form_data.get("profile") or [""])[0]
        options = {"profile": slug}
        gpu = form_data.get(f"gpu-{slug}")
        if gpu:
            options["gpu"] = gpu[0]
        return options

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return self._apply_profile

    def _apply_profile(self, spawner, user_options: dict) -> None:
        options = dict(user_options or {})
        slug = options.pop("profile", None)
        try:
            resolved = resolve(self._profiles(), slug, options, user_groups(self.user))
        except MlplatError as exc:
            raise web.HTTPError(getattr(exc, "http_status", 400), str(exc)) from exc
        self.resolved_profile = resolved
        self.environment = {**self.environment, **resolved.env}
        self.log.info("Spawning %s with profile %s", self.user.name, resolved.slug)

    resolved_profile = None

    def get_env(self):
        env = super().get_env()
        if self.resolved_profile is None:
            # API spawns without options get the user's default profile.
            self._apply_profile(self, {})
            env.update(self.resolved_profile.env)
        env["MLPLAT_PROFILE"] = self.resolved_profile.slug
        if self.isolate_users:
            # The platform's data dir is closed to users: the kernel config and the
            # feature repo come from the user's own home.
            env.pop("IPYTHONDIR", None)
            if self.copy_feature_repo and self.feature_repo:
                env["MLPLAT_FEATURE_REPO"] = str(Path(self.home_dir) / FEATURE_REPO_DIR)
        return env

    def user_env(self, env):
        env = super().user_env(env)
        if self.isolate_users:
            env["USER"] = env["LOGNAME"] = self.account
        else:
            Path(self.home_dir).mkdir(parents=True, exist_ok=True)
        return env

    isolate_users = Bool(
        help="""Whether each hub user's server runs as its own OS account; true exactly
        when the hub runs as root (only root can switch users)."""
    )

    @default("isolate_users")
    def _default_isolate_users(self):
        return running_as_root()

    account_prefix = Unicode(
        "jupyter-",
        config=True,
        help="""Prefix of the OS account of a hub user when the hub runs as root: hub user
        alice runs as jupyter-alice (made with useradd on first spawn). A prefix keeps a hub
        user named root from ever being OS root. Example:
        c.MlplatLocalSpawner.account_prefix = "mlplat-" """,
    )

    @property
    def account(self) -> str:
        """The OS account the server runs as (the hub's own when not isolating)."""
        if not self.isolate_users:
            return pwd.getpwuid(os.getuid()).pw_name
        return account_name(self.account_prefix, self.user.name)

    home_dir_template = Unicode(
        config=True,
        help="""Home (working directory) of a user's server; {username} is the hub user,
        {account} the OS account. Default /home/{account} (/home/jupyter-alice) when users
        have their own accounts, else $MLPLAT_HOME/users/{username} (set by the hub
        config). Example: c.MlplatLocalSpawner.home_dir_template = "/srv/homes/{account}" """,
    )

    @default("home_dir_template")
    def _default_home_dir_template(self):
        return "/home/{account}" if self.isolate_users else "/tmp/{username}"

    @default("home_dir")
    def _default_home_dir(self):
        account = self.account if self.isolate_users else ""
        return self.home_dir_template.format(username=self.user.name, account=account)

    python = Unicode(
        config=True,
        help="""Python the single-user servers run with (and, when users have their own
        OS accounts, the home preparation); its folders must be readable by the users.
        Default the hub's own Python.
        Example: c.MlplatLocalSpawner.python = "/opt/mlplat/venv/bin/python" """,
    )

    @default("python")
    def _default_python(self):
        return sys.executable

    @default("cmd")
    def _default_cmd(self):
        return [self.python, "-m", "jupyterhub.singleuser"]

    feature_repo = Unicode(
        config=True,
        help="""The platform's feature repo (the hub config sets it to MLPLAT_FEATURE_REPO).
        Example: c.MlplatLocalSpawner.feature_repo = "/srv/mlplat/feature_repo" """,
    )

    copy_feature_repo = Bool(
        True,
        config=True,
        help="""When users have their own OS accounts, copy the platform's feature repo
        into a user's home (~/feature_repo) on first spawn and point MLPLAT_FEATURE_REPO
        there: the platform's copy lives in its private data dir. Turn off when
        feature_repo is readable by every user. Example:
        c.MlplatLocalSpawner.copy_feature_repo = False""",
    )

    examples_dir = Unicode(
        config=True,
        help="""Folder whose notebooks are copied into a user's working directory at spawn
        (never over a file the user has, never again once copied); empty for none. Default
        the examples shipped in the package (jupyter_mlplat/resources/example_notebooks).
        Example: c.MlplatLocalSpawner.examples_dir = "/srv/mlplat/examples" """,
    )

    @default("examples_dir")
    def _default_examples_dir(self):
        from ..resources import example_notebooks_dir

        return str(example_notebooks_dir())

    def make_preexec_fn(self, name):
        if not self.isolate_users:
            return super().make_preexec_fn(name)
        switch = set_user_setuid(self.account, chdir=False)
        home = self.home_dir

        def preexec():
            switch()
            os.chdir(home)

        return preexec

    def prepare_home(self) -> list[str]:
        """Create the working directory and fill it (see :mod:`.home`).

        Returns the example files copied this time.
        """
        home = Path(self.home_dir)
        if self.isolate_users:
            copied = self._prepare_own_home(home)
        else:
            copied = prepare(home, self.examples_dir)
        if copied:
            self.log.info(
                "Copied %s into %s's working directory", ", ".join(copied), self.user.name
            )
        return copied

    def _prepare_own_home(self, home: Path) -> list[str]:
        """The account and its home (as root), then the contents (as the account)."""
        entry = ensure_account(self.account, home)
        ensure_home(home, entry)
        blocked = unreachable_part(self.python, entry.pw_uid, entry.pw_gid)
        if blocked:
            raise MlplatError(
                f"{self.account} cannot run {self.python}: {blocked} is closed to other "
                "accounts. Install the platform's Python where users can read it and set "
                "c.MlplatLocalSpawner.python to it."
            )
        command = [self.python, "-m", "jupyter_mlplat.hub.home", str(home), "--kernel-config"]
        if self.examples_dir:
            command += ["--examples", self.examples_dir]
        repo = Path(self.feature_repo) if self.feature_repo else None
        data = b""
        # Only the first spawn copies it: the copy is the user's from then on.
        first = not (home / FEATURE_REPO_DIR).exists()
        if self.copy_feature_repo and repo is not None and repo.is_dir() and first:
            data = pack_repo(repo)
            command.append("--repo-on-stdin")
        result = subprocess.run(
            command,
            input=data,
            capture_output=True,
            preexec_fn=set_user_setuid(self.account, chdir=False),
            env={"PATH": os.environ.get("PATH", os.defpath), "HOME": str(home), "LANG": "C.UTF-8"},
            cwd=home,
            timeout=120,
        )
        if result.returncode != 0:
            raise MlplatError(
                f"Preparing {home} as {self.account} failed: "
                f"{result.stderr.decode(errors='replace').strip()[-2000:]}"
            )
        return json.loads(result.stdout.decode().strip().splitlines()[-1])

    async def start(self):
        try:
            # Account creation and copying block; keep the hub's loop free meanwhile.
            await asyncio.to_thread(self.prepare_home)
        except MlplatError as exc:
            self.log.error("Cannot start %s's server: %s", self.user.name, exc)
            raise web.HTTPError(500, str(exc)) from exc
        return await super().start()


def _profile_item(profile, checked: bool) -> str:
    slug = html.escape(profile.slug)
    radio_id = f"mlplat-profile-{slug}"
    item = (
        '<div class="form-check mb-3">'
        f'<input class="form-check-input" type="radio" name="profile" id="{radio_id}" '
        f'value="{slug}"{" checked" if checked else ""}>'
        f'<label class="form-check-label" for="{radio_id}">'
        f"<strong>{html.escape(profile.display_name)}</strong></label>"
        f'<div class="form-text">{html.escape(profile.description)}</div>'
    )
    choices = profile.gpu_choices()
    if len(choices) > 1:
        default = profile.default_gpu_key
        options = "".join(
            f'<option value="{html.escape(key)}"{" selected" if key == default else ""}>'
            f"{html.escape(label)}</option>"
            for key, label in choices.items()
        )
        hidden = "" if checked else " disabled hidden"
        item += (
            f'<fieldset class="mt-2" data-gpu-of="{slug}"{hidden}>'
            f'<label class="form-label" for="mlplat-gpu-{slug}">GPU</label>'
            f'<select class="form-select" id="mlplat-gpu-{slug}" name="gpu-{slug}">'
            f"{options}</select></fieldset>"
        )
    return item + "</div>"


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
