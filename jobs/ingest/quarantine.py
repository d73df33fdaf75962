"""The quarantine table: one row per bad input line, keyed by (``source_digest``, ``line_number``).

``source_digest`` is the sha256 of the file's bytes, so the key names a line of a *content*, whatever the
file is called or wherever it lies. The table is partitioned by ``batch_date`` and each key appears once
in the whole table:

* a rerun of a batch replaces the rows of its files (by digest) in its own partition, with the same rows
  (same lines, same reasons) and the ``source_file`` that first delivered each line;
* a line already quarantined under another batch date is not added again (the first delivery wins);
* rows of other files in the partition are kept. Rows written before ``source_digest`` existed (NULL) are
  replaced by path, as before.

A line that yields several bad events (a RecBole sequence line) is one row; its ``reason`` is the first
in alphabetical order, so the choice does not depend on Spark's ordering.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from urllib.parse import unquote, urlparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.core.lake import (
    QUARANTINE,
    QUARANTINE_COLUMNS,
    QUARANTINE_KEY,
    QUARANTINE_SCHEMA,
    carry_over,
    current_version,
    staging_dir,
)
from jobs.core.settings import Settings


def file_digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def file_digests(paths: Iterable[Path]) -> dict[str, str]:
    """sha256 of each file's bytes, by its path as text."""
    return {str(p): file_digest(p) for p in paths}


def local_path(uri: str) -> str:
    """A Spark file URI (``file:/a%20b/x.csv``) as a local path (``/a b/x.csv``)."""
    return unquote(urlparse(uri).path) if uri.startswith("file:") else uri


def source_files(uris: Iterable[str], known: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Spark URI → (local path, digest); a file missing from ``known`` is hashed now."""
    out = {}
    for uri in sorted(set(uris)):
        path = local_path(uri)
        out[uri] = (path, known.get(path) or file_digest(Path(path)))
    return out


def line_offsets(splits: Iterable[Mapping]) -> dict[tuple[str, int], int]:
    """(file, split start) → what to add to a row's ``_mid`` for its 1-based line number minus one: the lines
    in the file's earlier splits minus the split's first ``_mid`` (rows of one split are contiguous)."""
    per: dict[tuple[str, int], tuple[int, int]] = {}
    for s in splits:
        key = (s["_file"], s["_block"])
        lines, mid0 = per.get(key, (0, s["mid0"]))
        per[key] = (lines + s["lines"], min(mid0, s["mid0"]))
    out, seen = {}, {}
    for file, block in sorted(per):
        lines, mid0 = per[(file, block)]
        out[(file, block)] = seen.get(file, 0) - mid0
        seen[file] = seen.get(file, 0) + lines
    return out


def quarantine_rows(classified: DataFrame, splits: Iterable[Mapping], *, batch_date: date,
                    sources: Mapping[str, tuple[str, str]]) -> DataFrame:
    """Bad lines in QUARANTINE_COLUMNS, their line numbers from :func:`line_offsets` (a map literal: no join,
    no window)."""
    offsets = line_offsets(splits)
    split_key = F.concat_ws("#", F.col("_file"), F.col("_block").cast("string"))
    offset = F.create_map(*[F.lit(x) for (file, block), v in offsets.items() for x in (f"{file}#{block}", v)])
    lookup = lambda i: F.create_map(*[F.lit(x) for uri, v in sources.items() for x in (uri, v[i])])  # noqa: E731
    lines = classified.where(F.col("reason").isNotNull()).select(
        "reason",
        F.element_at(lookup(0), F.col("_file")).alias("source_file"),
        F.element_at(lookup(1), F.col("_file")).alias("source_digest"),
        (F.col("_mid") + F.element_at(offset, split_key) + 1).alias("line_number"),
        F.make_valid_utf8(F.col("_raw")).alias("raw"),
        F.lit(batch_date).alias("batch_date"),
    )
    rest = [c for c in QUARANTINE_COLUMNS if c != "reason"]
    return lines.groupBy(*rest).agg(F.min("reason").alias("reason")).select(*QUARANTINE_COLUMNS)


def _read(spark: SparkSession, current: Path, *paths: Path) -> DataFrame:
    return spark.read.schema(QUARANTINE_SCHEMA).option("basePath", str(current)).parquet(*[str(p) for p in paths])


def merged_partition(spark: SparkSession, *, current: Path | None, rows: DataFrame | None, part: str,
                     digests: list[str], files: list[str]) -> DataFrame | None:
    """The batch date's next rows: see the module docstring. None when there is nothing to write."""
    others = current is not None and any(p.name != part for p in current.glob("batch_date=*"))
    previous = current / part if current is not None and (current / part).is_dir() else None
    if rows is None and previous is None:
        return None
    ours = F.col("source_digest").isin(digests)
    if rows is not None and others:  # lines already quarantined under another batch date
        seen = _read(spark, current, current).where((F.col("batch_date") != F.lit(part.split("=")[1]).cast("date"))
                                                    & ours).select(*QUARANTINE_KEY)
        rows = rows.join(seen, QUARANTINE_KEY, "left_anti")
    if previous is None:
        return rows
    old = _read(spark, current, previous)
    kept = old.where(~ours & ~(F.col("source_digest").isNull() & F.col("source_file").isin(files)))
    if rows is None:
        return kept
    first = old.where(ours).select(*QUARANTINE_KEY, F.col("source_file").alias("_first"))
    rows = rows.join(first, QUARANTINE_KEY, "left").withColumn("source_file", F.coalesce("_first", "source_file"))
    return rows.select(*QUARANTINE_COLUMNS).unionByName(kept.select(*QUARANTINE_COLUMNS))


def stage_quarantine(spark: SparkSession, settings: Settings, *, rows: DataFrame | None, batch_date: date,
                     digests: list[str], files: list[str], scratch: Path) -> Path | None:
    """Next quarantine version: the batch date's partition merged, every other partition hard-linked."""
    current = current_version(settings, QUARANTINE)
    part = f"batch_date={batch_date.isoformat()}"
    out = merged_partition(spark, current=current, rows=rows, part=part, digests=digests, files=files)
    if out is None:
        return None
    # Sorted: a rerun writes the same rows in the same order.
    out.coalesce(1).sortWithinPartitions("source_digest", "line_number") \
        .write.partitionBy("batch_date").parquet(str(scratch / "quarantine"))
    staged = staging_dir(settings, QUARANTINE)
    staged.mkdir()
    carry_over(settings, QUARANTINE, staged, keep=lambda rel: rel.parts[0] != part)
    if (scratch / "quarantine" / part).is_dir():
        os.rename(scratch / "quarantine" / part, staged / part)
    (staged / "_SUCCESS").touch()
    return staged
