"""Line-level reading for the ingest adapters: every source becomes one DataFrame of *parsed events*.

The parsed-event contract (:data:`EVENT_FIELDS`) keeps, beside the candidate values, where each row came
from: the file, the file split (``_block``, the split's start offset) and Spark's
``monotonically_increasing_id`` (``_mid``). Rows of one split are contiguous, so a row's line number is
the number of lines in the file's earlier splits plus ``_mid - min(_mid)`` of its split plus one. That
costs one small aggregate, and only the quarantine path needs it (see jobs.ingest.write). Reading text and
splitting it with built-in functions keeps the whole path in the JVM (no Python UDF).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

# user_id/item_id/rating/ts are candidate strings; classify() in jobs.ingest.batch decides what is valid.
EVENT_FIELDS = [
    "user_id", "item_id", "rating", "ts", "ts_synthetic", "_error", "_skip", "_first",
    "_file", "_block", "_mid", "_raw",
]
BAD_COLUMN_COUNT = "bad_column_count"
UNPARSEABLE = "unparseable"
# A comma outside double quotes (an even number of quotes follows it).
_CSV_SPLIT = ',(?=(?:[^"]*"[^"]*")*[^"]*$)'


class MissingColumnsError(ValueError):
    """A source lacks a column the adapter needs; raised before any Spark work starts."""

    def __init__(self, *, source: str, missing: Sequence[str], present: Sequence[str], hint: str = ""):
        self.missing, self.present = list(missing), list(present)
        super().__init__(
            f"{source}: missing required column(s) {self.missing}; present columns: {self.present}"
            + (f". {hint}" if hint else "")
        )


def first_line(path: Path, encoding: str = "utf-8") -> str:
    """The first line of a text file without its line ending ('' for an empty file)."""
    with open(path, encoding=encoding, errors="replace", newline="") as handle:
        return handle.readline().rstrip("\r\n")


def read_lines(spark: SparkSession, paths: Sequence[Path], *, header: bool) -> DataFrame:
    """Every physical line of ``paths`` with its provenance columns; headers and blank lines get ``_skip``."""
    df = spark.read.text([str(p) for p in paths]).select(
        F.col("value"),
        F.col("_metadata.file_path").alias("_file"),
        F.col("_metadata.file_block_start").alias("_block"),
        F.monotonically_increasing_id().alias("_mid"),
    )
    # Strip a CR left by CRLF files (the text reader splits on LF).
    df = df.withColumn("value", F.regexp_replace("value", "\r$", ""))
    skip = F.trim(F.col("value")) == ""
    if header:
        # A header is the first line of a file; its text is known, so compare instead of numbering.
        # (Spark's file URIs are not worth matching: a data line equal to a header text is no data.)
        headers = sorted({first_line(p) for p in paths})
        skip = skip | ((F.col("_block") == 0) & F.col("value").isin(headers))
    return df.withColumn("_skip", skip)


def split_delimited(value: Column, sep: str, *, quoted: bool = False) -> Column:
    """Split a line into fields; with ``quoted``, CSV double quotes protect separators (``""`` escapes)."""
    plain = F.split(value, re.escape(sep), -1)
    if not quoted:
        return plain
    pattern = _CSV_SPLIT if sep == "," else re.escape(sep) + '(?=(?:[^"]*"[^"]*")*[^"]*$)'
    unquote = lambda x: F.regexp_replace(F.regexp_replace(x, '^"|"$', ""), '""', '"')  # noqa: E731
    return F.when(value.contains('"'), F.transform(F.split(value, pattern, -1), unquote)).otherwise(plain)


def field(fields: Column, index: int | None) -> Column:
    """The 0-based ``index`` field, trimmed, or NULL when the adapter has no such column."""
    if index is None:
        return F.lit(None).cast("string")
    return F.trim(F.get(fields, index))


def delimited_events(
    lines: DataFrame,
    *,
    sep: str,
    n_columns: int,
    user: int,
    item: int,
    rating: int | None,
    ts: int | None,
    quoted: bool = False,
    synthetic_ts: str | None = None,
) -> DataFrame:
    """Parsed events from delimited lines with a fixed column count (column indexes are 0-based)."""
    fields = split_delimited(F.col("value"), sep, quoted=quoted)
    df = lines.withColumn("_fields", fields)
    ts_col = field(F.col("_fields"), ts) if ts is not None else F.lit(synthetic_ts)
    return df.select(
        field(F.col("_fields"), user).alias("user_id"),
        field(F.col("_fields"), item).alias("item_id"),
        field(F.col("_fields"), rating).alias("rating"),
        ts_col.cast("string").alias("ts"),
        F.lit(ts is None).alias("ts_synthetic"),
        F.when(F.size("_fields") != n_columns, F.lit(BAD_COLUMN_COUNT)).alias("_error"),
        "_skip",
        F.lit(True).alias("_first"),
        "_file", "_block", "_mid",
        F.col("value").alias("_raw"),
    )


def json_events(lines: DataFrame, *, mapping: dict[str, str], synthetic_ts: str | None) -> DataFrame:
    """Parsed events from JSON Lines; ``mapping`` maps lake fields to JSON keys (values read as text)."""
    keys = sorted(set(mapping.values()))
    schema = ", ".join(f"`{k}` STRING" for k in [*keys, "_corrupt_record"])
    parsed = F.from_json(F.col("value"), schema,
                         {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt_record"})
    df = lines.withColumn("_j", parsed)
    get = lambda name: F.trim(F.col("_j").getField(mapping[name])) if name in mapping else F.lit(None)  # noqa: E731
    ts_col = get("timestamp") if "timestamp" in mapping else F.lit(synthetic_ts)
    broken = F.col("_j").isNull() | F.col("_j._corrupt_record").isNotNull()
    return df.select(
        get("user_id").cast("string").alias("user_id"),
        get("item_id").cast("string").alias("item_id"),
        get("rating").cast("string").alias("rating"),
        ts_col.cast("string").alias("ts"),
        F.lit("timestamp" not in mapping).alias("ts_synthetic"),
        F.when(broken, F.lit(UNPARSEABLE)).alias("_error"),
        "_skip", F.lit(True).alias("_first"), "_file", "_block", "_mid", F.col("value").alias("_raw"),
    )


def parquet_events(
    spark: SparkSession, paths: Sequence[Path], *, mapping: dict[str, str], synthetic_ts: str | None,
    ts_nanos: bool = False,
) -> DataFrame:
    """Parsed events from Parquet; the 'line number' of a row is its 1-based position in its file."""
    df = spark.read.parquet(*[str(p) for p in paths])
    columns = df.columns
    df = df.select(
        "*",
        F.col("_metadata.file_path").alias("_file"),
        F.col("_metadata.file_block_start").alias("_block"),
        F.monotonically_increasing_id().alias("_mid"),
        F.to_json(F.struct(*[F.col(f"`{c}`") for c in columns])).alias("_raw"),
    )
    get = lambda name: F.trim(F.col(f"`{mapping[name]}`").cast("string")) if name in mapping else F.lit(None)  # noqa: E731
    ts_source = F.col(f"`{mapping['timestamp']}`") if "timestamp" in mapping else None
    if ts_source is not None:
        # Typed timestamps keep their instant; numbers and strings go through the common parser.
        ts_dtype = dict(df.dtypes)[mapping["timestamp"]]
        if ts_nanos:
            ts_col = (ts_source.cast("double") / 1e9).cast("string")
        elif ts_dtype.startswith("timestamp"):
            ts_col = F.date_format(ts_source, "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX")
        else:
            ts_col = F.trim(ts_source.cast("string"))
    else:
        ts_col = F.lit(synthetic_ts)
    return df.select(
        get("user_id").cast("string").alias("user_id"),
        get("item_id").cast("string").alias("item_id"),
        get("rating").cast("string").alias("rating"),
        ts_col.cast("string").alias("ts"),
        F.lit(ts_source is None).alias("ts_synthetic"),
        F.lit(None).cast("string").alias("_error"),
        F.lit(False).alias("_skip"), F.lit(True).alias("_first"), "_file", "_block", "_mid", "_raw",
    )
