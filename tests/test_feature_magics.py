"""`%mlplat features` in a real IPython shell, against the real demo Feast repo."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import jupyter_mlplat as mlplat
from jupyter_mlplat.errors import NotFoundError, UsageError
from tests.test_magics import assert_one_line_error, run_cell

REFS = "customer_stats:tenure_months,customer_activity:sessions_7d"


@pytest.fixture
def shell(ipython_shell, configure, sqlite_tracking_uri, demo_feature_repo):
    configure(tracking_uri=sqlite_tracking_uri, feature_repo=str(demo_feature_repo))
    ipython_shell.user_ns["customers"] = pd.DataFrame({"customer_id": [1003, 1000, 1199]})
    return ipython_shell


def _feast_online(feast_store, ids):
    return feast_store.get_online_features(
        features=REFS.split(","), entity_rows=[{"customer_id": i} for i in ids]
    ).to_df()


def test_online_features_match_feast_and_land_in_the_output_variable(shell, feast_store):
    result, _ = run_cell(shell, f"df = %mlplat features {REFS} --entities customers -o online")
    assert result.success, result.error_in_exec
    ours = shell.user_ns["online"]
    assert ours is shell.user_ns["df"]
    reference = _feast_online(feast_store, [1003, 1000, 1199])
    assert list(ours["customer_id"]) == [1003, 1000, 1199]
    for column in ("tenure_months", "sessions_7d"):
        assert list(ours[column]) == list(reference[column])


def test_historical_features_inside_a_run_are_logged_as_lineage(shell, feast_store):
    from mlflow import MlflowClient

    shell.user_ns["labelled"] = pd.DataFrame(
        {
            "customer_id": [1000, 1001],
            "event_timestamp": pd.to_datetime(["2026-02-10", "2026-03-05"], utc=True),
        }
    )
    cell = (
        "%%mlplat run with-features --no-autolog\n"
        f"train = %mlplat features {REFS} --entities labelled --historical\n"
        "len(train)\n"
    )
    result, _ = run_cell(shell, cell)
    assert result.success, result.error_in_exec
    reference = feast_store.get_historical_features(
        entity_df=shell.user_ns["labelled"], features=REFS.split(",")
    ).to_df()
    ours = shell.user_ns["train"].sort_values("customer_id").reset_index(drop=True)
    reference = reference.sort_values("customer_id").reset_index(drop=True)
    assert list(ours["tenure_months"]) == list(reference["tenure_months"])

    run_id = mlplat.last_run().run_id
    client = MlflowClient(tracking_uri=mlplat.status().tracking_uri)
    tags = client.get_run(run_id).data.tags
    assert (
        tags["mlplat.features.refs"] == "customer_activity:sessions_7d,customer_stats:tenure_months"
    )
    assert tags["mlplat.features.views"] == "customer_activity,customer_stats"
    assert tags["mlplat.features.rows"] == "2"
    path = client.download_artifacts(run_id, "mlplat/features.json")
    with open(path) as handle:
        retrieval = json.load(handle)["retrievals"][0]
    assert retrieval["mode"] == "historical"
    assert retrieval["event_timestamp_min"].startswith("2026-02-10")
    assert retrieval["event_timestamp_max"].startswith("2026-03-05")


@pytest.mark.parametrize(
    ("source", "error_type", "fragment"),
    [
        (
            "%mlplat features nosuchview:x --entities customers",
            NotFoundError,
            "customer_activity, customer_profile, customer_stats",
        ),
        (
            "%mlplat features customer_stats:nope --entities customers",
            NotFoundError,
            "tenure_months",
        ),
        ("%mlplat features customer_stats --entities customers", UsageError, "view:feature"),
        ("%mlplat features customer_stats:tenure_months", UsageError, "--entities"),
        (
            "%mlplat features customer_stats:tenure_months --entities wrong_columns",
            UsageError,
            "customer_id",
        ),
        (
            "%mlplat features customer_stats:tenure_months --entities customers --historical",
            UsageError,
            "event_timestamp",
        ),
        (
            "%mlplat features customer_stats:tenure_months --entities not_a_frame",
            UsageError,
            "DataFrame",
        ),
    ],
)
def test_feature_mistakes_are_one_line(shell, source, error_type, fragment):
    shell.user_ns["wrong_columns"] = pd.DataFrame({"id": [1000]})
    shell.user_ns["not_a_frame"] = [1000, 1001]
    result, captured = run_cell(shell, source)
    assert_one_line_error(result, captured, error_type, fragment)


def test_features_work_when_feast_was_imported_before_ipython(demo_feature_repo, tmp_path):
    """IPython's and Feast's SQLite timestamp converters must not break each other."""
    import subprocess
    import sys

    code = f"""
import feast.infra.online_stores.sqlite  # Feast first, as a script importing it early does
import pandas as pd
from IPython.testing.globalipapp import start_ipython
from jupyter_mlplat.settings import MlplatSettings, reset_settings
reset_settings(MlplatSettings(home={str(tmp_path)!r}, feature_repo={str(demo_feature_repo)!r}))
shell = start_ipython()
shell.run_line_magic("load_ext", "jupyter_mlplat")
shell.user_ns["ents"] = pd.DataFrame({{"customer_id": [1000]}})
df = shell.run_line_magic("mlplat", "features customer_stats:tenure_months --entities ents")
assert len(df) == 1 and df["tenure_months"].notna().all(), df
import sqlite3, datetime
con = sqlite3.connect(":memory:", detect_types=sqlite3.PARSE_DECLTYPES)
con.execute("create table h (t timestamp)")
con.execute("insert into h values ('2026-01-02T03:04:05')")
assert con.execute("select t from h").fetchone()[0] == datetime.datetime(2026, 1, 2, 3, 4, 5)
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
