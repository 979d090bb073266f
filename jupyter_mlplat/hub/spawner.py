"""Embedded-mode spawner: local processes that honour the team profiles.

On one machine a profile's environment, working directory and GPU choice
(``CUDA_VISIBLE_DEVICES``) are applied; CPU and memory limits, the image, the
namespace and the GPU type cannot be enforced, and the options form says so.

Before a server starts, the user's working directory gets the example notebooks the
user does not have yet (an edited or deleted example is never overwritten or brought
back) and a JupyterLab setting that answers "no" to the news question of a first visit.
"""

from __future__ import annotations

import html
import json
import os
import shutil
from pathlib import Path

from jupyterhub.spawner import SimpleLocalProcessSpawner
from tornado import web
from traitlets import Unicode, default

from ..errors import MlplatError
from ..profiles import load_profiles, profiles_for_groups, resolve

NOT_ENFORCED = (
    "On this single machine the profile's environment, working directory and GPU count "
    "(CUDA_VISIBLE_DEVICES) apply; CPU and memory limits, the container image, the "
    "Kubernetes namespace and the GPU type are not enforced."
)


# JupyterLab 4 asks on first open whether to fetch Jupyter news, unless this user setting
# says so (`LabApp.news_url = None` only empties the feed: the question is still asked).
LAB_NOTIFICATION_SETTINGS = Path(
    ".jupyter", "lab", "user-settings", "@jupyterlab", "apputils-extension",
    "notification.jupyterlab-settings",
)  # fmt: skip
EXAMPLES_RECORD = Path(".mlplat", "examples-copied.json")

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
        return env

    def user_env(self, env):
        env = super().user_env(env)
        Path(self.home_dir).mkdir(parents=True, exist_ok=True)
        return env

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

    def prepare_home(self) -> list[str]:
        """Create the working directory, add missing examples and the Lab settings.

        Returns the example files copied this time.
        """
        home = Path(self.home_dir)
        home.mkdir(parents=True, exist_ok=True)
        settings = home / LAB_NOTIFICATION_SETTINGS
        if not settings.exists():
            settings.parent.mkdir(parents=True, exist_ok=True)
            _write_new(settings, json.dumps({"fetchNews": "false"}, indent=2) + "\n")
        copied = copy_examples(Path(self.examples_dir), home) if self.examples_dir else []
        if copied:
            self.log.info(
                "Copied %s into %s's working directory", ", ".join(copied), self.user.name
            )
        return copied

    async def start(self):
        self.prepare_home()
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


def _write_new(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` only if nothing is there (also not a racing writer)."""
    try:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        return False
    return True


def copy_examples(source: Path, home: Path) -> list[str]:
    """Copy the files of ``source`` missing from ``home``; a file copied once is recorded
    in ``home/.mlplat/examples-copied.json`` and not brought back if the user deletes it."""
    if not source.is_dir():
        return []
    record = home / EXAMPLES_RECORD
    try:
        done = set(json.loads(record.read_text()))
    except (OSError, ValueError, TypeError):
        done = set()
    copied = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if not path.is_file() or any(
            part.startswith(".") or part == "__pycache__" for part in relative.parts
        ):
            continue
        name = relative.as_posix()
        target = home / relative
        if name in done or target.exists():
            done.add(name)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(path, "rb") as src, open(target, "xb") as dst:
                shutil.copyfileobj(src, dst)
        except FileExistsError:
            pass
        else:
            copied.append(name)
        done.add(name)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(sorted(done), indent=1) + "\n")
    return copied


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
