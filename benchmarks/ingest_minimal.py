"""The Spark reference for benchmarks.ingest: a minimal hand-written job of the same transform.

Read the CSV with a schema (all text, a corrupt-record column for lines of the wrong width), validate with
``try_cast``, drop duplicates on (user_id, item_id, event_ts), write Parquet partitioned by event_date, and
write the bad rows with their reason. What it leaves out, and ktrec does: RFC 4180 quoting checks, encoding
and NUL checks, line numbers, file digests, merging with an existing lake, items/users tables, the manifest
and the atomic commit. It is what a person would write by hand for this one file, to measure ktrec against.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

SCHEMA = "user_id STRING, item_id STRING, rating STRING, ts STRING, _corrupt STRING"


def ingest_minimal(spark: SparkSession, csv_path: Path, out_dir: Path, *, batch_date: date, min_rating: float = 0.0,
                   max_rating: float = 5.0, max_future_days: int = 1, earliest: str = "1990-01-01") -> None:
    df = (spark.read.schema(SCHEMA).option("header", True).option("mode", "PERMISSIVE")
          .option("columnNameOfCorruptRecord", "_corrupt").csv(str(csv_path)))
    rating = F.col("rating").try_cast("double")
    event_ts = F.timestamp_seconds(F.col("ts").try_cast("long"))
    future = F.lit((batch_date + timedelta(days=max_future_days + 1)).isoformat()).cast("timestamp")
    reason = (
        F.when(F.col("_corrupt").isNotNull(), "bad_column_count")
        .when(F.col("user_id").isNull(), "missing_user_id")
        .when(F.col("item_id").isNull(), "missing_item_id")
        .when(F.col("rating").isNotNull() & rating.isNull(), "non_numeric_rating")
        .when((rating < min_rating) | (rating > max_rating), "rating_out_of_range")
        .when(F.col("ts").isNull(), "missing_timestamp")
        .when(event_ts.isNull(), "bad_timestamp")
        .when(event_ts >= future, "future_timestamp")
        .when(event_ts < F.lit(earliest).cast("timestamp"), "too_old_timestamp")
    )
    classified = df.select("*", reason.alias("reason"), rating.cast("float").alias("rating_value"),
                           event_ts.alias("event_ts"))
    (classified.where(F.col("reason").isNull())
     .select("user_id", "item_id", F.col("rating_value").alias("rating"), "event_ts",
             F.to_date("event_ts").alias("event_date"))
     .dropDuplicates(["user_id", "item_id", "event_ts"])
     .write.partitionBy("event_date").parquet(str(out_dir / "interactions")))
    (classified.where(F.col("reason").isNotNull())
     .select("reason", F.coalesce("_corrupt", F.concat_ws(",", "user_id", "item_id", "rating", "ts")).alias("raw"))
     .write.parquet(str(out_dir / "bad")))
