"""Interaction statistics per user and per item at an as-of time: lake tables ``user_stats``/``item_stats``.

Run with ``ktrec stats --as-of 1998-04-22T00:00:00`` (naive times are UTC). Only interactions with
``event_ts <= as_of`` count, and every row is stamped ``event_timestamp = as_of``, so Feast's point-in-time
reads return, for an example at time t, the stats of the latest as-of not after t.

The tables keep their history: each run publishes a new lake version holding one parquet file per as-of time,
the other as-of times hard-linked from the previous version. A rerun of the same as-of replaces that as-of's
file, so reruns never duplicate rows. :func:`entity_stats` is the pure transform; :func:`run` does the I/O.
"""

from __future__ import annotations

import logging
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.core import lake
from jobs.core.settings import Settings
from jobs.core.spark import read_table
from jobs.ingest.write import parquet_rows

log = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400


def entity_stats(
    interactions: DataFrame, *, key: str, other: str, as_of: datetime, created: datetime
) -> DataFrame:
    """Per-``key`` stats of ``interactions`` up to ``as_of``; ``n_<other>s`` counts distinct partners."""
    as_of_ts = F.lit(lake.as_utc(as_of)).cast("timestamp")
    distinct = "n_users" if other == "user_id" else "n_items"
    grouped = (
        interactions.where(F.col("event_ts") <= as_of_ts)
        .groupBy(key)
        .agg(
            F.count(F.lit(1)).alias("n_interactions"),
            F.avg("rating").cast("double").alias("mean_rating"),
            F.max("event_ts").alias("last_ts"),
            F.countDistinct(other).alias(distinct),
        )
    )
    return grouped.select(
        F.col(key).cast("string").alias(key),
        "n_interactions",
        "mean_rating",
        ((as_of_ts.cast("double") - F.col("last_ts").cast("double")) / SECONDS_PER_DAY).alias(
            "days_since_last"
        ),
        distinct,
        as_of_ts.alias("event_timestamp"),
        F.lit(lake.as_utc(created)).cast("timestamp").alias("created_timestamp"),
    )


def user_stats(interactions: DataFrame, *, as_of: datetime, created: datetime) -> DataFrame:
    return entity_stats(interactions, key="user_id", other="item_id", as_of=as_of, created=created).select(
        *lake.stats_columns("user")
    )


def item_stats(interactions: DataFrame, *, as_of: datetime, created: datetime) -> DataFrame:
    return entity_stats(interactions, key="item_id", other="user_id", as_of=as_of, created=created).select(
        *lake.stats_columns("item")
    )


def as_of_prefix(as_of: datetime) -> str:
    """File-name prefix of one as-of time's rows inside a stats table version."""
    return f"asof-{lake.as_utc(as_of).strftime('%Y%m%dT%H%M%S%f')}-"


def publish_as_of(settings: Settings, *, table: str, rows: DataFrame, as_of: datetime) -> tuple[Path, int]:
    """Publish a new version of ``table`` (earlier as-of files carried over, this as-of's rows (re)written).

    Returns the version folder and the number of rows written, counted from the parquet footers.
    """
    prefix = as_of_prefix(as_of)
    staged = lake.staging_dir(settings, table)
    staged.mkdir()
    lake.carry_over(settings, table, staged, keep=lambda rel: not rel.name.startswith(prefix))
    # Spark writes a folder; its part files are renamed into the version root so that every reader (DuckDB
    # glob, Spark folder scan, pyarrow) sees one flat table. One file per as-of: a row per entity is small.
    scratch = staged / "_spark"
    rows.coalesce(1).write.parquet(str(scratch))
    written = parquet_rows(scratch)
    for index, part in enumerate(sorted(scratch.glob("part-*.parquet"))):
        part.rename(staged / f"{prefix}{index:05d}.parquet")
    shutil.rmtree(scratch)
    lake.publish(settings, table, staged)
    return staged, written


def compute(spark: SparkSession, settings: Settings, *, as_of: datetime) -> dict[str, DataFrame]:
    """The two stats tables for ``as_of`` from the lake's interactions (not yet written)."""
    interactions = read_table(spark, settings, lake.INTERACTIONS)
    created = datetime.now(UTC)  # bookkeeping only: which run wrote the row
    return {
        lake.USER_STATS: user_stats(interactions, as_of=as_of, created=created),
        lake.ITEM_STATS: item_stats(interactions, as_of=as_of, created=created),
    }


def run(settings: Settings, *, as_of: datetime) -> dict:
    """Compute and publish ``user_stats`` and ``item_stats`` for ``as_of``; returns a JSON-able summary."""
    from jobs.core.spark import get_spark

    started = time.perf_counter()
    as_of = lake.as_utc(as_of)
    spark = get_spark(settings, "ktrec-stats")
    tables = {}
    for table, rows in compute(spark, settings, as_of=as_of).items():
        version, count = publish_as_of(settings, table=table, rows=rows, as_of=as_of)
        as_of_times = {f.name.split("-")[1] for f in version.glob("asof-*.parquet")}
        tables[table] = {
            "path": str(lake.table_path(settings, table)),
            "version": version.name,
            "rows": count,
            "as_of_times": len(as_of_times),
        }
        log.info("%s: %d rows as of %s", table, count, as_of.isoformat())
    return {"as_of": as_of.isoformat(), "tables": tables, "seconds": round(time.perf_counter() - started, 3)}
