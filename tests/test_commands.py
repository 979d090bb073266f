"""One command table for %mlplat and mlplat: every command on both sides, one parser each."""

from __future__ import annotations

import pytest

from jupyter_mlplat import commands
from jupyter_mlplat.cli import main
from jupyter_mlplat.errors import UsageError
from tests.test_magics import assert_one_line_error, run_cell


def test_every_command_answers_on_both_sides():
    for command in commands.COMMANDS:
        for side in ("magic", "cli"):
            available = command.magic if side == "magic" else command.cli
            if available:
                assert commands.find(list(command.words), side)[0] is command
            elif (side, command.words) in commands.BY_SIDE:  # `run`: one command per side
                other = commands.BY_SIDE[(side, command.words)]
                assert other is not command and commands.find(list(command.words), side)[0] is other
            else:
                with pytest.raises(UsageError) as info:
                    commands.find(list(command.words), side)
                assert str(info.value) == command.elsewhere and command.elsewhere.endswith(".")


def test_help_of_both_sides_comes_from_the_table():
    magic, cli = commands.help_text("magic"), commands.help_text("cli")
    for command in commands.COMMANDS:
        assert (command.help in magic) == command.magic
        assert (command.help in cli) == command.cli
    assert "%mlplat approval request MODEL VERSION" in magic
    assert "mlplat approval request MODEL VERSION" in cli


def test_the_cli_has_approval_request_and_the_same_parser(capsys):
    assert main(["approval", "request", "-h"]) == 0
    cli_help = capsys.readouterr().out
    assert "usage: mlplat approval request" in cli_help and "--reason" in cli_help
    assert main(["approval", "request", "m"]) == 2
    assert "the following arguments are required: VERSION" in capsys.readouterr().err


def test_a_command_of_the_other_side_says_where_it_belongs(ipython_shell, capsys):
    result, captured = run_cell(ipython_shell, "%mlplat up")
    assert_one_line_error(result, captured, UsageError, "run `mlplat up`")
    assert main(["run"]) == 2  # the CLI's `run` runs a notebook: it needs one
    assert "the following arguments are required: NOTEBOOK" in capsys.readouterr().err
    assert main(["pipeline", "submit", "x.ipynb"]) == 2  # a terminal names the file: FILE.py:FUNC
    assert "give FILE.py:FUNC" in capsys.readouterr().err


def test_hub_users_from_the_cli(configure, capsys):
    from jupyter_mlplat.hub.users import load_users

    settings = configure()
    from pathlib import Path

    users_file = Path(settings.home) / "hub" / "users.yaml"
    # No hub has run with this data dir (as in a user's kernel): nothing is written.
    assert main(["hub", "add-user", "dana", "--group", "team-churn"]) == 2
    assert "edits the embedded hub's users file" in capsys.readouterr().err
    assert not users_file.exists()
    from jupyter_mlplat.hub.users import ensure_demo_users

    ensure_demo_users(users_file, users_file.parent / "demo-passwords.txt")  # the hub's start
    assert main(["hub", "add-user", "dana", "--group", "team-churn"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Added dana (team-churn); password: ")
    assert "dana" in load_users(users_file)
    assert main(["hub", "add-user", "dana"]) == 5  # conflict
    assert "already exists" in capsys.readouterr().err
    assert main(["hub", "set-password", "dana", "--password", "s3cret-enough"]) == 0
    assert main(["hub", "remove-user", "dana"]) == 0
    assert main(["hub", "remove-user", "dana"]) == 4  # not found
    assert "No user 'dana'" in capsys.readouterr().err
