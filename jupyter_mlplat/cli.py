"""The ``mlplat`` command: the same command table as ``%mlplat`` (:mod:`.commands`).

Exit codes come from the error table (:mod:`.errors`): 0 done, 1 failed (an audit
chain that does not verify, invalid profiles), 2 usage or too large, 3 not allowed,
4 not found, 5 conflict, 6 a dependency unavailable.
"""

from __future__ import annotations

import sys

from . import commands
from .errors import MlplatError


def main(argv: list[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        if not words or words[0] in ("help", "-h", "--help"):
            print("usage: mlplat COMMAND [ARGS]  (`mlplat COMMAND -h` for its arguments)\n")
            print(commands.help_text("cli"))
            return 0
        command, rest = commands.find(words, "cli")
        env = commands.Env("cli")
        try:
            value = command.run(command.parse("mlplat", rest), env)
        except commands.HelpShown:
            return 0
        if command.returns_code:
            return int(value or 0)
        if value is not None:
            print(repr(value))
        return 1 if getattr(value, "ok", True) is False else 0
    except MlplatError as exc:
        print(f"mlplat: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
