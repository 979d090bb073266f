"""The progress display for long waits (display.Progress, fluent._with_progress): a job's
cells and a deploy's stages, as a widget in a notebook and as lines on a terminal."""

from __future__ import annotations

import time

import pytest

from jupyter_mlplat import fluent
from jupyter_mlplat.display import Progress
from jupyter_mlplat.errors import ConflictError


def slow(value, seconds=1.2):
    def call():
        time.sleep(seconds)
        return value

    return call


def test_a_wait_on_a_terminal_prints_one_line_per_stage_not_per_tick(capsys):
    assert fluent._with_progress("deploy m v1 to staging", slow("done"), True, False, poll=0.1) == (
        "done"
    )
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[0]
        == "deploy m v1 to staging: starting the model server and waiting for it to be ready"
    )
    assert len(lines) == 2 and lines[1].startswith("deploy m v1 to staging: ready (1."), lines


def test_a_failed_wait_says_so_and_raises_the_same_error(capsys):
    def refuse():
        time.sleep(0.3)
        raise ConflictError("v1 is not approved for staging.")

    with pytest.raises(ConflictError, match="not approved"):
        fluent._with_progress("deploy m v1 to staging", refuse, True, False, poll=0.1)
    assert "failed: v1 is not approved for staging." in capsys.readouterr().out


def test_without_progress_nothing_is_shown(capsys):
    assert fluent._with_progress("deploy", slow(3, 0.2), False, False) == 3
    assert capsys.readouterr().out == ""


def test_in_a_notebook_one_widget_is_updated_in_place():
    from ipywidgets.widgets.widget import _instances

    before = set(_instances)
    fluent._with_progress("deploy m v1 to staging", slow("ok"), True, True, poll=0.1)
    made = [w for key, w in _instances.items() if key not in before]
    bars = [w for w in made if type(w).__name__ == "IntProgress"]
    labels = [w for w in made if type(w).__name__ == "Label"]
    assert len(bars) == 1 and len(labels) == 1, made  # one display, not one per tick
    assert bars[0].bar_style == "success" and bars[0].value == bars[0].max == 1
    assert labels[0].value.startswith("deploy m v1 to staging: ready (1 s)"), labels[0].value


def test_a_jobs_cells_and_its_end_on_the_widget():
    shown = Progress("job run 7", in_notebook=True)
    shown.update(1, 3, "running")
    assert (shown.bar.value, shown.bar.max, shown.label.value) == (
        1,
        3,
        "job run 7: running, 1/3 cells",
    )
    shown.update(2, 3, "failed")
    assert shown.bar.bar_style == "danger" and shown.label.value.endswith("failed, 2/3 cells")
