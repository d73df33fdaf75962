"""The Feast feature repository end to end on real stores: DuckDB + SQLite (embedded), `feast serve` (HTTP),
Redis, and the servers profile (Spark offline store, SQL registry on Postgres, Redis).

Profiles are written as the profiles job writes them (tests/lake_builders.py); stats by the real Spark job.
Two versions of u1's profile exist: "old" at T1 and "new" at T2; reads between them must see "old".
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from jobs.core import lake
from jobs.core.settings import REPO_ROOT, Settings, get_settings
from jobs.publish import materialize, stats
from jobs.publish import reads as feature_reads
from jobs.publish.store import config_dict, get_store, render_yaml
from tests.lakefixtures import append_profiles, write_interactions

pytestmark = pytest.mark.filterwarnings("ignore:The spark .* experimental:RuntimeWarning")

T1, T2 = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)
BETWEEN, AFTER, BEFORE = (
    datetime(2024, 1, 20, tzinfo=UTC),
    datetime(2024, 3, 1, tzinfo=UTC),
    datetime(2023, 12, 1, tzinfo=UTC),
)
FEAST_BIN = Path(sys.executable).with_name("feast")


def _write_profiles(settings: Settings) -> None:
    append_profiles(
        settings, entity="user", rows=[("u1", "old", [1.0, 0.0], T1), ("u2", "u2 at t1", [0.5, 0.5], T1)]
    )
    # A later version of u1's profile, appended as the profiles job does: history is kept.
    append_profiles(settings, entity="user", rows=[("u1", "new", [0.0, 1.0], T2)])
    append_profiles(
        settings, entity="item", rows=[("i1", "item one", [1.0, 1.0], T1), ("i2", "item two", [2.0, 2.0], T2)]
    )


def _reconfigure(monkeypatch, **feast: str) -> Settings:
    """The process settings with some ``feast`` values changed (features/ reads the process settings)."""
    for key, value in feast.items():
        monkeypatch.setenv(f"KTREC_FEAST__{key.upper()}", value)
    get_settings.cache_clear()
    return get_settings()


def test_profiles_render_to_feature_store_yaml(settings):
    embedded = config_dict(settings)
    assert embedded["offline_store"] == {"type": "duckdb"}
    assert embedded["online_store"] == {"type": "sqlite", "path": str(settings.feast_dir / "online.db")}
    assert embedded["registry"]["path"] == str(settings.feast_dir / "registry.db")
    rendered = yaml.safe_load(render_yaml(settings).read_text())
    assert rendered == embedded

    servers = config_dict(Settings(profile="servers", home=settings.home))
    assert servers["online_store"] == {"type": "redis", "connection_string": "127.0.0.1:6379"}
    assert servers["registry"]["registry_type"] == "sql"
    assert servers["registry"]["path"].endswith("@127.0.0.1:5432/ktrec_feast")
    assert servers["offline_store"]["type"] == "spark"
    assert servers["offline_store"]["spark_conf"]["spark.master"] == "spark://127.0.0.1:7077"

    # The definitions are built for the settings they are asked for, whatever the process settings say.
    from jobs.publish.store import definitions

    elsewhere = Settings(home=settings.home.parent / "elsewhere")
    paths = {o.name: o.path for o in definitions(elsewhere) if hasattr(o, "path") and o.name.startswith("lake_")}
    assert paths == {f"lake_{t}": f"{elsewhere.home}/lake/{t}/**/*.parquet"
                     for t in ("profiles_user", "profiles_item", "user_stats", "item_stats")}


def test_point_in_time_reads_never_return_a_later_profile(settings):
    _write_profiles(settings)
    store = get_store(settings)
    assert {v.name for v in store.list_feature_views()} == {
        "user_profile",
        "item_profile",
        "user_stats",
        "item_stats",
    }
    assert all(f.description for v in store.list_feature_views() for f in v.features)

    def texts(as_of: datetime) -> list:
        frame = feature_reads.historical_features(
            settings,
            entity="user",
            ids=["u1", "u2", "nobody"],
            as_of=as_of,
            views=["user_profile"],
            store=store,
        )
        assert list(frame["user_id"]) == ["u1", "u2", "nobody"]  # one row per id, in the order asked
        return [None if pd.isna(t) else t for t in frame["user_profile__profile_text"]]

    assert texts(BETWEEN) == ["old", "u2 at t1", None]  # the T2 profile did not exist yet
    assert texts(AFTER) == ["new", "u2 at t1", None]
    assert texts(BEFORE) == [None, None, None]

    embeddings = feature_reads.profile_embeddings(
        settings, entity="item", ids=["i1", "i2"], as_of=BETWEEN, store=store
    )
    assert list(embeddings) == ["i1"]
    np.testing.assert_array_equal(embeddings["i1"], np.array([1.0, 1.0], dtype=np.float32))

    with pytest.raises(FileNotFoundError, match="user_stats.*ktrec stats"):
        feature_reads.historical_features(settings, entity="user", ids=["u1"], as_of=AFTER, store=store)
    with pytest.raises(ValueError, match="entity must be"):
        feature_reads.historical_features(settings, entity="shop", ids=["u1"], as_of=AFTER, store=store)  # type: ignore[arg-type]


def test_stats_and_profiles_materialize_online_as_of_the_logical_date(spark, settings):
    _write_profiles(settings)
    write_interactions(
        spark,
        settings,
        [
            ("u1", "i1", 4.0, datetime(2023, 12, 30, tzinfo=UTC)),
            ("u1", "i2", 2.0, datetime(2024, 1, 25, tzinfo=UTC)),
            ("u2", "i2", 5.0, datetime(2024, 1, 26, tzinfo=UTC)),
        ],
    )
    stats.run(settings, as_of=T1)
    stats.run(settings, as_of=T2)

    # Training reads the whole service for (user, item, time) examples, point in time.
    store = get_store(settings)
    examples = pd.DataFrame(
        {"user_id": ["u1", "u1"], "item_id": ["i2", "i2"], "event_timestamp": [BETWEEN, AFTER]}
    )
    train = (
        store.get_historical_features(
            entity_df=examples, features=store.get_feature_service("kt_training"), full_feature_names=True
        )
        .to_df()
        .sort_values("event_timestamp")
    )
    assert list(train["user_stats__n_interactions"]) == [1, 2]  # stats as of T1, then as of T2
    assert list(train["user_profile__profile_text"]) == ["old", "new"]
    assert pd.isna(train["item_stats__n_interactions"].iloc[0])  # i2 had no events by T1: no row at all
    assert list(train["item_profile__profile_text"].fillna("-")) == ["-", "item two"]

    first = materialize.run(settings, end=BETWEEN)
    assert {v["mode"] for v in first["views"].values()} == {"initial"} and not first["skipped"]
    online = feature_reads.online_features(settings, entity="user", ids=["u1", "nobody"], store=store)
    assert online["user_profile__embedding"][0] == pytest.approx([1.0, 0.0])  # T2 is after the logical date
    assert online["user_stats__n_interactions"][0] == 1
    assert online["user_profile__embedding"][1] is None

    later = materialize.run(settings, end=AFTER)
    assert later["views"]["user_profile"] == {
        "mode": "incremental",
        "start": BETWEEN.isoformat(),
        "end": AFTER.isoformat(),
    }
    rerun = materialize.run(settings, end=AFTER)
    assert rerun["views"]["user_profile"]["mode"] == "rerun"
    online = feature_reads.online_features(settings, entity="user", ids=["u1"], store=store)
    assert online["user_profile__embedding"][0] == pytest.approx([0.0, 1.0])
    assert online["user_stats__n_interactions"][0] == 2


def test_materialize_refuses_nanosecond_timestamps(settings):
    import pyarrow as pa
    import pyarrow.parquet as pq

    _write_profiles(settings)
    staged = lake.staging_dir(settings, lake.USER_PROFILES)
    staged.mkdir()
    lake.carry_over(settings, lake.USER_PROFILES, staged)
    # What pyarrow writes from pandas by default: nanoseconds.
    rows = pd.DataFrame(
        {
            "entity_id": ["u3"],
            "profile_text": ["x"],
            "embedding": [[0.0, 0.0]],
            "source_hash": ["h"],
            "generator": ["g"],
            "event_timestamp": [pd.Timestamp(T2)],
            "created_timestamp": [pd.Timestamp(T2)],
        }
    )
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), staged / "part-ns.parquet")
    lake.publish(settings, lake.USER_PROFILES, staged)

    with pytest.raises(ValueError, match=r"profiles_user.*nanosecond.*part-ns.parquet:event_timestamp"):
        materialize.run(settings, end=AFTER)
    # Checked before anything is loaded: the good item profiles were not materialized either.
    online = feature_reads.online_features(
        settings, entity="item", ids=["i1"], store=get_store(settings, apply=False)
    )
    assert online["item_profile__embedding"][0] is None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_feast_serve_answers_like_the_sdk(settings):
    _write_profiles(settings)
    result = CliRunner().invoke(_cli_app(), ["materialize", "--end", AFTER.isoformat(), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["views"]["user_profile"]["mode"] == "initial"
    assert set(summary["skipped"]) == {"user_stats", "item_stats"}  # no stats table yet: skipped, said so

    port = _free_port()
    server = subprocess.Popen(
        [
            str(FEAST_BIN),
            "-c",
            str(settings.feast_dir),
            "serve",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "--no-access-log",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, server)
        body = {
            "features": ["user_profile:embedding", "user_profile:profile_text"],
            "entities": {"user_id": ["u1", "u2", "nobody"]},
            "full_feature_names": True,
        }
        reply = httpx.post(f"{base}/get-online-features", json=body, timeout=30).json()
        names = reply["metadata"]["feature_names"]
        over_http = dict(zip(names, (r["values"] for r in reply["results"]), strict=True))
        sdk = (
            get_store(settings, apply=False)
            .get_online_features(
                features=body["features"],
                entity_rows=[{"user_id": u} for u in body["entities"]["user_id"]],
                full_feature_names=True,
            )
            .to_dict()
        )
        assert over_http["user_profile__profile_text"] == ["new", "u2 at t1", None]
        assert over_http == sdk
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _cli_app():
    from jobs.cli import app

    return app


def _wait_healthy(base: str, server: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(
                f"feast serve exited {server.returncode}: {server.stderr.read().decode()[-2000:]}"
            )
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError("feast serve did not become healthy")


def _redis_keys(project: str) -> list[bytes]:
    import redis

    return list(redis.Redis(host="127.0.0.1", port=6379).scan_iter(match=f"*{project}".encode()))


@pytest.mark.servers
def test_redis_online_store_reads_and_cleans_up(settings, monkeypatch):
    project = f"ktrec_test_{uuid.uuid4().hex[:10]}"
    settings = _reconfigure(monkeypatch, online_store="redis", project=project)
    _write_profiles(settings)
    materialize.run(settings, end=BETWEEN)
    store = get_store(settings, apply=False)
    try:
        online = feature_reads.online_features(settings, entity="item", ids=["i1", "i2"], store=store)
        assert online["item_profile__embedding"][0] == pytest.approx([1.0, 1.0])
        assert (
            online["item_profile__embedding"][1] is None
        )  # i2's only profile is dated after the logical date
        assert _redis_keys(project), "materialized rows should be in Redis under the project's keys"
    finally:
        store.teardown()  # file registry of this test only; removes the project's Redis keys
    assert _redis_keys(project) == []


def test_feast_cli_plans_the_repository(settings):
    """`feast plan` (what CI runs) parses features/ through repo.py without registering anything twice."""
    fs_yaml = render_yaml(settings)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}  # KTREC_HOME is already the test's home
    plan = subprocess.run(
        [
            str(FEAST_BIN),
            "-c",
            str(REPO_ROOT / "features"),
            "-f",
            str(fs_yaml),
            "plan",
            "--skip-source-validation",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert plan.returncode == 0, plan.stderr[-3000:]
    for name in (
        "user",
        "item",
        "user_profile",
        "item_stats",
        "kt_training",
        "kt_training_v1",
        "online_ranking",
    ):
        assert f" {name}" in plan.stdout, plan.stdout
    assert get_store(settings, apply=False).list_feature_views() == []  # plan registers nothing


def _drop_database(name: str) -> None:
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    conn.close()


@pytest.mark.servers
def test_servers_profile_spark_offline_sql_registry_and_redis(spark, settings, monkeypatch):
    """The servers profile on local servers: point-in-time reads via Spark, registry in Postgres, Redis."""
    database, project = f"ktrec_feast_test_{uuid.uuid4().hex[:8]}", f"ktrec_test_{uuid.uuid4().hex[:10]}"
    settings = _reconfigure(
        monkeypatch,
        offline_store="spark",
        registry="sql",
        online_store="redis",
        project=project,
        registry_sql_url=f"postgresql+psycopg2://postgres@127.0.0.1:5432/{database}",
    )
    _write_profiles(settings)
    store = None
    try:
        store = get_store(settings)  # creates the database, then applies
        # Another client of the same registry (e.g. `feast serve`) sees the definitions without applying them.
        reader = get_store(settings, apply=False)
        assert {s.name for s in reader.list_feature_services()} >= {"kt_training", "online_ranking"}

        frame = feature_reads.historical_features(
            settings,
            entity="user",
            ids=["u1", "u2", "nobody"],
            as_of=BETWEEN,
            views=["user_profile"],
            store=store,
        )
        assert list(frame["user_profile__profile_text"].fillna("-")) == ["old", "u2 at t1", "-"]

        summary = materialize.run(settings, end=BETWEEN)
        assert summary["views"]["user_profile"]["mode"] == "initial"
        online = feature_reads.online_features(settings, entity="user", ids=["u1"], store=reader)
        assert online["user_profile__embedding"][0] == pytest.approx([1.0, 0.0])
        assert _redis_keys(project)
    finally:
        if store is not None:
            store.teardown()  # deletes every project in the registry: only ever on this test's own database
            store.registry.write_engine.dispose()
        _drop_database(database)
    assert _redis_keys(project) == []
