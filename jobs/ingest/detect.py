"""Format detection: names the input family from the files a source holds; ``--format`` overrides it.

Formats: ``ml100k``, ``ml1m``, ``mlcsv`` (:mod:`jobs.ingest.movielens`), ``recbole``
(:mod:`jobs.ingest.recbole`), ``csv`` / ``jsonl`` / ``parquet`` (:mod:`jobs.ingest.generic`). Each reader
returns a :class:`~jobs.ingest.source.Batch` of parsed events (validated later, in
:func:`jobs.ingest.batch.classify`) plus optional items and users in the lake's schemas.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pyspark.sql import SparkSession

from jobs.ingest.generic import read_generic_csv, read_generic_jsonl, read_generic_parquet
from jobs.ingest.movielens import read_ml1m, read_ml100k, read_mlcsv
from jobs.ingest.recbole import read_recbole
from jobs.ingest.source import Batch, ReadOptions

FORMATS = ("ml100k", "ml1m", "mlcsv", "recbole", "csv", "jsonl", "parquet")
ADAPTERS: dict[str, Callable[[SparkSession, Path, ReadOptions], Batch]] = {
    "ml100k": read_ml100k, "ml1m": read_ml1m, "mlcsv": read_mlcsv, "recbole": read_recbole,
    "csv": read_generic_csv, "jsonl": read_generic_jsonl, "parquet": read_generic_parquet,
}


def detect(source: Path) -> str:
    """The format name for ``source`` from the files it holds."""
    if source.is_file():
        by_suffix = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl",
                     ".parquet": "parquet", ".inter": "recbole"}
        if source.suffix in by_suffix:
            return by_suffix[source.suffix]
    elif source.is_dir():
        names = {p.name for p in source.iterdir()}
        suffixes = {p.suffix for p in source.iterdir() if p.is_file()}
        for marker, fmt in (("u.data", "ml100k"), ("ratings.dat", "ml1m"), ("ratings.csv", "mlcsv")):
            if marker in names:
                return fmt
        for suffix, fmt in ((".inter", "recbole"), (".parquet", "parquet"), (".jsonl", "jsonl"),
                            (".csv", "csv")):
            if suffix in suffixes:
                return fmt
    else:
        raise FileNotFoundError(f"ingest source {source} does not exist")
    found = sorted(p.name for p in source.iterdir())[:20] if source.is_dir() else [source.name]
    raise ValueError(f"cannot tell the format of {source} (found {found}); pass --format, one of {FORMATS}")


def read_source(spark: SparkSession, source: Path, *, fmt: str | None, options: ReadOptions) -> Batch:
    fmt = fmt or detect(source)
    if fmt not in ADAPTERS:
        raise ValueError(f"unknown format {fmt!r}; known formats: {FORMATS}")
    return ADAPTERS[fmt](spark, source, options)


