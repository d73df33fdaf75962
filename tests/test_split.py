"""Splits on real Spark: reproducible, leakage-free, filters applied, meta.json consistent with the table."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, timedelta

import pytest
from typer.testing import CliRunner

from jobs.core import lake
from jobs.split.strategies import k_core
from jobs.split.table import read_meta, read_split, run
from tests.lakefixtures import T0, build_lake, synthetic_events

SHORT_USER = "short"  # only two interactions: must stay entirely in train under loo


def _events() -> list:
    events = synthetic_events(n_users=10, n_items=12, per_user=7)
    events += [(SHORT_USER, "i1", 4.0, T0 + timedelta(days=3)),
               (SHORT_USER, "i2", 2.0, T0 + timedelta(days=4))]
    # u0 re-rates i0 later with 1.0: the pair must collapse to that latest event.
    events.append(("u0", "i0", 1.0, T0 + timedelta(days=40)))
    return events


@pytest.fixture
def lake_settings(spark, settings):
    build_lake(spark, settings, events=_events())
    return settings


def _rows(spark, settings, name: str) -> list[tuple]:
    frame = read_split(spark, settings, name)
    assert frame.columns == lake.SPLIT_COLUMNS
    return sorted(tuple(r) for r in frame.collect())


def _by_user(rows) -> dict:
    grouped: dict = defaultdict(lambda: defaultdict(list))
    for user, _item, _rating, ts, split in rows:
        grouped[user][split].append(ts)
    return grouped


def _check_meta(meta: dict, rows: list, **expected) -> None:
    counts = Counter(r[4] for r in rows)
    assert meta["counts"] == {"train": counts["train"], "valid": counts["valid"], "test": counts["test"],
                              "users": len({r[0] for r in rows}), "items": len({r[1] for r in rows})}
    train_end = max(r[3] for r in rows if r[4] == "train").replace(tzinfo=UTC)
    assert meta["train_end"] == train_end.isoformat()
    assert {k: meta[k] for k in expected} == expected


def test_leave_last_out_is_leakage_free_and_dedups(spark, lake_settings):
    result = run(lake_settings, strategy="loo")
    rows = _rows(spark, lake_settings, "loo")
    meta = read_meta(lake_settings, "loo")
    assert result["meta"] == meta and result["table"] == str(lake.table_path(lake_settings, "splits/loo"))
    _check_meta(meta, rows, name="loo", strategy="loo", k_core=0, min_rating=None)
    # Duplicates collapsed to the latest event.
    rerated = (T0 + timedelta(days=40)).replace(tzinfo=None)
    assert [r for r in rows if r[:2] == ("u0", "i0")] == [("u0", "i0", 1.0, rerated, "test")]
    for user, splits in _by_user(rows).items():
        if user == SHORT_USER:
            assert set(splits) == {"train"}
            continue
        assert len(splits["test"]) == 1 and len(splits["valid"]) <= 1, user
        assert max(splits["train"]) <= min(splits["valid"] + splits["test"]), user
        assert all(v <= t for v in splits["valid"] for t in splits["test"]), user


def test_temporal_cut_puts_valid_and_test_after_all_train(spark, lake_settings):
    run(lake_settings, strategy="temporal", name="t1")
    rows = _rows(spark, lake_settings, "t1")
    _check_meta(read_meta(lake_settings, "t1"), rows, name="t1", strategy="temporal")
    train = [r[3] for r in rows if r[4] == "train"]
    held_out = [r[3] for r in rows if r[4] != "train"]
    assert held_out and min(held_out) > max(train)
    assert 0.7 <= len(train) / len(rows) <= 0.9


def test_random_split_is_reproducible_and_seeded(spark, lake_settings):
    first = run(lake_settings, strategy="random", seed=7)["meta"]
    rows = _rows(spark, lake_settings, "random")
    previous = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "5")  # a different partitioning must not matter
    try:
        again = run(lake_settings, strategy="random", seed=7)["meta"]
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", previous)
    assert _rows(spark, lake_settings, "random") == rows and again == first
    run(lake_settings, strategy="random", seed=8, name="other")
    seed7 = {r[:4]: r[4] for r in rows}
    seed8 = {r[:4]: r[4] for r in _rows(spark, lake_settings, "other")}
    shared = seed7.keys() & seed8.keys()
    assert len(shared) > len(seed7) // 2 and any(seed7[k] != seed8[k] for k in shared)
    assert Counter(seed7.values())["train"] > Counter(seed7.values())["test"] > 0


def test_k_core_reaches_the_fixed_point(spark):
    # A chain: removing item c drops user 3 below 2, which drops item b, which drops user 2 ...
    edges = [("1", "a"), ("1", "b"), ("2", "a"), ("2", "b"), ("2", "c"), ("3", "c"), ("3", "d"), ("4", "a"),
             ("4", "b")]
    frame = spark.createDataFrame([(u, i, 1.0) for u, i in edges],
                                  "user_id STRING, item_id STRING, rating FLOAT")
    kept = {(r.user_id, r.item_id) for r in k_core(frame, k=2).collect()}
    assert kept == {("1", "a"), ("1", "b"), ("2", "a"), ("2", "b"), ("4", "a"), ("4", "b")}
    assert min(Counter(u for u, _ in kept).values()) >= 2 and min(Counter(i for _, i in kept).values()) >= 2
    assert k_core(frame, k=4).isEmpty()


def test_min_rating_and_k_core_are_applied_before_splitting(spark, lake_settings):
    meta = run(lake_settings, strategy="loo", name="pos", min_rating=3.0, k_core=3)["meta"]
    rows = _rows(spark, lake_settings, "pos")
    assert rows and all(r[2] >= 3.0 for r in rows)
    # u0 re-rated i0 with 1.0 (latest event wins), so the pair is no positive any more.
    assert not [r for r in rows if r[:2] == ("u0", "i0")]
    assert meta["min_rating"] == 3.0 and meta["k_core"] == 3
    assert SHORT_USER not in {r[0] for r in rows}  # fewer than 3 interactions
    kept_before_cold_drop = meta["counts"]["train"] + meta["counts"]["valid"] + meta["counts"]["test"]
    assert kept_before_cold_drop + meta["dropped_cold"] <= len(_events())


def test_bad_arguments_and_missing_lake_fail_clearly(spark, settings):
    with pytest.raises(ValueError, match="unknown split strategy"):
        run(settings, strategy="kfold")
    with pytest.raises(ValueError, match="split name"):
        run(settings, strategy="loo", name="../escape")
    with pytest.raises(FileNotFoundError, match="interactions"):
        run(settings, strategy="loo")


def test_cli_split_prints_stats_and_rejects_bad_input(spark, lake_settings):
    from jobs.cli import app

    result = CliRunner().invoke(app, ["split", "--strategy", "temporal", "--name", "cli", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["meta"] == read_meta(lake_settings, "cli")
    assert summary["train"] == summary["meta"]["counts"]["train"] and 0 < summary["density"] <= 1
    assert CliRunner().invoke(app, ["split", "--strategy", "nope"]).exit_code == 1


@pytest.mark.slow
def test_ml100k_through_real_ingest_validate_and_split(spark, settings):
    """Integration: ml-100k ingested by jobs.ingest.batch passes the GE gate, then splits leave-last-out."""
    from datetime import date

    from jobs.core.settings import DEFAULT_DATASET
    from jobs.ingest import batch as ingest
    from jobs.validate import gate as validate

    day = date(2024, 3, 1)
    assert ingest.run(settings, source=DEFAULT_DATASET, batch_date=day, spark=spark)["rows_valid"] == 100_000
    gate = validate.run(settings)
    assert gate["success"] and gate["batch_date"] == day.isoformat()
    assert gate["facts"] == {"orphan_item_rows": 0, "orphan_user_rows": 0, "quarantine_ratio": 0.0}
    meta = run(settings, strategy="loo", name="ml")["meta"]
    counts = meta["counts"]
    # Every ml-100k user has >= 20 ratings: one test and one valid row each, unless its item was cold.
    assert counts["users"] == 943
    for held_out in ("valid", "test"):
        assert 943 - meta["dropped_cold"] <= counts[held_out] <= 943
    # ml-100k has one rating per (user, item): nothing is collapsed, every row is somewhere.
    assert counts["train"] + counts["valid"] + counts["test"] + meta["dropped_cold"] == 100_000
    frame = read_split(spark, settings, "ml")
    late = frame.groupBy("user_id").pivot("split", ["train", "valid", "test"]).agg({"event_ts": "max"})
    early = frame.groupBy("user_id").pivot("split", ["train", "valid", "test"]).agg({"event_ts": "min"})
    leaks = late.alias("l").join(early.alias("e"), "user_id", "inner").where(
        "l.train > e.valid OR l.train > e.test OR l.valid > e.test"
    )
    assert leaks.count() == 0


def test_as_of_keeps_only_earlier_events_and_a_rerun_reproduces_the_table(spark, lake_settings):
    """The nightly DAG's per-date split: only events before ``as_of``, identical on a rerun."""
    cutoff = T0 + timedelta(days=3, hours=12)  # after the short user's first event, before its second
    run(lake_settings, strategy="loo", name="night", as_of=cutoff)
    first = _rows(spark, lake_settings, "night")
    # The synthetic users' events all fall within T0 + 57 h; after the cut come only the short user's second
    # event (day 4) and u0's re-rating of i0 (day 40), so u0 keeps its original i0 rating.
    inputs = {(u, i) for u, i, _, ts in _events() if ts < cutoff}
    assert {(r[0], r[1]) for r in first} <= inputs
    assert all(r[3].replace(tzinfo=UTC) < cutoff for r in first)
    original = next(r for u, i, r, ts in _events() if (u, i) == ("u0", "i0") and ts < cutoff)
    assert [r[2] for r in first if (r[0], r[1]) == ("u0", "i0")] == [original]
    assert (SHORT_USER, "i2") not in {(r[0], r[1]) for r in first}
    assert read_meta(lake_settings, "night")["as_of"] == cutoff.astimezone(UTC).isoformat()
    run(lake_settings, strategy="loo", name="night", as_of=cutoff)
    assert _rows(spark, lake_settings, "night") == first
