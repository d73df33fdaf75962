"""CoRA's prompt dataset (jobs/cora/data.py) on a small inline lake, checked against plain-Python truth:
labels by threshold, time-ordered splits, warm/cold flags, and histories only from before the target."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from cora_tiny import write_tiny_lake

from jobs.cora import data as cora_data
from jobs.core import lake
from jobs.core.spark import read_table
from models.cora.prompt import render

T0 = datetime(2020, 1, 1)
# (user, item, rating, day): u3 and i6 occur only at the end (cold in a time split).
EVENTS = [
    ("u1", "i1", 5, 0), ("u1", "i2", 2, 1), ("u2", "i1", 4, 2), ("u1", "i3", 4, 3), ("u2", "i2", 5, 4),
    ("u1", "i4", 3, 5), ("u2", "i3", 1, 6), ("u1", "i5", 5, 7), ("u2", "i4", 4, 8), ("u1", "i2", 4, 9),
    ("u2", "i5", 5, 10), ("u1", "i6", 5, 11), ("u3", "i1", 4, 12), ("u3", "i6", 2, 13), ("u2", "i6", 3, 13),
]
TITLES = {f"i{k}": f"Movie {k}" for k in range(1, 7)}


def _write_lake(spark, settings, events=EVENTS) -> None:
    write_tiny_lake(spark, settings, events=events, titles=TITLES, t0=T0)


def _expected_history(user, day, threshold, max_history, events=EVENTS):
    liked = sorted((d, TITLES[i]) for u, i, r, d in events if u == user and r >= threshold and d < day)
    return [t for _, t in liked][-max_history:]


def _read(settings, name):
    return lake.table_path(settings, cora_data.cora_table(name))


def test_prompts_labels_histories_and_time_splits(spark, settings):
    _write_lake(spark, settings)
    summary = cora_data.run(settings, name="t", threshold=4.0, max_history=2, min_history=0,
                            valid_frac=0.2, test_frac=0.2, spark=spark)
    assert summary["path"] == str(_read(settings, "t"))
    df = read_table(spark, settings, cora_data.cora_table("t")).toPandas()
    assert len(df) == len(EVENTS) and sorted(df.columns) == sorted(cora_data.DATA_COLUMNS)
    day = {(u, i, d) for u, i, _, d in EVENTS}
    for row in df.itertuples():
        d = (row.event_ts.to_pydatetime().replace(tzinfo=None) - T0).days
        assert (row.user_id, row.item_id, d) in day
        rating = next(r for u, i, r, dd in EVENTS if (u, i, dd) == (row.user_id, row.item_id, d))
        assert row.label == int(rating >= 4)
        assert list(row.history_titles) == _expected_history(row.user_id, d, 4.0, 2)
        assert row.prompt == render(list(row.history_titles), TITLES[row.item_id])
    # Time order: every train event precedes every valid event, which precedes every test event.
    by = df.groupby("split")["event_ts"]
    assert by.max()["train"] < by.min()["valid"] and by.max()["valid"] < by.min()["test"]
    assert set(df.split) == {"train", "valid", "test"}
    train = df[df.split == "train"]
    for row in df.itertuples():
        assert row.warm_user == (row.user_id in set(train.user_id))
        assert row.warm_item == (row.item_id in set(train.item_id))
        assert row.cold == (not (row.warm_user and row.warm_item))
    assert not df[df.user_id == "u3"].warm_user.any() and not df[df.item_id == "i6"].warm_item.any()
    meta = json.loads((_read(settings, "t") / "meta.json").read_text())
    assert meta["counts"]["test"]["n"] == int((df.split == "test").sum())
    assert meta["counts"]["test"]["cold"] == int(df[df.split == "test"].cold.sum())


def test_threshold_and_min_history_change_labels_and_rows(spark, settings):
    _write_lake(spark, settings)
    cora_data.run(settings, name="t3", threshold=3.0, max_history=10, min_history=1, spark=spark)
    df = read_table(spark, settings, cora_data.cora_table("t3")).toPandas()
    for row in df.itertuples():
        d = (row.event_ts.to_pydatetime().replace(tzinfo=None) - T0).days
        rating = next(r for u, i, r, dd in EVENTS if (u, i, dd) == (row.user_id, row.item_id, d))
        assert row.label == int(rating >= 3)
        assert list(row.history_titles) == _expected_history(row.user_id, d, 3.0, 10)
    expected_rows = sum(1 for u, _, _, d in EVENTS if _expected_history(u, d, 3.0, 10))
    assert len(df) == expected_rows and (df.n_history >= 1).all()


def test_existing_split_table_decides_the_split_and_reruns_are_idempotent(spark, settings):
    _write_lake(spark, settings)
    custom = [(u, i, float(r), T0 + timedelta(days=d), "test" if u == "u2" else "train") for u, i, r, d in EVENTS]
    staged = lake.staging_dir(settings, lake.split_table("custom"))
    spark.createDataFrame(custom, "user_id STRING, item_id STRING, rating FLOAT, event_ts TIMESTAMP, split STRING") \
        .write.parquet(str(staged))
    lake.publish(settings, lake.split_table("custom"), staged)
    first = cora_data.run(settings, name="c", split="custom", min_history=0, spark=spark)
    rows = lambda: sorted(map(tuple, read_table(spark, settings, cora_data.cora_table("c"))  # noqa: E731
                              .select("user_id", "item_id", "event_ts", "split", "warm_user").collect()))
    before = rows()
    assert all((s == "test") == (u == "u2") for u, _, _, s, _ in before)
    assert all(w == (u != "u2") for u, _, _, _, w in before)
    second = cora_data.run(settings, name="c", split="custom", min_history=0, spark=spark)
    assert rows() == before and second["meta"]["counts"] == first["meta"]["counts"]
    assert first["meta"]["source"] == "splits/custom"


def test_missing_inputs_give_clear_errors(spark, settings):
    with pytest.raises(FileNotFoundError, match="ktrec ingest"):
        cora_data.run(settings, name="x", spark=spark)
    with pytest.raises(FileNotFoundError, match="splits/none"):
        cora_data.run(settings, name="x", split="none", spark=spark)
    with pytest.raises(ValueError, match="valid_frac"):
        _write_lake(spark, settings)
        cora_data.run(settings, name="x", valid_frac=0.6, test_frac=0.5, spark=spark)
    assert not lake.exists(settings, cora_data.cora_table("x"))
