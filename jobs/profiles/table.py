"""The ``profiles_user`` / ``profiles_item`` lake tables: append-only versions of profile rows.

A run adds one parquet file of newly generated rows to a new table version; every earlier file is
carried over by hard link (:func:`jobs.core.lake.carry_over`), so history is kept and nothing is rewritten.
Run sidecars (``_failed.json``, ``_pca.npz``; the underscore keeps parquet readers off them) describe
only the version they sit in and are not carried.
Timestamps are written in microseconds, UTC (Feast rejects nanoseconds).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from jobs.core import lake
from jobs.core.settings import Settings

# Leading underscore: Spark, pyarrow and Feast readers of the folder skip these non-parquet files.
FAILED_FILE = "_failed.json"
PCA_FILE = "_pca.npz"


def read_rows(settings: Settings, entity: str, *, as_of: datetime | None = None) -> pd.DataFrame:
    """Every stored profile row (all versions of history), optionally only event_timestamp <= as_of."""
    path = lake.table_path(settings, lake.profile_table(entity))
    if not path.exists():
        return lake.PROFILE_SCHEMA.empty_table().to_pandas()
    dataset = ds.dataset(path.resolve(), format="parquet", schema=lake.PROFILE_SCHEMA, exclude_invalid_files=True)
    row_filter = None if as_of is None else ds.field("event_timestamp") <= pd.Timestamp(as_of)
    return dataset.to_table(filter=row_filter).to_pandas()


def of_generator(rows: pd.DataFrame, generator: str) -> pd.DataFrame:
    """The rows whose generator starts with ``generator``, or with any of its comma-separated prefixes
    (``vllm:,transformers:`` takes the LLM rows whichever local backend wrote each side)."""
    return rows[rows["generator"].astype(str).str.startswith(tuple(generator.split(",")))]


def latest(
    settings: Settings, entity: str, *, as_of: datetime | None = None, generator: str | None = None
) -> pd.DataFrame:
    """Each entity's newest profile row (by event_timestamp, then created_timestamp), optionally only among
    rows whose generator starts with ``generator`` (see :func:`of_generator`)."""
    rows = read_rows(settings, entity, as_of=as_of)
    if generator:
        rows = of_generator(rows, generator)
    rows = rows.sort_values(["entity_id", "event_timestamp", "created_timestamp"])
    return rows.drop_duplicates("entity_id", keep="last").reset_index(drop=True)


def write_version(
    settings: Settings, *, entity: str, rows: pa.Table, sidecars: dict[str, bytes] | None = None
) -> Path:
    """Publish a new version: the current files plus ``rows`` (one new parquet file) and sidecars."""
    name = lake.profile_table(entity)
    staged = lake.staging_dir(settings, name)
    staged.mkdir()
    lake.carry_over(settings, name, staged, keep=lambda rel: rel.suffix == ".parquet")
    if rows.num_rows or not any(staged.glob("*.parquet")):
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
        pq.write_table(rows.cast(lake.PROFILE_SCHEMA), staged / f"part-{stamp}-{uuid.uuid4().hex[:8]}.parquet")
    for filename, payload in (sidecars or {}).items():
        (staged / filename).write_bytes(payload)
    return lake.publish(settings, name, staged)


def failed_rows(settings: Settings, entity: str) -> list[dict]:
    """The rows the current version's run could not generate (entity_id, reason, source_hash)."""
    path = lake.table_path(settings, lake.profile_table(entity)) / FAILED_FILE
    return json.loads(path.read_text()) if path.exists() else []
