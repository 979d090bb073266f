"""Wiring into IPython: magics, one-line errors, flushing metrics after each cell."""

from __future__ import annotations

from .errors import MlplatError


def show_mlplat_error(shell, etype, value, tb, tb_offset=None):
    """Show a user mistake as one line; the cell still counts as failed."""
    stb = [f"{etype.__name__}: {value}"]
    # IPython drops what a custom handler returns; showing it this way also makes
    # ipykernel send a proper `error` message, so papermill sees the cell fail.
    shell._showtraceback(etype, value, stb)
    return stb


def _flush_after_cell(result=None) -> None:
    from . import fluent

    if fluent._tracker is None or not fluent._tracker.batcher.pending():
        return
    try:
        fluent.flush()
    except MlplatError as exc:
        print(f"{type(exc).__name__}: {exc} (metrics kept; they are sent with the next flush)")


def register(ipython) -> None:
    from .features.sqlite_compat import install_timestamp_converter
    from .magics import MlplatMagics

    install_timestamp_converter()  # IPython's history may have replaced Feast's converter
    ipython.register_magics(MlplatMagics)
    ipython.set_custom_exc((MlplatError,), show_mlplat_error)
    if _flush_after_cell not in ipython.events.callbacks["post_run_cell"]:
        ipython.events.register("post_run_cell", _flush_after_cell)


def unregister(ipython) -> None:
    if _flush_after_cell in ipython.events.callbacks["post_run_cell"]:
        ipython.events.unregister("post_run_cell", _flush_after_cell)
    ipython.set_custom_exc((), None)
