"""Builds small lake tables with real Spark, the way the ingest contract writes them.

Tests of the jobs downstream of ingest (validate, split, profiles, stats) use this to set up a lake in
their tmp KTREC_HOME without going through an input adapter: each table is written with
``df.write.parquet`` into ``jobs.core.lake.staging_dir`` and then published; interactions are partitioned by
``event_date``; an ingest manifest is written for the batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from jobs.core import lake
from jobs.core.settings import Settings
from jobs.ingest import write as ingest_write

# (user_id, item_id, rating, event_ts); rating may be None.
Event = tuple[str, str, float | None, datetime]

T0 = datetime(2024, 1, 1, tzinfo=UTC)
BATCH_DATE = date(2024, 3, 1)


def write_table(
    spark: SparkSession, settings: Settings, *, name: str, rows: Iterable[Sequence[Any]], ddl: str,
    partition_by: Sequence[str] = (),
) -> Path:
    """Write ``rows`` (tuples in ``ddl`` column order) as a new published version of table ``name``."""
    frame = spark.createDataFrame(list(rows), ddl)
    staged = lake.staging_dir(settings, name)
    writer = frame.write.partitionBy(*partition_by) if partition_by else frame.write
    writer.parquet(str(staged))
    return lake.publish(settings, name, staged)


def interaction_rows(events: Iterable[Event], *, source: str = "fixture") -> list[tuple]:
    """Rows in INTERACTION_COLUMNS order; ``event_date`` derived from the timestamp (naive = UTC)."""
    return [(u, i, r, lake.as_utc(ts), source, False, lake.as_utc(ts).date()) for u, i, r, ts in events]


def write_interactions(spark: SparkSession, settings: Settings, events: Iterable[Event]) -> Path:
    """Publish ``interactions`` with ``(user_id, item_id, rating, event_ts)`` rows, partitioned by date."""
    return write_table(spark, settings, name=lake.INTERACTIONS, rows=interaction_rows(events),
                       ddl=lake.INTERACTIONS_SCHEMA, partition_by=["event_date"])


def append_profiles(
    settings: Settings, *, entity: str, rows: Sequence[tuple[str, str, Sequence[float], datetime]],
    generator: str = "template:none:v1",
) -> None:
    """Append ``(entity_id, profile_text, embedding, as_of)`` rows as a new version of ``profiles_<entity>``
    through the profiles job's own writer (jobs/profiles/table.py), so Feast reads exactly its layout."""
    import uuid

    import pyarrow as pa

    from jobs.profiles import table as profile_table
    table = pa.table({
        "entity_id": [r[0] for r in rows], "profile_text": [r[1] for r in rows],
        "embedding": [list(r[2]) for r in rows], "source_hash": [uuid.uuid4().hex for _ in rows],
        "generator": [generator] * len(rows), "event_timestamp": [lake.as_utc(r[3]) for r in rows],
        "created_timestamp": [lake.as_utc(r[3]) for r in rows],
    }, schema=lake.PROFILE_SCHEMA)
    profile_table.write_version(settings, entity=entity, rows=table)


def write_manifest(
    settings: Settings, *, batch_date: date, rows_read: int, rows_quarantined: int = 0, **extra: Any
) -> Path:
    """The ingest manifest of ``batch_date``, written by ingest's own writer."""
    manifest = {
        "batch_date": batch_date.isoformat(), "source": "fixture", "format": "fixture",
        "rows_read": rows_read,
        "rows_valid": rows_read - rows_quarantined, "rows_quarantined": rows_quarantined,
        "quarantine_reasons": {"fixture": rows_quarantined} if rows_quarantined else {},
        "partitions_written": [], "items": None, "users": None, "seconds": 0.0,
    } | extra
    return ingest_write.write_manifest(settings, manifest)


def build_lake(
    spark: SparkSession, settings: Settings, *, events: Sequence[Event], items: Sequence[str] | None = None,
    users: Sequence[str] | None = None, batch_date: date = BATCH_DATE, rows_quarantined: int = 0,
) -> dict[str, Path]:
    """interactions, items and users tables plus the batch manifest; items/users default to those seen."""
    items = sorted({e[1] for e in events}) if items is None else items
    users = sorted({e[0] for e in events}) if users is None else users
    paths = {
        lake.INTERACTIONS: write_interactions(spark, settings, events),
        lake.ITEMS: write_table(
            spark, settings, name=lake.ITEMS, ddl=lake.ITEMS_SCHEMA,
            rows=[(i, f"Item {i}", 2000, "Drama", None, None, None) for i in items],
        ),
        lake.USERS: write_table(
            spark, settings, name=lake.USERS, ddl=lake.USERS_SCHEMA,
            rows=[(u, 30, "F", "other", "00000") for u in users],
        ),
    }
    rows_read = len(events) + rows_quarantined
    paths["manifest"] = write_manifest(
        settings, batch_date=batch_date, rows_read=rows_read, rows_quarantined=rows_quarantined
    )
    return paths


def synthetic_events(*, n_users: int = 8, n_items: int = 10, per_user: int = 6, seed: int = 0) -> list[Event]:
    """A small, valid, deterministic interaction log: distinct items per user, increasing timestamps."""
    events = []
    for u in range(n_users):
        for k in range(per_user):
            item = (u * 3 + k * (seed + 7)) % n_items
            # Hours, not days: few event_date partitions keep the fixture tables quick to write and scan.
            ts = T0 + timedelta(hours=8 * k + u, minutes=(u * k + seed) % 60)
            events.append((f"u{u}", f"i{item}", float(1 + (u + k) % 5), ts))
    return events
