"""Embedded-mode spawner: local processes that honour the team profiles.

On one machine a profile's environment, working directory and GPU choice
(``CUDA_VISIBLE_DEVICES``) are applied; CPU and memory limits, the image, the
namespace and the GPU type cannot be enforced, and the options form says so.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from jupyterhub.spawner import SimpleLocalProcessSpawner
from tornado import web
from traitlets import Unicode, default

from ..errors import MlplatError
from ..profiles import load_profiles

NOT_ENFORCED = (
    "On this single machine the profile's environment, working directory and GPU count "
    "(CUDA_VISIBLE_DEVICES) apply; CPU and memory limits, the container image, the "
    "Kubernetes namespace and the GPU type are not enforced."
)


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
        return self._profiles().for_groups(user_groups(self.user))

    @default("options_form")
    def _default_options_form(self):
        return self._render_form

    def _render_form(self, spawner) -> str:
        rows = []
        for index, profile in enumerate(self._allowed()):
            checked = " checked" if (profile.default or index == 0) else ""
            gpu = ""
            choices = profile.gpu_choices()
            if len(choices) > 1:
                options = "".join(
                    f'<option value="{html.escape(key)}">{html.escape(label)}</option>'
                    for key, label in choices.items()
                )
                gpu = (
                    f'<label>GPU <select name="gpu-{html.escape(profile.slug)}">{options}'
                    "</select></label>"
                )
            rows.append(
                '<div class="radio"><label>'
                f'<input type="radio" name="profile" value="{html.escape(profile.slug)}"{checked}> '
                f"<b>{html.escape(profile.display_name)}</b> — {html.escape(profile.description)}"
                f"</label> {gpu}</div>"
            )
        return "".join(rows) + f'<p class="help-block">{html.escape(NOT_ENFORCED)}</p>'

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
            resolved = self._profiles().resolve(slug, options, user_groups(self.user))
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
        return env

    def user_env(self, env):
        env = super().user_env(env)
        Path(self.home_dir).mkdir(parents=True, exist_ok=True)
        return env


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
