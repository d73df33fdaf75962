"""``ktrec split``: a deterministic, leakage-free train/valid/test split of the lake's interactions.

Steps, in order: read ``interactions`` (only events before ``as_of`` when given: the nightly DAG passes the
end of its logical date and names the split after the date, so a rerun of an old night reproduces it
exactly, whatever was ingested since); collapse duplicate (user, item) pairs to their latest event (a
re-rating replaces the earlier one); keep ratings >= ``min_rating`` if given; apply the ``k_core`` filter
if k > 0; split (``loo``: leave-last-out per user, ``temporal``: global 80/10/10 time cut, ``random``:
80/10/10 hashed on the event key and seed); drop valid/test rows whose user or item has no train row.
The result is published atomically as the lake table ``splits/<name>`` (SPLIT_COLUMNS) with a
``meta.json`` beside the parquet files (strategy, seed, as-of, counts, ``train_end``: the feature cut-off the
trainers read profiles at). The transforms are in jobs/split/strategies.py.
"""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import UTC, datetime
from typing import Any

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from jobs.core import lake
from jobs.core.settings import Settings
from jobs.core.spark import get_spark, read_table
from jobs.split import strategies as sp

log = logging.getLogger(__name__)

META = "meta.json"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def run(
    settings: Settings, *, strategy: str, name: str | None = None, seed: int = 2024, k_core: int = 0,
    min_rating: float | None = None, as_of: datetime | None = None,
) -> dict[str, Any]:
    """Build and publish ``splits/<name>`` (default name: the strategy) from the events before ``as_of``
    (all when None); returns its path and meta."""
    started = time.perf_counter()
    name = name or strategy
    _check_args(strategy=strategy, name=name, k_core=k_core)
    spark = get_spark(settings)
    source = lake.current_version(settings, lake.INTERACTIONS)
    events = read_table(spark, settings, lake.INTERACTIONS).select("user_id", "item_id", "rating", "event_ts")
    if as_of is not None:
        events = events.where(F.col("event_ts") < F.lit(lake.as_utc(as_of)))
    events = sp.latest_per_pair(events.where(F.col("user_id").isNotNull() & F.col("item_id").isNotNull()))
    if min_rating is not None:
        events = sp.keep_positives(events, min_rating=min_rating)
    if k_core > 0:
        events = sp.k_core(events, k=k_core)
    cached = [events.cache()]
    try:
        if events.isEmpty():
            raise ValueError(f"no interactions left to split (min_rating={min_rating}, k_core={k_core})")
        split = sp.split_events(events, strategy=strategy, seed=seed)
        cached.append(split.cache())
        kept = sp.drop_cold(split).select(*lake.SPLIT_COLUMNS)
        cached.append(kept.cache())
        meta = {
            "name": name, "strategy": strategy, "seed": seed, "k_core": k_core, "min_rating": min_rating,
            "as_of": lake.as_utc(as_of).isoformat() if as_of is not None else None,
            "dedup": "latest event per (user_id, item_id)", "source_version": source.name if source else None,
            **split_stats(kept, rows_before=split.count()),
        }
        path = _publish(settings, name=name, frame=kept, meta=meta)
    finally:
        for frame in cached:
            frame.unpersist()
    log.info("split %s published at %s: %s", name, path, meta["counts"])
    return {"table": str(path), "meta": meta, "seconds": round(time.perf_counter() - started, 2)}


def split_stats(kept: DataFrame, *, rows_before: int) -> dict[str, Any]:
    """Counts per split, users, items, density and the last train instant (the feature cut-off)."""
    per_split = {row["split"]: row["count"] for row in kept.groupBy("split").count().collect()}
    totals = kept.agg(
        F.countDistinct("user_id").alias("users"), F.countDistinct("item_id").alias("items"),
        F.max(F.when(F.col("split") == sp.TRAIN, F.unix_micros("event_ts"))).alias("train_end_us"),
    ).first()
    counts = {s: int(per_split.get(s, 0)) for s in (sp.TRAIN, sp.VALID, sp.TEST)}
    rows = sum(counts.values())
    counts |= {"users": int(totals["users"]), "items": int(totals["items"])}
    train_end = totals["train_end_us"]
    return {
        "counts": counts,
        "density": rows / (counts["users"] * counts["items"]) if rows else 0.0,
        "dropped_cold": rows_before - rows,
        "train_end": (
            datetime.fromtimestamp(train_end / 1e6, tz=UTC).isoformat() if train_end is not None else None
        ),
    }


def read_split(spark: SparkSession, settings: Settings, name: str) -> DataFrame:
    """The split table as a DataFrame (its folder also holds meta.json, which Spark must skip)."""
    return read_table(spark, settings, lake.split_table(name))


def read_meta(settings: Settings, name: str) -> dict[str, Any]:
    path = lake.table_path(settings, lake.split_table(name)) / META
    if not path.is_file():
        raise FileNotFoundError(f"split {name!r} has no {META} at {path}")
    return json.loads(path.read_text())


def _publish(settings: Settings, *, name: str, frame: DataFrame, meta: dict[str, Any]) -> Any:
    table = lake.split_table(name)
    staged = lake.staging_dir(settings, table)
    # Sorted output: a rerun on the same lake writes the same rows in the same order.
    frame.orderBy("split", "user_id", "event_ts", "item_id").write.parquet(str(staged))
    (staged / META).write_text(json.dumps(meta, indent=2, sort_keys=True))
    return lake.publish(settings, table, staged)


def _check_args(*, strategy: str, name: str, k_core: int) -> None:
    if strategy not in sp.STRATEGIES:
        raise ValueError(f"unknown split strategy {strategy!r}; choose one of {list(sp.STRATEGIES)}")
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"split name {name!r} must match {NAME_PATTERN.pattern} (it names a lake folder)")
    if k_core < 0:
        raise ValueError(f"k_core must be >= 0, not {k_core}")
