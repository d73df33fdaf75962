"""Reads what profiles are written from: lake interactions up to ``as_of``, items and users.

Tables are read with pyarrow (the profile job is a Python job; ml-100k-sized histories fit in memory),
with the ``event_ts <= as_of`` filter pushed down so no later event reaches a prompt.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow.dataset as ds

from jobs import lake
from jobs.settings import Settings
from models.llm.prompts import Rated


def read_table(settings: Settings, name: str, *, columns: list[str] | None = None,
               row_filter: ds.Expression | None = None) -> pd.DataFrame:
    """A lake table as pandas (hive partitions such as ``event_date`` become columns)."""
    path = lake.table_path(settings, name)
    if not path.exists():
        raise FileNotFoundError(f"lake table {name!r} does not exist at {path}; run `ktrec ingest` first")
    dataset = ds.dataset(path.resolve(), format="parquet", partitioning="hive",
                         exclude_invalid_files=True)
    return dataset.to_table(columns=columns, filter=row_filter).to_pandas()


def _clean(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return value.item() if hasattr(value, "item") else value


def _records(df: pd.DataFrame, key: str) -> dict[str, dict[str, Any]]:
    return {str(row[key]): {k: _clean(v) for k, v in row.items()} for row in df.to_dict("records")}


def load_items(settings: Settings) -> dict[str, dict[str, Any]]:
    return _records(read_table(settings, lake.ITEMS, columns=lake.ITEM_COLUMNS), "item_id")


def load_users(settings: Settings) -> dict[str, dict[str, Any]]:
    if not lake.exists(settings, lake.USERS):
        return {}
    return _records(read_table(settings, lake.USERS, columns=lake.USER_COLUMNS), "user_id")


def load_histories(settings: Settings, *, as_of: datetime,
                   items: dict[str, dict[str, Any]]) -> dict[str, list[Rated]]:
    """Each user's rated items with event_ts <= as_of, most recent first, latest rating per item."""
    events = read_table(settings, lake.INTERACTIONS, columns=["user_id", "item_id", "rating", "event_ts"],
                        row_filter=ds.field("event_ts") <= pd.Timestamp(as_of))
    events = (events.sort_values(["user_id", "event_ts", "item_id"], ascending=[True, False, True])
              .drop_duplicates(["user_id", "item_id"], keep="first"))
    histories: dict[str, list[Rated]] = {}
    for user_id, item_id, rating in zip(events["user_id"], events["item_id"], events["rating"]):
        meta = items.get(item_id, {})
        histories.setdefault(str(user_id), []).append(Rated(
            item_id=str(item_id), title=str(meta.get("title") or f"item {item_id}"),
            rating=None if pd.isna(rating) else float(rating), year=meta.get("year"),
            genres=meta.get("genres") or ""))
    return histories
