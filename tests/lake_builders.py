"""Small lake tables for tests, written the way the jobs write them (staging_dir -> write -> publish).

Stand-ins for the ingest and profiles jobs' outputs, following their contracts in jobs/lake.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq

from jobs import lake
from jobs.settings import Settings

PROFILE_ARROW_SCHEMA = pa.schema([
    ("entity_id", pa.string()),
    ("profile_text", pa.string()),
    ("embedding", pa.list_(pa.float32())),
    ("source_hash", pa.string()),
    ("generator", pa.string()),
    ("event_timestamp", pa.timestamp("us", tz="UTC")),
    ("created_timestamp", pa.timestamp("us", tz="UTC")),
])


def write_interactions(spark, settings: Settings, rows: Sequence[tuple[str, str, float | None, datetime]]) -> None:
    """Publish ``interactions`` holding ``(user_id, item_id, rating, event_ts)`` rows (partitioned by date)."""
    from pyspark.sql import functions as F

    frame = spark.createDataFrame(
        [(u, i, r, lake.as_utc(t)) for u, i, r, t in rows], "user_id STRING, item_id STRING, rating FLOAT, event_ts TIMESTAMP"
    ).select(
        "user_id", "item_id", "rating", "event_ts", F.lit("test").alias("source"),
        F.lit(False).alias("ts_synthetic"), F.to_date("event_ts").alias("event_date"),
    )
    staged = lake.staging_dir(settings, lake.INTERACTIONS)
    frame.select(*lake.INTERACTION_COLUMNS).write.partitionBy("event_date").parquet(str(staged))
    lake.publish(settings, lake.INTERACTIONS, staged)


def append_profiles(
    settings: Settings, *, entity: str, rows: Sequence[tuple[str, str, Sequence[float], datetime]],
    generator: str = "template:none:v1",
) -> None:
    """Append ``(entity_id, profile_text, embedding, as_of)`` rows as a new version of ``profiles_<entity>``."""
    table = lake.USER_PROFILES if entity == "user" else lake.ITEM_PROFILES
    staged = lake.staging_dir(settings, table)
    staged.mkdir()
    lake.carry_over(settings, table, staged)
    data = {
        "entity_id": [r[0] for r in rows],
        "profile_text": [r[1] for r in rows],
        "embedding": [list(r[2]) for r in rows],
        "source_hash": [uuid.uuid4().hex for _ in rows],
        "generator": [generator] * len(rows),
        "event_timestamp": [lake.as_utc(r[3]) for r in rows],
        "created_timestamp": [lake.as_utc(r[3]) for r in rows],
    }
    pq.write_table(pa.table(data, schema=PROFILE_ARROW_SCHEMA), staged / f"part-{uuid.uuid4().hex}.parquet")
    lake.publish(settings, table, staged)
