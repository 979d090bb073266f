"""Hub user management (what `mlplat hub add-user / remove-user / set-password` call).

The functions on a users file, then the same changes seen by the running session hub,
which re-reads the file at the next login (no restart).
"""

from __future__ import annotations

import os
import threading

import pytest

from jupyter_mlplat.errors import ConflictError, NotFoundError, UsageError
from jupyter_mlplat.hub.users import (
    add_user,
    load_users,
    remove_user,
    set_groups,
    set_password,
    verify_password,
)
from tests.hub_fixtures import login


def _mode(path) -> int:
    return os.stat(path).st_mode & 0o777


def test_add_user_stores_a_hash_of_a_generated_or_given_password(tmp_path):
    users = tmp_path / "hub" / "users.yaml"
    generated = add_user(users, "dana", ["team-churn"])
    assert len(generated) >= 12
    assert add_user(users, "eve_2", ["team-fraud", "mlplat-reviewers"], password="s3cret-pw") == (
        "s3cret-pw"
    )
    records = load_users(users)
    assert records["dana"].groups == ("team-churn",)
    assert records["eve_2"].groups == ("team-fraud", "mlplat-reviewers")
    assert verify_password(generated, records["dana"].password_hash)
    assert verify_password("s3cret-pw", records["eve_2"].password_hash)
    text = users.read_text()
    assert generated not in text and "s3cret-pw" not in text
    assert _mode(users) == 0o600
    assert [p.name for p in users.parent.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize(
    "name", ["", "Dana", "dana.smith", "a" * 33, "dana smith", "../x", "dañа", 7]
)
def test_add_user_refuses_bad_names(tmp_path, name):
    with pytest.raises(UsageError, match="1-32 lowercase letters"):
        add_user(tmp_path / "users.yaml", name, [])
    assert not (tmp_path / "users.yaml").exists()


def test_add_user_refuses_bad_groups_short_passwords_and_existing_users(tmp_path):
    users = tmp_path / "users.yaml"
    with pytest.raises(UsageError, match="Group 'Team Churn'"):
        add_user(users, "dana", ["Team Churn"])
    with pytest.raises(UsageError, match="at least 8 characters"):
        add_user(users, "dana", [], password="short")
    add_user(users, "dana", ["team-churn"], password="first-password")
    with pytest.raises(ConflictError, match="already exists"):
        add_user(users, "dana", ["team-fraud"], password="second-password")
    assert verify_password("first-password", load_users(users)["dana"].password_hash)


def test_remove_set_password_and_set_groups(tmp_path):
    users = tmp_path / "users.yaml"
    add_user(users, "dana", ["team-churn"], password="first-password")
    add_user(users, "finn", [], password="finns-password")
    new = set_password(users, "dana")
    assert new != "first-password"
    record = load_users(users)["dana"]
    assert verify_password(new, record.password_hash)
    assert not verify_password("first-password", record.password_hash)
    assert set_password(users, "dana", password="chosen-password") == "chosen-password"
    assert set_groups(users, "dana", ["team-fraud", "team-fraud"]) == ("team-fraud",)
    assert load_users(users)["dana"].groups == ("team-fraud",)
    remove_user(users, "dana")
    assert set(load_users(users)) == {"finn"}
    assert _mode(users) == 0o600
    for call in (
        lambda: remove_user(users, "dana"),
        lambda: set_password(users, "dana"),
        lambda: set_groups(users, "dana", []),
    ):
        with pytest.raises(NotFoundError, match="mlplat hub add-user dana"):
            call()


def test_a_changed_demo_users_printed_password_is_dropped(tmp_path):
    from jupyter_mlplat.hub.users import ensure_demo_users

    users = tmp_path / "users.yaml"
    printed = ensure_demo_users(users, tmp_path / "demo-passwords.txt")
    set_password(users, "alice", password="alices-new-password")
    remove_user(users, "bob")
    again = ensure_demo_users(users, tmp_path / "demo-passwords.txt")
    assert set(again) == set(printed) - {"alice", "bob"}
    assert again["rita"] == printed["rita"]


def test_concurrent_adds_lose_nobody(tmp_path):
    users = tmp_path / "users.yaml"
    names = [f"user{i}" for i in range(6)]
    errors = []

    def add(name):
        try:
            add_user(users, name, ["team-churn"], password=f"{name}-password")
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(n,)) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert set(load_users(users)) == set(names)


def test_the_running_hub_sees_added_changed_and_removed_users(platform_hub):
    from pathlib import Path

    users = Path(platform_hub.env["MLPLAT_HOME"]) / "hub" / "users.yaml"
    password = add_user(users, "dana", ["team-vision"])
    try:
        assert login(platform_hub, "dana", password).status_code == 302
        assert platform_hub.api("GET", "/users/dana").json()["groups"] == ["team-vision"]
        set_password(users, "dana", password="dana-second-pw")
        assert login(platform_hub, "dana", password).status_code == 403
        assert login(platform_hub, "dana", "dana-second-pw").status_code == 302
    finally:
        remove_user(users, "dana")
    assert login(platform_hub, "dana", "dana-second-pw").status_code == 403
    assert _mode(users) == 0o600
