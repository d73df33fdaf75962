"""Ingest one batch of interaction logs into the lake (``ktrec ingest``).

Read (jobs.ingest.detect: any supported format → parsed events) → :func:`classify` (pure: one reason per bad
row, or none) → stage (jobs.ingest.write: dedupe on EVENT_KEY, merge only the ``event_date`` partitions the
batch touches, hard-link the rest; items, users, quarantine, the manifest) → one commit of every table.

One pass over the input: the classified rows, cut down to what the outputs need (:func:`slim`; a bad row
keeps its line text, a good one does not), are persisted while the first job fills the cache and counts
them per file split and reason (:func:`split_stats`, a few dozen rows to the driver). The manifest's
counts and the line-number offsets come from those rows; the interactions write (one shuffle by
``event_date``), the quarantine and the ids for items/users then read the cache, not the file. Meanwhile
a driver thread hashes the input files (sha256, the quarantine key). No Python UDF: every row stays in
the JVM.

Idempotent: rerunning a batch (same input, same batch date) leaves every table with the same rows and the
manifest with the same content but its timing field ``seconds``; a copy of a file under another name adds
nothing either (``source`` and ``source_file`` keep the file that delivered first).
"""

from __future__ import annotations

import calendar
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.core.settings import Settings

log = logging.getLogger(__name__)

# Reasons, checked in this order; the first that applies is recorded. Structural reasons of each format
# (jobs.ingest.text: quoting, column count, JSON shape) come in `_error`, after the blank-line check.
INVALID_UTF8, NUL_BYTE, BLANK_LINE = "invalid_utf8", "nul_byte", "blank_line"
MISSING_USER, MISSING_ITEM = "missing_user_id", "missing_item_id"
NON_NUMERIC_RATING, RATING_RANGE = "non_numeric_rating", "rating_out_of_range"
MISSING_TS, BAD_TS, FUTURE_TS, OLD_TS = "missing_timestamp", "bad_timestamp", "future_timestamp", "too_old_timestamp"
# For the job's own queries only: the persisted rows live for one job, and compressing them cost about half
# the scan's CPU (22 s → 11-17 s of the 5 M scan, benchmarks/reports/ingest_notes.md) to save memory that
# the cache does not need (it spills to disk when short).
INGEST_SQL_CONF = {"spark.sql.inMemoryColumnarStorage.compressed": "false"}
# Numeric timestamps from 1e11 up are milliseconds (1e11 s would be the year 5138).
MILLIS_FROM, MAX_NUMERIC_TS = 1e11, 1e14


def _blank(col: Column) -> Column:
    return col.isNull() | (col == "")


def parse_timestamp(ts: Column) -> Column:
    """Epoch seconds or milliseconds (integer or decimal) or an ISO-8601 string → UTC timestamp, else NULL."""
    num = ts.try_cast("double")
    sane = num.isNotNull() & ~F.isnan(num) & (F.abs(num) < MAX_NUMERIC_TS)
    seconds = F.when(F.abs(num) >= MILLIS_FROM, num / 1000).otherwise(num)
    return F.when(sane, F.timestamp_seconds(seconds)).when(num.isNull(), F.try_to_timestamp(ts))


def classify(events: DataFrame, *, settings: Settings, batch_date: date) -> DataFrame:
    """Add ``reason`` (NULL for a valid row), typed ``rating_value``, ``event_ts`` and ``event_date``."""
    cfg = settings.ingest
    # Typed values first, in their own projection, so the reason chain below reuses them instead of
    # parsing the same text once per branch.
    typed = events.select("*", F.col("rating").try_cast("double").alias("_rating"),
                          parse_timestamp(F.col("ts")).alias("event_ts"))
    raw, rating_text, rating, event_ts = F.col("_raw"), F.col("rating"), F.col("_rating"), F.col("event_ts")
    has_rating = ~_blank(rating_text)
    future = F.lit((batch_date + timedelta(days=cfg.max_future_days + 1)).isoformat()).cast("timestamp")
    earliest = F.lit(cfg.earliest_event).cast("timestamp")
    reason = (
        F.when(F.col("_skip"), F.lit(None))
        # Spark's text reader may already have replaced broken bytes by U+FFFD.
        .when(~F.is_valid_utf8(raw) | raw.contains("\ufffd"), F.lit(INVALID_UTF8))
        .when(raw.contains("\x00"), F.lit(NUL_BYTE))
        .when(raw.rlike(r"^\s*$"), F.lit(BLANK_LINE))
        .when(F.col("_error").isNotNull(), F.col("_error"))
        .when(_blank(F.col("user_id")), F.lit(MISSING_USER))
        .when(_blank(F.col("item_id")), F.lit(MISSING_ITEM))
        .when(has_rating & (rating.isNull() | F.isnan(rating)), F.lit(NON_NUMERIC_RATING))
        .when(has_rating & ((rating < cfg.min_rating) | (rating > cfg.max_rating)), F.lit(RATING_RANGE))
        .when(_blank(F.col("ts")), F.lit(MISSING_TS))
        .when(event_ts.isNull(), F.lit(BAD_TS))
        .when(event_ts >= future, F.lit(FUTURE_TS))
        .when(event_ts < earliest, F.lit(OLD_TS))
    )
    return typed.select(
        *events.columns,
        reason.alias("reason"),
        rating.cast("float").alias("rating_value"),
        event_ts,
        F.to_date(event_ts).alias("event_date"),
    )


def slim(classified: DataFrame) -> DataFrame:
    """The columns the outputs read (the frame the job persists); only a bad row keeps its text."""
    return classified.select(
        "user_id", "item_id", "rating_value", "event_ts", "ts_synthetic", "event_date", "reason",
        F.when(F.col("reason").isNotNull(), F.col("_raw")).alias("_raw"),
        "_file", "_block", "_mid", "_first", "_skip",
    )


def good_rows(classified: DataFrame) -> DataFrame:
    """Valid events in the lake's types, with ``_mid`` kept to let the latest line win duplicates."""
    return classified.where(F.col("reason").isNull() & ~F.col("_skip")).select(
        "user_id", "item_id", F.col("rating_value").alias("rating"), "event_ts", "ts_synthetic",
        "event_date", "_mid",
    )


def split_stats(classified: DataFrame) -> list[dict]:
    """One dict per (file, split, reason): physical lines, the smallest ``_mid`` and data rows (collected)."""
    stats = classified.groupBy("_file", "_block", "reason").agg(
        F.count_if("_first").alias("lines"),
        F.min("_mid").alias("mid0"),
        F.count_if(~F.col("_skip")).alias("rows"),
    )
    return [r.asDict() for r in stats.collect()]


def synthetic_epoch_seconds(settings: Settings) -> int:
    return calendar.timegm(date.fromisoformat(settings.ingest.synthetic_epoch).timetuple())


def batch_summary(splits: list[dict], *, source: Path, fmt: str, batch_date: date) -> dict:
    """The manifest's counts, from :func:`split_stats`."""
    reasons: dict[str, int] = {}
    for s in splits:
        if s["reason"] is not None and s["rows"]:
            reasons[s["reason"]] = reasons.get(s["reason"], 0) + s["rows"]
    rows_read, rows_bad = sum(s["rows"] for s in splits), sum(reasons.values())
    return {
        "batch_date": batch_date.isoformat(), "source": str(source), "format": fmt,
        "rows_read": rows_read, "rows_valid": rows_read - rows_bad, "rows_quarantined": rows_bad,
        "quarantine_reasons": dict(sorted(reasons.items())),
    }


def run(
    settings: Settings,
    *,
    source: Path,
    fmt: str | None = None,
    batch_date: date,
    column_map: dict[str, str] | None = None,
    spark: SparkSession | None = None,
) -> dict:
    """Ingest ``source`` as the batch of ``batch_date``; returns the manifest (also written to the lake)."""
    from jobs.core.spark import get_spark, session_conf
    from jobs.ingest.write import commit_batch

    started = time.perf_counter()
    source = Path(source).resolve()
    spark = spark or get_spark(settings, "ktrec-ingest")
    with session_conf(spark, INGEST_SQL_CONF):
        summary, staged = _stage(spark, settings, source=source, fmt=fmt, batch_date=batch_date,
                                 column_map=column_map)
    if staged is None:
        return summary | {"seconds": round(time.perf_counter() - started, 3)}
    summary["seconds"] = round(time.perf_counter() - started, 3)
    commit_batch(settings, staged, summary)
    log.info("ingest %s: %d rows, %d quarantined, %d partitions", source, summary["rows_read"],
             summary["rows_quarantined"], len(summary["partitions_written"]))
    return summary


def _stage(spark: SparkSession, settings: Settings, *, source: Path, fmt: str | None, batch_date: date,
           column_map: dict[str, str] | None) -> tuple[dict, dict | None]:
    """Read, classify and stage every table of the batch; (manifest summary, staged versions or None)."""
    from jobs.core.spark import job_description
    from jobs.ingest.detect import read_source
    from jobs.ingest.quarantine import file_digests, quarantine_rows, source_files
    from jobs.ingest.source import ReadOptions
    from jobs.ingest.write import manifest_path, stage_tables

    options = ReadOptions(column_map=dict(column_map or {}), synthetic_epoch_s=synthetic_epoch_seconds(settings))
    batch = read_source(spark, source, fmt=fmt, options=options)
    rows = slim(classify(batch.events, settings=settings, batch_date=batch_date)).persist()
    with ThreadPoolExecutor(1) as pool:
        hashing = pool.submit(file_digests, batch.files)
        try:
            with job_description(spark, "ingest: read, classify, count (the one scan)"):
                splits = split_stats(rows)
            summary = batch_summary(splits, source=source, fmt=batch.format, batch_date=batch_date)
            if summary["rows_read"] == 0:
                log.info("ingest: %s holds no rows; nothing published", source)
                return summary | {"empty": True, "published": [], "partitions_written": [], "items": None,
                                  "users": None}, None
            sources = source_files({s["_file"] for s in splits}, hashing.result())
            quarantined = quarantine_rows(rows, splits, batch_date=batch_date, sources=sources) \
                if summary["rows_quarantined"] else None
            staged, written = stage_tables(
                spark, settings, batch=batch, good=good_rows(rows), source_name=source.name,
                quarantined=quarantined, batch_date=batch_date, digests=sorted({d for _, d in sources.values()}))
        finally:
            rows.unpersist()
    return summary | written | {"source_digests": dict(sorted(sources.values())), "empty": False,
                                "manifest": str(manifest_path(settings, batch_date))}, staged
