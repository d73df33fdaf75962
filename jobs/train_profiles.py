"""Point-in-time profile embeddings for training, read straight from the lake profile tables.

For each entity the latest profile with ``event_timestamp <= as_of`` (ties broken by
``created_timestamp``) is kept, so a model trained on a split never sees a profile written from
interactions after the split's ``train_end``. A later change swaps this for Feast
``get_historical_features``; the signature (settings, entity, as_of -> vectors + version) stays.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from jobs.lake import ITEM_PROFILES, USER_PROFILES, exists, table_path
from jobs.settings import Settings

TABLES = {"user": USER_PROFILES, "item": ITEM_PROFILES}


def read_profiles(
    settings: Settings, *, entity: str, as_of: datetime, generator: str | None = None
) -> tuple[dict[str, np.ndarray], dict]:
    """``(entity_id -> embedding, version)`` as of ``as_of``; ``generator`` keeps only profiles whose
    generator starts with it (e.g. ``template:`` or ``transformers:smollm2``)."""
    if entity not in TABLES:
        raise ValueError(f"unknown profile entity {entity!r}; choose one of {sorted(TABLES)}")
    name = TABLES[entity]
    if not exists(settings, name):
        raise FileNotFoundError(f"lake table {name} does not exist: run `ktrec profiles --entity {entity}` first")
    path = table_path(settings, name)
    files = sorted(str(p) for p in path.rglob("*.parquet") if not p.name.startswith((".", "_")))
    if not files:
        raise FileNotFoundError(f"lake table {name} has no parquet files")
    columns = ["entity_id", "embedding", "generator", "event_timestamp", "created_timestamp"]
    frame = ds.dataset(files, format="parquet", partitioning="hive", partition_base_dir=str(path)) \
        .to_table(columns=columns).to_pandas()
    cutoff = pd.Timestamp(as_of)
    cutoff = cutoff.tz_localize("UTC") if cutoff.tzinfo is None else cutoff.tz_convert("UTC")
    ts = pd.to_datetime(frame["event_timestamp"], utc=True)
    keep = ts <= cutoff
    if generator:
        keep &= frame["generator"].astype(str).str.startswith(generator)
    frame = frame[keep].assign(_ts=ts[keep]).sort_values(["_ts", "created_timestamp"], kind="stable")
    latest = frame.drop_duplicates("entity_id", keep="last")
    if latest.empty:
        raise LookupError(f"no {entity} profiles with event_timestamp <= {cutoff.isoformat()}"
                          + (f" from generator {generator!r}" if generator else ""))
    vectors = {str(e): np.asarray(v, dtype=np.float32) for e, v in zip(latest["entity_id"], latest["embedding"])}
    version = {"table": name, "as_of": cutoff.isoformat(), "entities": len(vectors),
               "generators": sorted(latest["generator"].astype(str).unique()),
               "latest_event_timestamp": latest["_ts"].max().isoformat()}
    return vectors, version
