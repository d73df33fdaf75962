"""Reads what profiles are written from: lake interactions up to ``as_of``, items and users.

Tables are read with pyarrow (the profile job is a Python job; ml-100k-sized histories fit in memory),
with the ``event_ts <= as_of`` filter pushed down so no later event reaches a prompt.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from jobs.core import lake
from jobs.core.settings import Settings
from models.llm.prompts import Rated


def read_arrow(
    settings: Settings,
    name: str,
    *,
    columns: list[str] | None = None,
    row_filter: ds.Expression | None = None,
) -> pa.Table:
    """A lake table as Arrow (hive partitions such as ``event_date`` become columns)."""
    dataset = ds.dataset(lake.require(settings, name).resolve(), format="parquet", partitioning="hive")
    return dataset.to_table(columns=columns, filter=row_filter)


def _records(table: pa.Table, key: str) -> dict[str, dict[str, Any]]:
    # Arrow's own lists keep nullable integers as int/None (pandas would turn them into floats).
    return {str(row[key]): row for row in table.to_pylist()}


def load_items(settings: Settings) -> dict[str, dict[str, Any]]:
    return _records(read_arrow(settings, lake.ITEMS, columns=lake.ITEM_COLUMNS), "item_id")


def load_users(settings: Settings) -> dict[str, dict[str, Any]]:
    if not lake.exists(settings, lake.USERS):
        return {}
    return _records(read_arrow(settings, lake.USERS, columns=lake.USER_COLUMNS), "user_id")


def _ts_scalar(settings: Settings, as_of: datetime) -> pa.Scalar:
    """``as_of`` typed like the stored event_ts (tz-aware UTC from Spark; naive UTC from some writers)."""
    path = lake.require(settings, lake.INTERACTIONS)
    kind = ds.dataset(path.resolve(), format="parquet", partitioning="hive").schema.field("event_ts").type
    stamp = pd.Timestamp(as_of).tz_convert("UTC")
    return pa.scalar(stamp if kind.tz else stamp.tz_localize(None), type=kind)


def load_histories(
    settings: Settings, *, as_of: datetime, items: dict[str, dict[str, Any]]
) -> dict[str, list[Rated]]:
    """Each user's rated items with event_ts <= as_of, most recent first, latest rating per item."""
    events = read_arrow(
        settings,
        lake.INTERACTIONS,
        columns=["user_id", "item_id", "rating", "event_ts"],
        row_filter=ds.field("event_ts") <= _ts_scalar(settings, as_of),
    ).to_pandas()
    events = events.sort_values(
        ["user_id", "event_ts", "item_id"], ascending=[True, False, True]
    ).drop_duplicates(["user_id", "item_id"], keep="first")
    histories: dict[str, list[Rated]] = {}
    for user_id, item_id, rating in zip(events["user_id"], events["item_id"], events["rating"], strict=False):
        meta = items.get(item_id, {})
        histories.setdefault(str(user_id), []).append(
            Rated(
                item_id=str(item_id),
                title=str(meta.get("title") or f"item {item_id}"),
                rating=None if pd.isna(rating) else float(rating),
                year=meta.get("year"),
                genres=meta.get("genres") or "",
            )
        )
    return histories
