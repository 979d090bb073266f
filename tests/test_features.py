"""Feast features: demo repo, online / historical retrieval against Feast's own API, errors."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from jupyter_mlplat.errors import MlplatError, NotFoundError, ServiceUnavailable, UsageError
from jupyter_mlplat.features import (
    FeatureRepoUnavailable,
    FeatureRetriever,
    clear_retrievers,
    create_demo_repo,
    get_features,
    get_retriever,
    parse_refs,
)
from jupyter_mlplat.features import demo_repo as demo
from jupyter_mlplat.settings import MlplatSettings, reset_settings

REPO_ROOT = Path(__file__).resolve().parent.parent
STATS = [
    "customer_stats:tenure_months",
    "customer_stats:monthly_spend",
    "customer_stats:support_tickets",
]
ACTIVITY = ["customer_activity:sessions_7d", "customer_activity:avg_session_minutes"]
PROFILE = ["customer_profile:email_domain", "customer_profile:plan"]
ALL_REFS = STATS + ACTIVITY + PROFILE
NAMES = [r.split(":")[1] for r in ALL_REFS]


@pytest.fixture
def retriever(demo_feature_repo):  # noqa: F811
    return get_retriever(demo_feature_repo)


def one_sentence(err: BaseException) -> str:
    """The message of a user-facing error, checked to be one plain sentence."""
    assert isinstance(err, MlplatError)
    text = str(err)
    assert "\n" not in text and "Traceback" not in text
    assert text[0].isupper() and text.endswith("."), text
    return text


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def parquet(repo: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(repo / "data" / f"{name}.parquet")


# -- the package stays light ---------------------------------------------------------------


def test_import_does_not_import_feast():
    code = (
        "import sys, jupyter_mlplat.features, jupyter_mlplat.features.retrieval, "
        "jupyter_mlplat.features.demo_repo; "
        "print(sorted(m for m in ('feast', 'pandas', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# -- demo repo --------------------------------------------------------------------------------


def test_demo_repo_layout_and_config(demo_feature_repo):  # noqa: F811
    import yaml

    repo = demo_feature_repo
    config = yaml.safe_load((repo / "feature_store.yaml").read_text())
    assert config["project"] == "mlplat_demo"
    assert config["provider"] == "local"
    assert config["registry"] == "data/registry.db"
    assert config["online_store"] == {"type": "sqlite", "path": "data/online_store.db"}
    assert config["offline_store"] == {"type": "file"}
    assert config["entity_key_serialization_version"] == 3
    for name in ("registry.db", "online_store.db", *demo.DATA_FILES):
        assert (repo / "data" / name).is_file(), name


def test_demo_repo_definitions_in_feast_registry(feast_store):  # noqa: F811
    (entity,) = feast_store.list_entities()
    assert entity.name == "customer" and entity.join_key == "customer_id"
    views = {v.name: v for v in feast_store.list_feature_views()}
    assert {n: [f.name for f in v.features] for n, v in views.items()} == {
        "customer_stats": ["tenure_months", "monthly_spend", "support_tickets"],
        "customer_activity": ["sessions_7d", "avg_session_minutes"],
        "customer_profile": ["email_domain", "plan", "region"],
    }
    profile = views["customer_profile"]
    assert {f.name: f.tags.get("pii") for f in profile.features}["email_domain"] == "true"
    assert profile.tags["pii"] == "true"
    assert all(v.ttl.days >= 3650 for v in views.values())


def test_demo_data_shape(demo_feature_repo):  # noqa: F811
    stats = parquet(demo_feature_repo, "customer_stats")
    assert stats["customer_id"].min() == 1000 and stats["customer_id"].max() == 1199
    assert len(stats) == 200 * 90
    stamps = stats["event_timestamp"]
    assert str(stamps.dt.tz) == "UTC"
    assert stamps.min() == pd.Timestamp("2026-01-01", tz="UTC")
    assert stamps.max() == pd.Timestamp("2026-03-31", tz="UTC")


def test_demo_data_is_deterministic(tmp_path, demo_feature_repo):  # noqa: F811
    first = create_demo_repo(tmp_path / "a", apply=False, materialize=False)
    second = create_demo_repo(tmp_path / "b", apply=False, materialize=False)
    for name in demo.DATA_FILES:
        digest = sha256(first / "data" / name)
        assert digest == sha256(second / "data" / name) == sha256(demo_feature_repo / "data" / name)
    assert (first / "definitions.py").read_text() == (second / "definitions.py").read_text()


def test_create_demo_repo_is_idempotent_and_fast(demo_feature_repo):  # noqa: F811
    before = {p: p.stat().st_mtime_ns for p in (demo_feature_repo / "data").iterdir()}
    start = time.perf_counter()
    assert create_demo_repo(demo_feature_repo) == demo_feature_repo
    assert time.perf_counter() - start < 0.5
    assert {p: p.stat().st_mtime_ns for p in (demo_feature_repo / "data").iterdir()} == before


def test_demo_repo_finishes_a_partial_repo(tmp_path):
    repo = create_demo_repo(tmp_path / "repo", apply=False, materialize=False)
    assert not (repo / "data" / "online_store.db").exists()
    assert demo.main([str(repo)]) == 0  # the `python -m` entry point, in process
    assert demo._read_marker(repo) == {
        "version": demo.DATA_VERSION,
        "applied": True,
        "materialized": True,
    }
    ids = pd.DataFrame({"customer_id": [1000, 1199]})
    result = FeatureRetriever(repo).get("customer_stats:monthly_spend", ids)
    assert result.df["monthly_spend"].notna().all()


def test_demo_repo_cli_usage():
    out = subprocess.run(
        [sys.executable, "-m", "jupyter_mlplat.features.demo_repo"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "usage:" in out.stderr


def test_materialize_needs_apply(tmp_path):
    with pytest.raises(UsageError) as info:
        create_demo_repo(tmp_path / "r", apply=False, materialize=True)
    one_sentence(info.value)


# -- online -----------------------------------------------------------------------------------


def test_online_matches_feast(retriever, feast_store):  # noqa: F811
    ids = [1005, 1001, 1190, 1005, 99999]  # a repeat and an unknown customer
    entities = pd.DataFrame({"customer_id": ids})
    ours = retriever.get(ALL_REFS, entities).df
    rows = [{"customer_id": i} for i in ids]
    raw = feast_store.get_online_features(features=ALL_REFS, entity_rows=rows).to_df()
    assert list(ours.columns) == ["customer_id", *NAMES]
    pd.testing.assert_frame_equal(ours.reset_index(drop=True), raw[["customer_id", *NAMES]])
    assert ours.loc[4, NAMES].isna().all()


def test_online_values_are_the_last_day(retriever, demo_feature_repo):  # noqa: F811
    ids = [1003, 1100, 1150]
    ours = retriever.get(STATS, pd.DataFrame({"customer_id": ids})).df
    stats = parquet(demo_feature_repo, "customer_stats")
    last = stats[stats["event_timestamp"] == stats["event_timestamp"].max()]
    expected = last.set_index("customer_id").loc[ids, ["tenure_months", "monthly_spend"]]
    assert ours["monthly_spend"].tolist() == expected["monthly_spend"].tolist()
    assert ours["tenure_months"].tolist() == expected["tenure_months"].tolist()


def test_online_keeps_order_index_and_extra_columns(retriever):
    entities = pd.DataFrame(
        {"label": [1, 0, 1], "customer_id": [1150, 1002, 1075]}, index=["c", "a", "b"]
    )
    result = retriever.get("customer_activity:sessions_7d, customer_stats:monthly_spend", entities)
    df = result.df
    assert list(df.columns) == ["label", "customer_id", "sessions_7d", "monthly_spend"]
    assert list(df.index) == ["c", "a", "b"]
    assert df["customer_id"].tolist() == [1150, 1002, 1075]
    assert df["label"].tolist() == [1, 0, 1]
    one = [retriever.get(["customer_stats:monthly_spend"], entities.loc[[k]]).df for k in "cab"]
    assert [d["monthly_spend"].iloc[0] for d in one] == df["monthly_spend"].tolist()


def test_online_lineage(retriever, demo_feature_repo):  # noqa: F811
    before = pd.Timestamp.now(tz="UTC")
    result = retriever.get(STATS + PROFILE, pd.DataFrame({"customer_id": [1001, 1002]}))
    lineage = result.lineage
    assert lineage["mode"] == "online"
    assert lineage["feature_refs"] == STATS + PROFILE
    assert lineage["feature_views"] == ["customer_stats", "customer_profile"]
    assert lineage["join_keys"] == ["customer_id"]
    assert lineage["rows"] == 2
    assert lineage["repo"] == str(demo_feature_repo)
    assert lineage["project"] == "mlplat_demo"
    assert lineage["pii_features"] == ["customer_profile:email_domain"]
    assert before <= pd.Timestamp(lineage["retrieved_at"]) <= pd.Timestamp.now(tz="UTC")
    assert "event_timestamp_min" not in lineage
    assert "online: 2 rows, 5 features" in repr(result)


def test_pii_features_and_views(retriever):
    assert retriever.pii_features() == ["customer_profile:email_domain"]
    assert retriever.views()["customer_activity"] == ["sessions_7d", "avg_session_minutes"]


def test_validation_uses_cached_catalog(retriever):
    retriever.get(STATS, pd.DataFrame({"customer_id": [1001]}))
    calls = []
    real = retriever.catalog._list_views
    retriever.catalog._list_views = lambda: calls.append(1) or real()
    try:
        for _ in range(3):
            retriever.get(STATS + ACTIVITY, pd.DataFrame({"customer_id": [1001]}))
        with pytest.raises(NotFoundError):
            retriever.get(["customer_stats:nope"], pd.DataFrame({"customer_id": [1001]}))
    finally:
        retriever.catalog._list_views = real
    assert calls == [1]  # only the miss re-read the registry, once


def test_get_features_takes_the_repo_and_caches(demo_feature_repo, tmp_path):  # noqa: F811
    """The repo is an argument (callers pass the settings' feature_repo); the process-wide
    settings are not consulted, even when they name another repo."""
    clear_retrievers()
    reset_settings(MlplatSettings(feature_repo=str(tmp_path / "elsewhere")))
    try:
        first = get_features(STATS, pd.DataFrame({"customer_id": [1010]}), repo=demo_feature_repo)
        assert first.lineage["repo"] == str(demo_feature_repo)
        assert get_retriever(demo_feature_repo) is get_retriever(str(demo_feature_repo))
        with pytest.raises(TypeError):
            get_features(STATS, pd.DataFrame({"customer_id": [1010]}))  # no repo
        with pytest.raises(TypeError):
            get_retriever()  # no repo
        with pytest.raises(TypeError, match="path of a Feast repository"):
            get_retriever(None)
    finally:
        reset_settings(None)


# -- historical -------------------------------------------------------------------------------


def test_historical_matches_feast(retriever, feast_store):  # noqa: F811
    entities = pd.DataFrame(
        {
            "customer_id": [1001, 1002, 1003, 1001],
            "event_timestamp": pd.to_datetime(
                ["2026-01-15T08:00Z", "2026-02-01T00:00Z", "2026-03-31T23:00Z", "2026-03-01T12:00Z"]
            ),
        }
    )
    ours = retriever.get(ALL_REFS, entities, historical=True).df
    raw = feast_store.get_historical_features(entity_df=entities, features=ALL_REFS).to_df()
    keys = ["customer_id", "event_timestamp"]
    raw = raw.sort_values(keys).reset_index(drop=True)[keys + NAMES]
    mine = ours.sort_values(keys).reset_index(drop=True)[keys + NAMES]
    pd.testing.assert_frame_equal(mine, raw, check_dtype=False)
    assert list(ours.columns) == keys + NAMES
    assert ours["customer_id"].tolist() == [1001, 1002, 1003, 1001]  # input order


def test_historical_is_point_in_time_correct(retriever, demo_feature_repo):  # noqa: F811
    stats = parquet(demo_feature_repo, "customer_stats").set_index(
        ["customer_id", "event_timestamp"]
    )
    mid, late = pd.Timestamp("2026-02-15", tz="UTC"), pd.Timestamp("2026-03-20", tz="UTC")
    entities = pd.DataFrame(
        {
            "customer_id": [1042, 1042, 1042],
            "event_timestamp": [mid + pd.Timedelta(hours=13), mid, late],
        }
    )
    df = retriever.get(["customer_stats:monthly_spend"], entities, historical=True).df
    spend = df["monthly_spend"].tolist()
    assert spend[0] == spend[1] == stats.loc[(1042, mid), "monthly_spend"]
    assert spend[2] == stats.loc[(1042, late), "monthly_spend"]
    assert spend[2] != spend[1]
    # One second before a day starts still sees the previous day.
    just_before = pd.DataFrame(
        {"customer_id": [1042], "event_timestamp": [mid - pd.Timedelta(seconds=1)]}
    )
    df = retriever.get(["customer_stats:monthly_spend"], just_before, historical=True).df
    assert (
        df["monthly_spend"].iloc[0]
        == stats.loc[(1042, mid - pd.Timedelta(days=1)), "monthly_spend"]
    )


def test_historical_keeps_every_row(retriever):
    # Feast's file store drops repeated rows and rows older than all data; we keep them.
    stamps = pd.to_datetime(["2026-02-10T12:00Z", "2025-06-01T00:00Z", "2026-02-10T12:00Z"])
    entities = pd.DataFrame(
        {"customer_id": [1005, 1005, 1005], "event_timestamp": stamps, "label": [1, 2, 3]},
        index=[10, 11, 12],
    )
    result = retriever.get(STATS, entities, historical=True)
    df = result.df
    assert list(df.index) == [10, 11, 12] and df["label"].tolist() == [1, 2, 3]
    assert df.loc[10, "monthly_spend"] == df.loc[12, "monthly_spend"]
    assert df.loc[11, ["tenure_months", "monthly_spend"]].isna().all()
    assert result.lineage["event_timestamp_min"] == "2025-06-01T00:00:00+00:00"
    assert result.lineage["event_timestamp_max"] == "2026-02-10T12:00:00+00:00"
    assert result.lineage["mode"] == "historical" and result.lineage["rows"] == 3


def test_historical_accepts_naive_and_string_timestamps(retriever):
    aware = pd.DataFrame(
        {"customer_id": [1007], "event_timestamp": [pd.Timestamp("2026-03-02T06:00Z")]}
    )
    naive = pd.DataFrame({"customer_id": [1007], "event_timestamp": ["2026-03-02 06:00"]})
    a = retriever.get(STATS, aware, historical=True).df
    b = retriever.get(STATS, naive, historical=True).df
    pd.testing.assert_frame_equal(a, b)


# -- errors -----------------------------------------------------------------------------------

ONE = pd.DataFrame({"customer_id": [1001]})


def test_missing_repo(tmp_path):
    with pytest.raises(ServiceUnavailable) as info:
        FeatureRetriever(tmp_path / "nowhere")
    text = one_sentence(info.value)
    assert str(tmp_path / "nowhere") in text and "MLPLAT_FEATURE_REPO" in text
    assert "jupyter_mlplat.features.demo_repo" in text
    assert isinstance(info.value, NotFoundError) and isinstance(info.value, FeatureRepoUnavailable)


def test_repo_without_feature_store_yaml(tmp_path):
    with pytest.raises(NotFoundError) as info:
        get_features(STATS, ONE, repo=tmp_path)
    text = one_sentence(info.value)
    assert "feature_store.yaml" in text and str(tmp_path) in text
    assert "MLPLAT_FEATURE_REPO" in text


def test_repo_not_applied(tmp_path):
    repo = create_demo_repo(tmp_path / "r", apply=False, materialize=False)
    with pytest.raises(NotFoundError) as info:
        FeatureRetriever(repo).get(STATS, ONE)
    assert "feast apply" in one_sentence(info.value)


@pytest.mark.parametrize(
    "refs",
    [
        "customer_stats.monthly_spend",
        ["customer_stats"],
        "customer_stats:",
        ":monthly_spend",
        "",
        [],
        42,
        [3],
    ],
)
def test_malformed_refs(retriever, refs):
    with pytest.raises(UsageError) as info:
        retriever.get(refs, ONE)
    one_sentence(info.value)


def test_parse_refs_forms():
    assert parse_refs(" a:x , b:y,a:x ") == ("a:x", "b:y")
    assert parse_refs(["a:x", "b:y"]) == ("a:x", "b:y")


def test_unknown_feature_view(retriever):
    with pytest.raises(NotFoundError) as info:
        retriever.get(["customer_stat:monthly_spend"], ONE)
    text = one_sentence(info.value)
    assert "'customer_stat'" in text
    assert "customer_activity, customer_profile, customer_stats" in text


def test_unknown_feature(retriever):
    with pytest.raises(NotFoundError) as info:
        retriever.get(["customer_stats:spend"], ONE)
    text = one_sentence(info.value)
    assert "'spend'" in text and "monthly_spend, support_tickets, tenure_months" in text


@pytest.mark.parametrize(
    "entities",
    [[{"customer_id": 1001}], {"customer_id": [1001]}, pd.Series([1001], name="customer_id"), None],
)
def test_entities_not_a_dataframe(retriever, entities):
    with pytest.raises(UsageError) as info:
        retriever.get(STATS, entities)
    text = one_sentence(info.value)
    assert "DataFrame" in text and "customer_id" in text


def test_entities_missing_join_key(retriever):
    entities = pd.DataFrame({"cust": [1001], "label": [1]})
    with pytest.raises(UsageError) as info:
        retriever.get(STATS, entities)
    text = one_sentence(info.value)
    assert "customer_id" in text and "cust, label" in text


def test_historical_needs_event_timestamp(retriever):
    with pytest.raises(UsageError) as info:
        retriever.get(STATS, ONE, historical=True)
    assert "event_timestamp" in one_sentence(info.value)


def test_historical_bad_timestamps(retriever):
    for stamps in (["not a time"], [None]):
        entities = pd.DataFrame({"customer_id": [1001], "event_timestamp": stamps})
        with pytest.raises(UsageError) as info:
            retriever.get(STATS, entities, historical=True)
        assert "event_timestamp" in one_sentence(info.value)


def test_empty_entities(retriever):
    with pytest.raises(UsageError) as info:
        retriever.get(STATS, pd.DataFrame({"customer_id": pd.Series([], dtype="int64")}))
    assert "no rows" in one_sentence(info.value)


def test_historical_join_keys_in_other_types(retriever):
    at = pd.Timestamp("2026-02-01T00:00Z")
    ints = pd.DataFrame({"customer_id": [1001, 1002], "event_timestamp": [at, at]})
    expected = retriever.get(STATS, ints, historical=True).df
    for ids in ([1001.0, 1002.0], ["1001", "1002"]):
        other = ints.assign(customer_id=ids)
        got = retriever.get(STATS, other, historical=True).df
        pd.testing.assert_frame_equal(got[NAMES[:3]], expected[NAMES[:3]])
        assert got["customer_id"].tolist() == ids  # the caller's column is left as given
    for ids in ([1001.5, 1002.0], [True, False], ["1001", "x"]):
        with pytest.raises(UsageError) as info:
            retriever.get(STATS, ints.assign(customer_id=ids), historical=True)
        assert "customer_id" in one_sentence(info.value)


def test_demo_repo_never_overwrites_another_repo(tmp_path):
    (tmp_path / "feature_store.yaml").write_text("project: fraud\nprovider: local\n")
    with pytest.raises(UsageError) as info:
        create_demo_repo(tmp_path)
    assert str(tmp_path) in one_sentence(info.value)
    assert (tmp_path / "feature_store.yaml").read_text().startswith("project: fraud")


def test_demo_repo_redoes_a_lost_online_store(tmp_path):
    repo = create_demo_repo(tmp_path / "r")
    (repo / "data" / "online_store.db").unlink()
    create_demo_repo(repo)
    df = FeatureRetriever(repo).get(STATS, ONE).df
    assert df[NAMES[:3]].notna().all(axis=None)
