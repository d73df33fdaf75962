"""Line-level reading for the ingest adapters: every source becomes one DataFrame of *parsed events*.

The parsed-event contract (:data:`EVENT_FIELDS`) keeps, beside the candidate values, where each row came
from: the file, the file split (``_block``, the split's start offset) and Spark's
``monotonically_increasing_id`` (``_mid``). Rows of one split are contiguous, so a row's line number is
the number of lines in the file's earlier splits plus ``_mid - min(_mid)`` of its split plus one: the
per-split counts of jobs.ingest.batch.split_stats (which also give the manifest's counts) are enough
(jobs.ingest.quarantine.line_offsets). Reading text and splitting it with built-in functions keeps the whole
path in the JVM (no Python UDF).

Strict parsing: a line that is not a well-formed record of its format gets a structural ``_error``
(checked in jobs.ingest.batch.classify after the encoding and NUL checks, before any field check):

* delimited lines: ``bad_column_count``; with a multi-character separator (``::``) a field holding one of
  its characters is a ``stray_separator`` (``1:::10::5::9``).
* CSV (RFC 4180, ``quoted``): a field is either unquoted, with no ``"`` at all, or wholly quoted
  (``"a,b"``, a quote inside doubled: ``"say ""hi"" now"``); spaces around a quoted field are not allowed.
  An odd number of quotes is an ``unbalanced_quote``, a quote anywhere else a ``stray_quote``.
  **Embedded newlines are not supported**: the input is read one physical line at a time (one pass,
  split anywhere), so a quoted field cannot span lines. Such a record's first and last physical lines
  each hold an odd number of quotes, so both are quarantined as ``unbalanced_quote``; a middle line with
  no quote at all is judged on its own.
* JSON Lines: each line must be exactly one JSON object (RFC 8259, strict: no single quotes, NaN
  or duplicate keys) and nothing after it; mapped fields must be scalars. Reasons:
  ``unparseable``, ``duplicate_key``, ``not_an_object``, ``trailing_content``, ``non_scalar_field``.
* every format: a line of only whitespace is a ``blank_line`` (classify), a header is skipped only as
  the first line of a file.
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
BAD_COLUMN_COUNT, STRAY_SEPARATOR = "bad_column_count", "stray_separator"
UNBALANCED_QUOTE, STRAY_QUOTE = "unbalanced_quote", "stray_quote"
UNPARSEABLE, DUPLICATE_KEY, NOT_AN_OBJECT = "unparseable", "duplicate_key", "not_an_object"
TRAILING_CONTENT, NON_SCALAR_FIELD = "trailing_content", "non_scalar_field"
UTF8, LATIN1 = "UTF-8", "ISO-8859-1"
# A JSON string literal (valid escapes included), to blank out before looking at the brackets.
_JSON_STRING = r'"(?:[^"\\]++|\\.)*+"'


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


def read_lines(spark: SparkSession, paths: Sequence[Path], *, header: bool, encoding: str = UTF8) -> DataFrame:
    """Every physical line of ``paths`` with its provenance columns; a file's first line gets ``_skip`` when
    it is a header. Lines are split on LF, CRLF or a lone CR (Hadoop's line reader). With ``encoding``
    latin-1 every byte is a character (nothing is invalid); UTF-8 lines are kept as bytes, for classify."""
    df = spark.read.text([str(p) for p in paths]).select(
        F.col("value"),
        F.col("_metadata.file_path").alias("_file"),
        F.col("_metadata.file_block_start").alias("_block"),
        F.monotonically_increasing_id().alias("_mid"),
    )
    if encoding.upper() in (LATIN1, "LATIN-1", "LATIN1"):
        df = df.withColumn("value", F.decode(F.col("value").cast("binary"), LATIN1))
    skip = F.lit(False)
    if header:
        # A header is the first line of a file; its text is known, so compare instead of numbering.
        # (Spark's file URIs are not worth matching: a data line equal to a header text is no data.)
        headers = sorted({first_line(p, encoding) for p in paths})
        skip = (F.col("_block") == 0) & F.col("value").isin(headers)
    return df.withColumn("_skip", skip)


def _rx(sep: str) -> str:
    return "\\t" if sep == "\t" else re.escape(sep)


def csv_error(value: Column, sep: str) -> Column:
    """``unbalanced_quote`` / ``stray_quote`` for a line that breaks RFC 4180's quoting, else NULL."""
    s = _rx(sep)
    quoted, plain = '"(?:[^"]++|"")*+"', f'[^"{s}]*+'
    line = f"^(?:{quoted}|{plain})(?:{s}(?:{quoted}|{plain}))*+$"
    odd = (F.length(value) - F.length(F.replace(value, F.lit('"'), F.lit("")))) % 2 == 1
    return F.when(value.contains('"'), F.when(odd, F.lit(UNBALANCED_QUOTE))
                  .when(~value.rlike(line), F.lit(STRAY_QUOTE)))


def split_delimited(value: Column, sep: str, *, quoted: bool = False) -> Column:
    """Split a line into fields; with ``quoted``, CSV double quotes protect separators (``""`` escapes).
    Only meaningful on a line :func:`csv_error` accepts."""
    plain = F.split(value, re.escape(sep), -1)
    if not quoted:
        return plain
    s = _rx(sep)
    # Every field is preceded by a separator once one is prepended: no empty match to skip a field.
    one = f'{s}("(?:[^"]++|"")*+"|[^"{s}]*+)'
    fields = F.regexp_extract_all(F.concat(F.lit(sep), value), F.lit(one), 1)
    unquote = lambda x: F.regexp_replace(F.regexp_replace(x, '^"|"$', ""), '""', '"')  # noqa: E731
    return F.when(value.contains('"'), F.transform(fields, unquote)).otherwise(plain)


def field(fields: Column, index: int | None) -> Column:
    """The 0-based ``index`` field, trimmed, or NULL when the adapter has no such column."""
    if index is None:
        return F.lit(None).cast("string")
    return F.trim(F.get(fields, index))


def delimited_error(value: Column, fields: Column, *, sep: str, n_columns: int, quoted: bool) -> Column:
    """The structural error of a delimited line (quoting, separators, column count), else NULL."""
    error = F.when(F.size(fields) != n_columns, F.lit(BAD_COLUMN_COUNT))
    if len(sep) > 1:
        stray = F.exists(fields, lambda x: x.rlike(f"[{re.escape(sep)}]"))
        error = F.when(stray, F.lit(STRAY_SEPARATOR)).otherwise(error)
    return F.coalesce(csv_error(value, sep), error) if quoted else error


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
        delimited_error(F.col("value"), F.col("_fields"), sep=sep, n_columns=n_columns, quoted=quoted)
        .alias("_error"),
        "_skip",
        F.lit(True).alias("_first"),
        "_file", "_block", "_mid",
        F.col("value").alias("_raw"),
    )


def json_path(key: str) -> str:
    """A variant path naming the top-level ``key``."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"$.{key}"
    if "'" not in key:
        return f"$['{key}']"
    if '"' not in key:
        return f'$["{key}"]'
    raise ValueError(f"JSON key {key!r} holds both quote characters; rename it")


def json_error(value: Column, parsed: Column, paths: Sequence[str]) -> Column:
    """Why a JSON line is not exactly one object with scalar fields, else NULL.

    Spark's parser stops after the first complete value, so what follows it is checked here: with string
    literals blanked out, the line must start with ``{``, end with ``}``, and its brackets must return to
    depth 0 only at the very end (a JVM ``aggregate`` over the few bracket characters)."""
    skeleton = F.regexp_replace(F.regexp_replace(value, _JSON_STRING, '""'), r"^\s+|\s+$", "")
    brackets = F.split(F.regexp_replace(skeleton, r"[^\[\]{}]", ""), "")
    depth = F.aggregate(
        brackets, F.struct(F.lit(0).alias("d"), F.lit(0).alias("z")),
        lambda acc, c: F.struct(
            (acc["d"] + F.when(c.isin("{", "["), 1).otherwise(-1)).alias("d"),
            (acc["z"] + F.when(acc["d"] + F.when(c.isin("{", "["), 1).otherwise(-1) == 0, 1).otherwise(0))
            .alias("z")))
    keys = F.json_object_keys(value)
    non_scalar = F.lit(False)
    for path in paths:
        non_scalar = non_scalar | F.schema_of_variant(F.variant_get(parsed, path, "variant")).rlike("^(OBJECT|ARRAY)")
    return (
        F.when(parsed.isNull(), F.when(F.size(F.array_distinct(keys)) < F.size(keys), F.lit(DUPLICATE_KEY))
               .otherwise(F.lit(UNPARSEABLE)))
        .when(~skeleton.startswith("{"), F.lit(NOT_AN_OBJECT))
        .when(~skeleton.endswith("}") | (depth["z"] != 1) | (depth["d"] != 0), F.lit(TRAILING_CONTENT))
        .when(non_scalar, F.lit(NON_SCALAR_FIELD))
    )


def json_events(lines: DataFrame, *, mapping: dict[str, str], synthetic_ts: str | None) -> DataFrame:
    """Parsed events from JSON Lines; ``mapping`` maps lake fields to JSON keys (scalars read as text)."""
    df = lines.withColumn("_v", F.try_parse_json("value"))
    paths = {name: json_path(key) for name, key in mapping.items()}
    get = lambda name: F.trim(F.try_variant_get("_v", paths[name], "string")) if name in paths else F.lit(None)  # noqa: E731
    ts_col = get("timestamp") if "timestamp" in mapping else F.lit(synthetic_ts)
    return df.select(
        get("user_id").cast("string").alias("user_id"),
        get("item_id").cast("string").alias("item_id"),
        get("rating").cast("string").alias("rating"),
        ts_col.cast("string").alias("ts"),
        F.lit("timestamp" not in mapping).alias("ts_synthetic"),
        json_error(F.col("value"), F.col("_v"), sorted(set(paths.values()))).alias("_error"),
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
