"""``%mlplat`` / ``%%mlplat``: find the command in the table, parse, run, return its value.

The commands, their arguments and help live in :mod:`.commands` (shared with the
CLI). Errors from the layers below are :class:`MlplatError`; the extension shows
them as one line (see :func:`jupyter_mlplat.ipython.show_mlplat_error`).
"""

from __future__ import annotations

import ast
import shlex

from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand

from . import commands
from .errors import UsageError


def _strip_comment(line: str) -> str:
    """``line`` without a trailing ``# comment`` (a ``#`` after whitespace, outside quotes),
    so ``%mlplat status  # who am I`` works as it does in Python; ``a#b`` stays whole."""
    quote = None
    for index, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index]
    return line


def _split(line: str) -> list[str]:
    if "#" in line:
        line = _strip_comment(line)
    if not any(ch in line for ch in "'\"\\"):
        return line.split()  # the common case, several times faster than shlex
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"Could not split the arguments ({exc}); check your quotes.") from None


@magics_class
class MlplatMagics(Magics):
    @no_var_expand
    @line_cell_magic
    def mlplat(self, line: str, cell: str | None = None):
        if "{" in line or "$" in line:
            # IPython's own expansion parses every line, even plain ones, and costs more
            # than a buffered `log`; expand only when there is something to expand.
            # Depth 2 is the frame that called run_line_magic / run_cell_magic.
            line = self.shell.var_expand(line, depth=2)
        words = _split(line)
        if not words or words[0] in ("help", "-h", "--help"):
            print(commands.help_text("magic"))
            return None
        command, rest = commands.find(words, "magic")
        if command.cell and cell is None:
            raise UsageError(
                f"`{command.name}` is a cell magic: put `%%mlplat {command.name}` on the first "
                "line of a cell."
            )
        if not command.cell and cell is not None:
            raise UsageError(
                f"`{command.name}` is a line magic: use `%mlplat {command.name}` (one %)."
            )
        env = commands.Env("magic", self.shell.user_ns, self._execute, cell)
        try:
            value = command.run(command.parse("%mlplat", rest), env)
        except commands.HelpShown:
            return None
        if command.returns_code:
            if value:
                raise UsageError(f"`%mlplat {command.name}` failed; see the messages above.")
            return None
        return value

    def _execute(self, cell: str):
        """Run ``cell`` in the user namespace; the value of a trailing expression is returned."""
        source = self.shell.transform_cell(cell)
        tree = ast.parse(source)
        tail = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            tail = ast.Expression(tree.body.pop().value)
        # Registering the source lets tracebacks show the user's lines.
        filename = self.shell.compile.cache(source)
        namespace = self.shell.user_ns
        exec(compile(tree, filename, "exec"), namespace)
        if tail is not None:
            return eval(compile(tail, filename, "eval"), namespace)
        return None
