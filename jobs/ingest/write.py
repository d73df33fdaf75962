"""The write half of ingest: stage every table's next version, then commit them all with one rename.

* interactions: the batch's valid rows are deduped on (event_date, EVENT_KEY) after one shuffle by
  ``event_date`` (one file per date; the latest source line wins a duplicate) into a scratch folder. Dates
  the lake already holds are merged with their existing rows: the batch's rating wins, ``source`` stays the
  file that first delivered the event. The staged version hard-links every untouched partition
  (jobs.core.lake.carry_over), so an incremental day costs only its own dates.
* items / users: upsert by id (the batch's rows replace the old ones; of duplicate ids in one batch the
  greatest row wins, so reruns agree); ids seen in the batch's interactions and known nowhere are added with
  NULL attributes, so every lake id has a row.
* quarantine: jobs.ingest.quarantine (keyed by file digest and line number).
* manifest: the lake table ``_manifests/ingest`` (one JSON file per batch date), staged last.

Nothing is visible before :func:`commit_batch`, which makes all of them current in one
:func:`jobs.core.lake.commit`; a crash before it leaves only unreferenced scratch and version folders.
"""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.core import files, lake
from jobs.core.lake import (
    EVENT_KEY,
    INGEST_MANIFESTS,
    INTERACTION_COLUMNS,
    INTERACTIONS,
    INTERACTIONS_SCHEMA,
    ITEMS,
    ITEMS_SCHEMA,
    QUARANTINE,
    USERS,
    USERS_SCHEMA,
    carry_over,
    current_version,
    staging_dir,
)
from jobs.core.settings import Settings
from jobs.core.spark import job_description
from jobs.ingest.quarantine import stage_quarantine
from jobs.ingest.source import Batch, conform


def manifest_path(settings: Settings, batch_date: date | str) -> Path:
    return lake.table_path(settings, INGEST_MANIFESTS) / f"{batch_date}.json"


def stage_manifest(settings: Settings, summary: dict) -> Path:
    """The next version of the manifests table: every other date's file hard-linked, this one written."""
    name = f"{summary['batch_date']}.json"
    staged = staging_dir(settings, INGEST_MANIFESTS)
    staged.mkdir()
    folder = lake.table_path(settings, INGEST_MANIFESTS)
    # The older layout (a plain folder, maybe already moved aside by a commit that then crashed): adopted.
    plain = [f for f in (folder, *sorted(settings.lake.glob(".retired-manifests-*"))) if f.is_dir()
             and not f.is_symlink()]
    if plain:
        for old in (p for f in plain for p in f.glob("*.json")):
            if old.name != name and not (staged / old.name).exists():
                os.link(old, staged / old.name)
    else:
        carry_over(settings, INGEST_MANIFESTS, staged, keep=lambda rel: rel.name != name)
    files.write_json(staged / name, summary)
    return staged


def _retire_plain_folder(settings: Settings) -> None:
    """Move a manifests folder of the older layout aside, so the commit can put its table link there."""
    folder = lake.table_path(settings, INGEST_MANIFESTS)
    if folder.is_dir() and not folder.is_symlink():
        os.rename(folder, settings.lake / f".retired-manifests-{uuid.uuid4().hex[:8]}")


def commit_batch(settings: Settings, staged: dict[str, Path], summary: dict) -> None:
    """Stage the manifest, then make every staged table of the batch current at once."""
    staged = {**staged, INGEST_MANIFESTS: stage_manifest(settings, summary)}
    _retire_plain_folder(settings)
    lake.commit(settings, staged)
    for retired in settings.lake.glob(".retired-manifests-*"):
        shutil.rmtree(retired, ignore_errors=True)


def write_manifest(settings: Settings, summary: dict) -> Path:
    """Write one batch manifest on its own (a commit of the manifests table); a rerun replaces it."""
    commit_batch(settings, {}, summary)
    return manifest_path(settings, summary["batch_date"])


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
    """Rewrite ``dates`` as old ∪ new rows, one row per event key: the batch's rating and ``ts_synthetic``
    win, ``source`` stays the file that first delivered the event."""
    rows = _read_dates(spark, current, dates).withColumn("_prio", F.lit(0)).unionByName(
        _read_dates(spark, new, dates).withColumn("_prio", F.lit(1)))
    merged = rows.groupBy("event_date", *EVENT_KEY).agg(
        F.max_by("rating", "_prio").alias("rating"), F.max_by("ts_synthetic", "_prio").alias("ts_synthetic"),
        F.min_by("source", "_prio").alias("source"))
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


def _one_per_id(df: DataFrame, id_col: str) -> DataFrame:
    """One row per id, the same whatever Spark's order: the greatest of the duplicates' attribute rows."""
    others = [c for c in df.columns if c != id_col]
    return df.groupBy(id_col).agg(F.max(F.struct(*others)).alias("_row")).select(id_col, "_row.*")


def stage_entities(spark: SparkSession, settings: Settings, *, name: str, id_col: str, ddl: str,
                   provided: DataFrame | None, seen: DataFrame) -> Path:
    """Upsert ``provided`` rows by id over the current table; add unknown ``seen`` ids with NULL attributes."""
    current = current_version(settings, name)
    table = _one_per_id(conform(provided, ddl), id_col) if provided is not None else None
    if current is not None:
        old = spark.read.schema(ddl).parquet(str(current))
        table = old if table is None else table.unionByName(old.join(table.select(id_col), id_col, "left_anti"))
    unseen = seen.select(id_col).distinct()
    if table is None:  # (no empty frame to union with: that would cost a job of its own)
        result = conform(unseen, ddl)
    else:
        unseen = unseen.join(table.select(id_col), id_col, "left_anti")
        result = table.unionByName(conform(unseen, ddl))
    result = result.where(F.col(id_col).isNotNull())
    staged = staging_dir(settings, name)
    # One small sorted file; sortWithinPartitions avoids orderBy's sampling job.
    result.coalesce(1).sortWithinPartitions(id_col).write.parquet(str(staged))
    return staged


def stage_tables(spark: SparkSession, settings: Settings, *, batch: Batch, good: DataFrame,
                 quarantined: DataFrame | None, batch_date: date, source_name: str,
                 digests: list[str]) -> tuple[dict[str, Path], dict]:
    """Stage interactions, items, users and quarantine (nothing visible yet); returns the staged versions
    and the manifest's table figures."""
    scratch = settings.lake / ".scratch" / uuid.uuid4().hex
    scratch.mkdir(parents=True)
    try:
        with job_description(spark, "ingest: interactions (dedupe, write by event_date)"):
            inter_staged, dates = stage_interactions(spark, settings, good=good, scratch=scratch,
                                                     source=source_name)
        staged = {INTERACTIONS: inter_staged}
        # The batch's ids come from ``good`` (the job's persisted rows), not from reading the written files.
        with job_description(spark, "ingest: items"):
            staged[ITEMS] = stage_entities(spark, settings, name=ITEMS, id_col="item_id", ddl=ITEMS_SCHEMA,
                                           provided=batch.items, seen=good)
        with job_description(spark, "ingest: users"):
            staged[USERS] = stage_entities(spark, settings, name=USERS, id_col="user_id", ddl=USERS_SCHEMA,
                                           provided=batch.users, seen=good)
        with job_description(spark, "ingest: quarantine"):
            q_staged = stage_quarantine(spark, settings, rows=quarantined, batch_date=batch_date,
                                        digests=digests, files=[str(p) for p in batch.files], scratch=scratch)
        if q_staged is not None:
            staged[QUARANTINE] = q_staged
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return staged, {
        "partitions_written": dates, "published": list(staged),
        "interactions": parquet_rows(inter_staged), "items": parquet_rows(staged[ITEMS]),
        "users": parquet_rows(staged[USERS]),
    }


def parquet_rows(folder: Path) -> int:
    """Row count from the Parquet footers alone (no Spark job)."""
    return sum(pq.ParquetFile(p).metadata.num_rows for p in folder.rglob("*.parquet"))
