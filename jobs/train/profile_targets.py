"""Point-in-time profile embeddings for training.

By default they come from the Feast feature store, the same way a downstream trainer would read them:
``get_historical_features`` on the ``kt_training`` service's ``<entity>_profile`` view at the split's
``train_end``, so a model never sees a profile written from interactions after its cut-off. The Feast views
serve each entity's newest profile whatever wrote it; ``generator`` (compare, say, template and SmolLM2
profiles on one split) therefore reads the lake's append-only profile history directly, with the same rule:
the latest row per entity with ``event_timestamp <= as_of``, ties broken by ``created_timestamp``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from jobs.core import lake
from jobs.core.settings import Settings
from jobs.profiles import table as profile_table


def read_profiles(
    settings: Settings, *, entity: str, as_of: datetime, ids: Sequence[str], generator: str | None = None
) -> tuple[dict[str, np.ndarray], dict]:
    """``(entity_id -> embedding, version)`` of ``ids`` as of ``as_of``: through Feast, or from the lake when
    ``generator`` keeps only profiles whose generator starts with it (e.g. ``template:``, ``vllm:``)."""
    name = lake.profile_table(entity)
    lake.require(settings, name)
    cutoff = pd.Timestamp(lake.as_utc(as_of))
    if generator:
        latest = _lake_latest(settings, entity=entity, as_of=cutoff, generator=generator)
        latest = latest[latest["entity_id"].isin(set(map(str, ids)))]
        source = {"source": "lake", "table": name}
    else:
        latest = _feast_latest(settings, entity=entity, as_of=cutoff, ids=ids)
        source = {"source": "feast", "feature_view": f"{entity}_profile"}
    if latest.empty:
        raise LookupError(f"no {entity} profiles with event_timestamp <= {cutoff.isoformat()}"
                          + (f" from generator {generator!r}" if generator else ""))
    vectors = {str(e): np.asarray(v, dtype=np.float32)
               for e, v in zip(latest["entity_id"], latest["embedding"], strict=True)}
    version = {**source, "as_of": cutoff.isoformat(), "entities": len(vectors),
               "generators": sorted(latest["generator"].astype(str).unique())}
    return vectors, version


def _feast_latest(settings: Settings, *, entity: str, as_of: pd.Timestamp, ids: Sequence[str]) -> pd.DataFrame:
    from jobs.publish.reads import TRAINING_SERVICE, historical_features, training_store

    view = f"{entity}_profile"
    frame = historical_features(settings, entity=entity, ids=ids, as_of=as_of, views=[view],
                                store=training_store(settings, TRAINING_SERVICE))
    frame = frame.rename(columns={frame.columns[0]: "entity_id", f"{view}__embedding": "embedding",
                                  f"{view}__generator": "generator"})
    return frame[frame["embedding"].notna()]


def _lake_latest(settings: Settings, *, entity: str, as_of: pd.Timestamp, generator: str) -> pd.DataFrame:
    rows = profile_table.read_rows(settings, entity, as_of=as_of)
    # comma-separated prefixes take any of them (h-llmprof has the same rule in profile_table.latest)
    rows = rows[rows["generator"].astype(str).str.startswith(tuple(generator.split(",")))]
    rows = rows.sort_values(["entity_id", "event_timestamp", "created_timestamp"])
    return rows.drop_duplicates("entity_id", keep="last")
