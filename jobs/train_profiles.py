"""Point-in-time profile embeddings for training, read from the lake profile tables.

For each entity the latest profile with ``event_timestamp <= as_of`` (ties broken by
``created_timestamp``) is kept, so a model trained on a split never sees a profile written from
interactions after the split's ``train_end``. ``generator`` narrows the choice to one generator (the table
keeps every generator's history). A later change swaps this for Feast ``get_historical_features``; the
signature (settings, entity, as_of -> vectors + version) stays.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from jobs import lake, profile_table
from jobs.settings import Settings


def read_profiles(
    settings: Settings, *, entity: str, as_of: datetime, generator: str | None = None
) -> tuple[dict[str, np.ndarray], dict]:
    """``(entity_id -> embedding, version)`` as of ``as_of``; ``generator`` keeps only profiles whose
    generator starts with it (e.g. ``template:`` or ``transformers:smollm2``)."""
    name = profile_table.table_for(entity)
    if not lake.exists(settings, name):
        raise FileNotFoundError(f"lake table {name} does not exist: run `ktrec profiles --entity {entity}` first")
    cutoff = pd.Timestamp(as_of)
    cutoff = cutoff.tz_localize("UTC") if cutoff.tzinfo is None else cutoff.tz_convert("UTC")
    rows = profile_table.read_rows(settings, entity, as_of=cutoff)
    if generator:
        rows = rows[rows["generator"].astype(str).str.startswith(generator)]
    # The newest row per entity among those kept (profile_table.latest's rule, after the generator filter).
    rows = rows.sort_values(["entity_id", "event_timestamp", "created_timestamp"])
    latest = rows.drop_duplicates("entity_id", keep="last")
    if latest.empty:
        raise LookupError(f"no {entity} profiles with event_timestamp <= {cutoff.isoformat()}"
                          + (f" from generator {generator!r}" if generator else ""))
    vectors = {str(e): np.asarray(v, dtype=np.float32) for e, v in zip(latest["entity_id"], latest["embedding"])}
    version = {"table": name, "as_of": cutoff.isoformat(), "entities": len(vectors),
               "generators": sorted(latest["generator"].astype(str).unique()),
               "latest_event_timestamp": pd.Timestamp(latest["event_timestamp"].max()).isoformat()}
    return vectors, version
