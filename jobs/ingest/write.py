"""The write half of ingest: stage every table's next version, then publish them one rename each.

* interactions: the batch's valid rows are deduped on (event_date, EVENT_KEY) after one shuffle by
  ``event_date`` (one file per date; the latest source line wins a duplicate) into a scratch folder. Dates
  the lake already holds are merged with their existing rows (batch rows win); the staged version hard-links
  every untouched partition (jobs.core.lake.carry_over), so an incremental day costs only its own dates.
* items / users: upsert by id (the batch's rows replace the old ones); ids seen in the batch's interactions
  and known nowhere are added with NULL attributes, so every lake id has a row.
* quarantine: partitioned by ``batch_date``; a rerun replaces the rows of its own source files.
Nothing is visible before :func:`jobs.core.lake.publish`; a crash leaves only unreferenced scratch folders.
"""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs.core import files
from jobs.core.lake import (
    EVENT_KEY,
    INTERACTION_COLUMNS,
    INTERACTIONS,
    INTERACTIONS_SCHEMA,
    ITEMS,
    ITEMS_SCHEMA,
    QUARANTINE,
    QUARANTINE_COLUMNS,
    USERS,
    USERS_SCHEMA,
    carry_over,
    current_version,
    publish,
    staging_dir,
)
from jobs.core.settings import Settings
from jobs.ingest.source import Batch, conform

QUARANTINE_SCHEMA = "reason STRING, source_file STRING, line_number BIGINT, raw STRING, batch_date DATE"


def manifest_path(settings: Settings, batch_date: date | str) -> Path:
    return settings.lake / "_manifests" / "ingest" / f"{batch_date}.json"


def write_manifest(settings: Settings, summary: dict) -> Path:
    """Write the batch manifest atomically (a rerun of the same date replaces it)."""
    return files.write_json(manifest_path(settings, summary["batch_date"]), summary)


def _dates(folder: Path) -> list[str]:
    return sorted(p.name.split("=", 1)[1] for p in folder.glob("event_date=*") if p.is_dir())


def write_new_events(good: DataFrame, dest: Path, *, partitions: int, source: str) -> list[str]:
    """Dedupe the batch and write it partitioned by event_date; returns the dates written."""
    deduped = (
        good.repartition(partitions, "event_date")
        .groupBy("event_date", *EVENT_KEY)
        # max_by keeps a fixed-width aggregation buffer, so Spark can use its fast hash aggregate.
        .agg(F.max_by("rating", "_mid").alias("rating"), F.max_by("ts_synthetic", "_mid").alias("ts_synthetic"))
        .withColumn("source", F.lit(source))
    )
    deduped.select(*INTERACTION_COLUMNS).write.partitionBy("event_date").parquet(str(dest))
    return _dates(dest)


def _read_dates(spark: SparkSession, base: Path, dates: list[str]) -> DataFrame:
    return (spark.read.schema(INTERACTIONS_SCHEMA).option("basePath", str(base))
            .parquet(*[str(base / f"event_date={d}") for d in dates]))


def merge_existing(spark: SparkSession, *, current: Path, new: Path, dates: list[str], dest: Path,
                   partitions: int) -> None:
    """Rewrite ``dates`` as old ∪ new rows, one row per event key, the batch's row winning."""
    rows = _read_dates(spark, current, dates).withColumn("_prio", F.lit(0)).unionByName(
        _read_dates(spark, new, dates).withColumn("_prio", F.lit(1)))
    latest = Window.partitionBy("event_date", *EVENT_KEY).orderBy(F.col("_prio").desc())
    merged = rows.withColumn("_n", F.row_number().over(latest)).where("_n = 1")
    merged.repartition(partitions, "event_date").select(*INTERACTION_COLUMNS) \
        .write.partitionBy("event_date").parquet(str(dest))


def stage_interactions(spark: SparkSession, settings: Settings, *, good: DataFrame, scratch: Path,
                       source: str) -> tuple[Path, list[str]]:
    n = settings.spark.shuffle_partitions
    dates = write_new_events(good, scratch / "new", partitions=n, source=source)
    current = current_version(settings, INTERACTIONS)
    existing = [d for d in dates if current is not None and (current / f"event_date={d}").is_dir()]
    if existing:
        merge_existing(spark, current=current, new=scratch / "new", dates=existing, dest=scratch / "merged",
                       partitions=n)
    staged = staging_dir(settings, INTERACTIONS)
    staged.mkdir()
    touched = {f"event_date={d}" for d in dates}
    carry_over(settings, INTERACTIONS, staged, keep=lambda rel: rel.parts[0] not in touched)
    for d in dates:
        origin = scratch / ("merged" if d in existing else "new") / f"event_date={d}"
        os.rename(origin, staged / f"event_date={d}")
    (staged / "_SUCCESS").touch()
    return staged, dates


def stage_entities(spark: SparkSession, settings: Settings, *, name: str, id_col: str, ddl: str,
                   provided: DataFrame | None, seen: DataFrame) -> Path:
    """Upsert ``provided`` rows by id over the current table; add unknown ``seen`` ids with NULL attributes."""
    current = current_version(settings, name)
    table = conform(provided, ddl).dropDuplicates([id_col]) if provided is not None else None
    if current is not None:
        old = spark.read.schema(ddl).parquet(str(current))
        table = old if table is None else table.unionByName(old.join(table.select(id_col), id_col, "left_anti"))
    if table is None:
        table = spark.createDataFrame([], ddl)
    unseen = seen.select(id_col).distinct().join(table.select(id_col), id_col, "left_anti")
    result = table.unionByName(conform(unseen, ddl)).where(F.col(id_col).isNotNull())
    staged = staging_dir(settings, name)
    # One small sorted file; sortWithinPartitions avoids orderBy's sampling job.
    result.coalesce(1).sortWithinPartitions(id_col).write.parquet(str(staged))
    return staged


def stage_quarantine(spark: SparkSession, settings: Settings, *, rows: DataFrame | None, batch_date: date,
                     files: list[str], scratch: Path) -> Path | None:
    """Next quarantine version: this batch's rows replace earlier rows of the same date and source files."""
    current = current_version(settings, QUARANTINE)
    part = f"batch_date={batch_date.isoformat()}"
    previous = current / part if current is not None and (current / part).is_dir() else None
    if rows is None and previous is None:
        return None
    frames = [rows] if rows is not None else []
    if previous is not None:
        old = spark.read.schema(QUARANTINE_SCHEMA).option("basePath", str(current)).parquet(str(previous))
        frames.append(old.where(~F.col("source_file").isin(files)))
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame.select(*QUARANTINE_COLUMNS))
    out.coalesce(1).write.partitionBy("batch_date").parquet(str(scratch / "quarantine"))
    staged = staging_dir(settings, QUARANTINE)
    staged.mkdir()
    carry_over(settings, QUARANTINE, staged, keep=lambda rel: rel.parts[0] != part)
    if (scratch / "quarantine" / part).is_dir():
        os.rename(scratch / "quarantine" / part, staged / part)
    (staged / "_SUCCESS").touch()
    return staged


def publish_batch(spark: SparkSession, settings: Settings, *, batch: Batch, good: DataFrame,
                  quarantined: DataFrame | None, batch_date: date, source_name: str) -> dict:
    """Stage all tables, then publish them back to back; returns the manifest's table figures."""
    scratch = settings.lake / ".scratch" / uuid.uuid4().hex
    scratch.mkdir(parents=True)
    try:
        inter_staged, dates = stage_interactions(spark, settings, good=good, scratch=scratch, source=source_name)
        new_rows = _read_dates(spark, inter_staged, dates)  # (the scratch partitions moved there)
        items_staged = stage_entities(spark, settings, name=ITEMS, id_col="item_id", ddl=ITEMS_SCHEMA,
                                      provided=batch.items, seen=new_rows)
        users_staged = stage_entities(spark, settings, name=USERS, id_col="user_id", ddl=USERS_SCHEMA,
                                      provided=batch.users, seen=new_rows)
        files = [str(p) for p in batch.files]
        q_staged = stage_quarantine(spark, settings, rows=quarantined, batch_date=batch_date, files=files,
                                    scratch=scratch)
        published = []
        for name, staged in ((INTERACTIONS, inter_staged), (ITEMS, items_staged), (USERS, users_staged),
                             (QUARANTINE, q_staged)):
            if staged is not None:
                publish(settings, name, staged)
                published.append(name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "partitions_written": dates, "published": published,
        "interactions": parquet_rows(inter_staged), "items": parquet_rows(items_staged),
        "users": parquet_rows(users_staged),
    }


def parquet_rows(folder: Path) -> int:
    """Row count from the Parquet footers alone (no Spark job)."""
    return sum(pq.ParquetFile(p).metadata.num_rows for p in folder.rglob("*.parquet"))
