"""Small lake tables for tests with chosen rows: interactions (the ingest contract, written with Spark through
staging_dir -> publish) and profiles (through the profiles job's own table writer)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import pyarrow as pa

from jobs import lake, profile_table
from jobs.settings import Settings


def write_interactions(
    spark, settings: Settings, rows: Sequence[tuple[str, str, float | None, datetime]]
) -> None:
    """Publish ``interactions`` with ``(user_id, item_id, rating, event_ts)`` rows (partitioned by date)."""
    from pyspark.sql import functions as F

    frame = spark.createDataFrame(
        [(u, i, r, lake.as_utc(t)) for u, i, r, t in rows],
        "user_id STRING, item_id STRING, rating FLOAT, event_ts TIMESTAMP",
    ).select(
        "user_id",
        "item_id",
        "rating",
        "event_ts",
        F.lit("test").alias("source"),
        F.lit(False).alias("ts_synthetic"),
        F.to_date("event_ts").alias("event_date"),
    )
    staged = lake.staging_dir(settings, lake.INTERACTIONS)
    frame.select(*lake.INTERACTION_COLUMNS).write.partitionBy("event_date").parquet(str(staged))
    lake.publish(settings, lake.INTERACTIONS, staged)


def append_profiles(
    settings: Settings,
    *,
    entity: str,
    rows: Sequence[tuple[str, str, Sequence[float], datetime]],
    generator: str = "template:none:v1",
) -> None:
    """Append ``(entity_id, profile_text, embedding, as_of)`` rows as a new version of ``profiles_<entity>``.

    Goes through the profiles job's own writer (jobs/profile_table.py), so Feast reads exactly its layout.
    """
    table = pa.table(
        {
            "entity_id": [r[0] for r in rows],
            "profile_text": [r[1] for r in rows],
            "embedding": [list(r[2]) for r in rows],
            "source_hash": [uuid.uuid4().hex for _ in rows],
            "generator": [generator] * len(rows),
            "event_timestamp": [lake.as_utc(r[3]) for r in rows],
            "created_timestamp": [lake.as_utc(r[3]) for r in rows],
        },
        schema=profile_table.PROFILE_SCHEMA,
    )
    profile_table.write_version(settings, entity=entity, rows=table)
