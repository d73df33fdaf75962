"""Source adapters: turn a dataset folder (or file) into parsed events plus optional items and users.

Each adapter returns a :class:`Batch`: ``events`` follow jobs.ingest_text.EVENT_FIELDS (validation happens
later, in jobs.ingest.classify), ``items``/``users`` follow jobs.lake's ITEM_COLUMNS/USER_COLUMNS.
:func:`detect` names the format from the files present; ``--format`` overrides it.
Formats: ``ml100k``, ``ml1m``, ``mlcsv`` (MovieLens CSV family), ``recbole`` (jobs.recbole),
``csv`` / ``jsonl`` / ``parquet`` (generic logs with a column mapping).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.ingest_text import (
    MissingColumnsError, delimited_events, first_line, json_events, parquet_events, read_lines,
)
from jobs.lake import ITEMS_SCHEMA, USERS_SCHEMA

FORMATS = ("ml100k", "ml1m", "mlcsv", "recbole", "csv", "jsonl", "parquet")
LAKE_FIELDS = ("user_id", "item_id", "rating", "timestamp")
GENERIC_REQUIRED = ("user_id", "item_id", "timestamp")
LATIN1 = "ISO-8859-1"
YEAR_IN_TITLE = r"\((\d{4})\)\s*$"
ML1M_OCCUPATIONS = [
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer",
    "programmer", "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer",
    "tradesman/craftsman", "unemployed", "writer",
]


@dataclass
class Batch:
    format: str
    files: list[Path]
    events: DataFrame
    items: DataFrame | None = None
    users: DataFrame | None = None


@dataclass(frozen=True)
class ReadOptions:
    column_map: dict[str, str]
    synthetic_epoch_s: int  # epoch seconds of the first synthetic timestamp


def conform(df: DataFrame, ddl: str) -> DataFrame:
    """Select ``df`` into a lake schema: missing columns become NULL, types are cast."""
    fields = [f.strip().split(" ", 1) for f in ddl.split(",")]
    cols = [(F.col(n) if n in df.columns else F.lit(None)).cast(t).alias(n) for n, t in fields]
    return df.select(*cols)


def read_csv(spark: SparkSession, path: Path, *, sep: str, encoding: str = "UTF-8", quoted: bool = False,
             header: bool = False) -> DataFrame:
    """A small metadata file (items, users) through Spark's CSV reader, all columns as strings."""
    return spark.read.csv(str(path), sep=sep, encoding=encoding, header=header,
                          quote='"' if quoted else "", escape='"', mode="PERMISSIVE")


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


def _need(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no {name}")
    return path


def read_ml100k(spark: SparkSession, source: Path, options: ReadOptions) -> Batch:
    data = _need(source, "u.data")
    events = delimited_events(read_lines(spark, [data], header=False), sep="\t", n_columns=4,
                              user=0, item=1, rating=2, ts=3)
    items = users = None
    if (source / "u.item").is_file():
        genre_file = source / "u.genre"
        genres = [ln.split("|")[0] for ln in genre_file.read_text(encoding="latin-1").splitlines() if ln.strip()] \
            if genre_file.is_file() else [f"genre{i}" for i in range(19)]
        raw = read_csv(spark, source / "u.item", sep="|", encoding=LATIN1)
        flags = [F.when(F.col(f"_c{5 + i}") == "1", F.lit(name)) for i, name in enumerate(genres)]
        items = conform(raw.select(
            F.col("_c0").alias("item_id"), F.col("_c1").alias("title"),
            F.coalesce(F.regexp_extract("_c1", YEAR_IN_TITLE, 1), F.substring("_c2", -4, 4)).alias("year"),
            F.concat_ws("|", *flags).alias("genres"),
        ).withColumn("year", F.when(F.col("year") != "", F.col("year"))), ITEMS_SCHEMA)
    if (source / "u.user").is_file():
        raw = read_csv(spark, source / "u.user", sep="|", encoding=LATIN1)
        users = conform(raw.toDF("user_id", "age", "gender", "occupation", "zip"), USERS_SCHEMA)
    files = [p for p in (data, source / "u.item", source / "u.user") if p.is_file()]
    return Batch("ml100k", files, events, items, users)


def read_ml1m(spark: SparkSession, source: Path, options: ReadOptions) -> Batch:
    data = _need(source, "ratings.dat")
    events = delimited_events(read_lines(spark, [data], header=False), sep="::", n_columns=4,
                              user=0, item=1, rating=2, ts=3)
    items = users = None
    if (source / "movies.dat").is_file():
        raw = read_csv(spark, source / "movies.dat", sep="::", encoding=LATIN1)
        items = conform(raw.select(
            F.col("_c0").alias("item_id"), F.col("_c1").alias("title"),
            F.regexp_extract("_c1", YEAR_IN_TITLE, 1).alias("year"), F.col("_c2").alias("genres"),
        ).withColumn("year", F.when(F.col("year") != "", F.col("year"))), ITEMS_SCHEMA)
    if (source / "users.dat").is_file():
        raw = read_csv(spark, source / "users.dat", sep="::")
        names = F.array(*[F.lit(n) for n in ML1M_OCCUPATIONS])
        occupation = F.coalesce(F.get(names, F.col("_c3").cast("int")), F.col("_c3"))
        users = conform(raw.select(
            F.col("_c0").alias("user_id"), F.col("_c1").alias("gender"), F.col("_c2").alias("age"),
            occupation.alias("occupation"), F.col("_c4").alias("zip")), USERS_SCHEMA)
    files = [p for p in (data, source / "movies.dat", source / "users.dat") if p.is_file()]
    return Batch("ml1m", files, events, items, users)


def read_mlcsv(spark: SparkSession, source: Path, options: ReadOptions) -> Batch:
    data = _need(source, "ratings.csv")
    mapping = {"user_id": "userId", "item_id": "movieId", "rating": "rating", "timestamp": "timestamp"}
    mapping.update(options.column_map)
    events = _csv_events(spark, [data], mapping=mapping, required=GENERIC_REQUIRED, options=options)
    items = None
    if (source / "movies.csv").is_file():
        raw = read_csv(spark, source / "movies.csv", sep=",", quoted=True, header=True)
        items = raw.select(
            F.col("movieId").alias("item_id"), F.col("title"),
            F.regexp_extract("title", YEAR_IN_TITLE, 1).alias("year"), F.col("genres"),
        ).withColumn("year", F.when(F.col("year") != "", F.col("year")))
        if (source / "tags.csv").is_file():
            tags = read_csv(spark, source / "tags.csv", sep=",", quoted=True, header=True)
            described = tags.groupBy(F.col("movieId").alias("item_id")).agg(
                F.concat(F.lit("tags: "), F.concat_ws(", ", F.sort_array(F.collect_set(F.trim("tag")))))
                .alias("description"))
            items = items.join(described, "item_id", "left")
        items = conform(items, ITEMS_SCHEMA)
    files = [p for p in (data, source / "movies.csv", source / "tags.csv") if p.is_file()]
    return Batch("mlcsv", files, events, items, None)


def _files(source: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if source.is_file():
        return [source]
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix in suffixes)
    if not files:
        raise FileNotFoundError(f"{source} holds no {'/'.join(suffixes)} files")
    return files


def _mapping(column_map: dict[str, str]) -> dict[str, str]:
    unknown = set(column_map) - set(LAKE_FIELDS) - {"event_ts"}
    if unknown:
        raise ValueError(f"--map names unknown lake fields {sorted(unknown)}; known: {list(LAKE_FIELDS)}")
    mapping = {name: name for name in LAKE_FIELDS}
    mapping.update({("timestamp" if k == "event_ts" else k): v for k, v in column_map.items()})
    return mapping


def _check_columns(source: str, mapping: dict[str, str], present: list[str], required: tuple[str, ...]) -> None:
    missing = [f"{name} (as {mapping[name]!r})" for name in required if mapping[name] not in present]
    if missing:
        raise MissingColumnsError(source=source, missing=missing, present=present,
                                  hint="name them with --map user_id=COL,item_id=COL,timestamp=COL,rating=COL")


def _csv_events(spark: SparkSession, files: list[Path], *, mapping: dict[str, str],
                required: tuple[str, ...], options: ReadOptions) -> DataFrame:
    header_text = first_line(files[0])
    sep = "\t" if "\t" in header_text and "," not in header_text else ","
    header = [h.strip() for h in next(csv.reader([header_text], delimiter=sep))] if header_text else []
    for other in files[1:]:
        if first_line(other) != header_text:
            raise ValueError(f"{other} has a different header than {files[0]}; ingest them separately")
    _check_columns(str(files[0]), mapping, header, required)
    index = {name: header.index(col) for name, col in mapping.items() if col in header}
    return delimited_events(
        read_lines(spark, files, header=True), sep=sep, n_columns=len(header), quoted=True,
        user=index["user_id"], item=index["item_id"], rating=index.get("rating"),
        ts=index.get("timestamp"), synthetic_ts=str(options.synthetic_epoch_s))


def read_generic_csv(spark: SparkSession, source: Path, options: ReadOptions) -> Batch:
    files = _files(source, (".csv", ".tsv"))
    events = _csv_events(spark, files, mapping=_mapping(options.column_map), required=GENERIC_REQUIRED,
                         options=options)
    return Batch("csv", files, events)


def read_generic_jsonl(spark: SparkSession, source: Path, options: ReadOptions) -> Batch:
    files = _files(source, (".jsonl", ".json", ".ndjson"))
    mapping = _mapping(options.column_map)
    with open(files[0], encoding="utf-8", errors="replace") as handle:
        first = next((ln for ln in handle if ln.strip()), "")
    try:
        present = list(json.loads(first)) if first else []
    except json.JSONDecodeError as exc:
        raise ValueError(f"{files[0]}: the first line is not JSON ({exc}); is this JSON Lines?") from exc
    _check_columns(str(files[0]), mapping, present, GENERIC_REQUIRED)
    mapping = {k: v for k, v in mapping.items() if v in present or k in GENERIC_REQUIRED}
    events = json_events(read_lines(spark, files, header=False), mapping=mapping,
                         synthetic_ts=str(options.synthetic_epoch_s))
    return Batch("jsonl", files, events)


def read_generic_parquet(spark: SparkSession, source: Path, options: ReadOptions) -> Batch:
    files = _files(source, (".parquet",))
    mapping = _mapping(options.column_map)
    import pyarrow.parquet as pq

    present = pq.read_schema(files[0]).names
    _check_columns(str(source), mapping, present, GENERIC_REQUIRED)
    mapping = {k: v for k, v in mapping.items() if v in present}
    nanos = _nanosecond_timestamp(files[0], mapping["timestamp"])
    if nanos:
        # Spark cannot read TIMESTAMP(NANOS) (pandas' default); read it as a long and scale it.
        spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
    events = parquet_events(spark, files, mapping=mapping, synthetic_ts=str(options.synthetic_epoch_s),
                            ts_nanos=nanos)
    return Batch("parquet", files, events)


def _nanosecond_timestamp(path: Path, column: str) -> bool:
    import pyarrow as pa
    import pyarrow.parquet as pq

    kind = pq.read_schema(path).field(column).type
    return pa.types.is_timestamp(kind) and kind.unit == "ns"


def _recbole(spark: SparkSession, source: Path, options: ReadOptions) -> Batch:
    from jobs.recbole import read_recbole  # its own module: atomic files have many variants

    return read_recbole(spark, source, options)


ADAPTERS: dict[str, Callable[[SparkSession, Path, ReadOptions], Batch]] = {
    "ml100k": read_ml100k, "ml1m": read_ml1m, "mlcsv": read_mlcsv, "recbole": _recbole,
    "csv": read_generic_csv, "jsonl": read_generic_jsonl, "parquet": read_generic_parquet,
}
