"""jobs/publish/stats.py on a real local Spark: the pure transform, history across as-of times, idempotent reruns."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.testing.utils import assertDataFrameEqual

from jobs.core import lake
from jobs.publish import stats
from tests.lakefixtures import write_interactions

DAY1, DAY2, DAY3 = (datetime(2024, 1, d, 12, tzinfo=UTC) for d in (1, 2, 3))
EVENTS = [
    ("u1", "i1", 4.0, DAY1),
    ("u1", "i1", 2.0, DAY2),  # a second event on the same item: counted, but n_items stays 1
    ("u1", "i2", None, DAY2),  # implicit feedback: no rating, so it does not move the mean
    ("u2", "i2", 5.0, DAY3),
]


def test_user_and_item_stats_only_count_events_up_to_as_of(spark):
    frame = spark.createDataFrame(EVENTS, "user_id STRING, item_id STRING, rating FLOAT, event_ts TIMESTAMP")
    as_of = datetime(2024, 1, 2, 18, tzinfo=UTC)  # before u2's only event
    created = datetime(2024, 6, 1, tzinfo=UTC)

    users = stats.user_stats(frame, as_of=as_of, created=created)
    assert users.columns == ["user_id", "n_interactions", "mean_rating", "days_since_last", "n_items",
                             "event_timestamp", "created_timestamp"]
    assertDataFrameEqual(users, [("u1", 3, 3.0, 0.25, 2, naive(as_of), naive(created))], rtol=1e-9)

    items = stats.item_stats(frame, as_of=as_of, created=created)
    assert items.columns == ["item_id", "n_interactions", "mean_rating", "days_since_last", "n_users",
                             "event_timestamp", "created_timestamp"]
    assertDataFrameEqual(
        items,
        [
            ("i1", 2, 3.0, 0.25, 1, naive(as_of), naive(created)),
            ("i2", 1, None, 0.25, 1, naive(as_of), naive(created)),
        ],
        rtol=1e-9,
    )


def naive(moment: datetime) -> datetime:
    """Spark hands timestamps back as naive session-time (UTC) values."""
    return moment.replace(tzinfo=None)


def _read(settings, table: str) -> pa.Table:
    return pq.read_table(lake.table_path(settings, table).resolve())


def test_run_keeps_history_and_a_rerun_replaces_its_as_of(spark, settings):
    write_interactions(spark, settings, EVENTS)
    first = stats.run(settings, as_of=datetime(2024, 1, 2, 18))  # naive: read as UTC
    assert first["tables"][lake.USER_STATS]["rows"] == 1
    stats.run(settings, as_of=DAY3)
    rerun = stats.run(settings, as_of=DAY3)

    assert rerun["tables"][lake.USER_STATS]["as_of_times"] == 2
    users = _read(settings, lake.USER_STATS)
    # Feast rejects nanosecond timestamps: the files must carry microseconds, in UTC.
    assert users.schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")
    rows = sorted((r["event_timestamp"].day, r["user_id"], r["n_interactions"]) for r in users.to_pylist())
    assert rows == [(2, "u1", 3), (3, "u1", 3), (3, "u2", 1)]  # no duplicate rows for the rerun as-of
    items = _read(settings, lake.ITEM_STATS).to_pylist()
    assert sorted((r["event_timestamp"].day, r["item_id"], r["n_users"]) for r in items) == [
        (2, "i1", 1),
        (2, "i2", 1),
        (3, "i1", 1),
        (3, "i2", 2),
    ]
    # Each run is its own lake version; the previous one is left intact for readers that hold it.
    assert rerun["tables"][lake.USER_STATS]["version"] != first["tables"][lake.USER_STATS]["version"]


def test_cli_rejects_a_malformed_as_of(settings):
    from typer.testing import CliRunner

    from jobs.cli import app

    result = CliRunner().invoke(app, ["stats", "--as-of", "yesterday"])
    assert result.exit_code == 2
    assert "ISO-8601" in result.output and not lake.exists(settings, lake.USER_STATS)


def test_run_without_interactions_says_what_is_missing(settings):
    with pytest.raises(FileNotFoundError, match="interactions.*ktrec ingest"):
        stats.run(settings, as_of=DAY1)
    assert not lake.exists(settings, lake.USER_STATS)
