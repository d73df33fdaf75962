"""Generic interaction logs: CSV/TSV with a header, JSON Lines and Parquet, with a column mapping
(``--map user_id=uid,item_id=iid,timestamp=ts,rating=r``).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from jobs.ingest.source import Batch, ReadOptions
from jobs.ingest.text import MissingColumnsError, delimited_events, first_line, json_events, parquet_events, read_lines

LAKE_FIELDS = ("user_id", "item_id", "rating", "timestamp")
GENERIC_REQUIRED = ("user_id", "item_id", "timestamp")


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


def csv_events(spark: SparkSession, files: list[Path], *, mapping: dict[str, str],
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
    events = csv_events(spark, files, mapping=_mapping(options.column_map), required=GENERIC_REQUIRED,
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


