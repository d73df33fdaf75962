"""Reading features back out of Feast, for trainers (point in time) and services (online).

``historical_features(settings, entity="user", ids=[...], as_of=cut_off)`` returns, for each id, the features
of the ``kt_training`` service that are keyed on that entity, as they were at ``as_of``: a profile generated
after ``as_of`` is never returned (Feast's point-in-time join on ``event_timestamp``). Columns are named
``<view>__<feature>`` (e.g. ``user_profile__embedding``) because user and item views share feature names.

Training on whole examples reads the service directly::

    store.get_historical_features(entity_df=examples[["user_id", "item_id", "event_timestamp"]],
                                  features=store.get_feature_service("kt_training"), full_feature_names=True)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd
from feast import FeatureStore

from jobs.core import lake
from jobs.core.settings import Settings

Entity = Literal["user", "item"]
JOIN_KEYS: dict[str, str] = {"user": "user_id", "item": "item_id"}
TRAINING_SERVICE = "kt_training"
SERVING_SERVICE = "online_ranking"


def _join_key(entity: str) -> str:
    if entity not in JOIN_KEYS:
        raise ValueError(f"entity must be one of {sorted(JOIN_KEYS)}, got {entity!r}")
    return JOIN_KEYS[entity]


def entity_feature_refs(
    store: FeatureStore, *, service: str, entity: str, views: Sequence[str] | None = None
) -> list[str]:
    """``view:feature`` refs of ``service`` whose view is keyed on ``entity`` alone (and in ``views``)."""
    refs = []
    for projection in store.get_feature_service(service).feature_view_projections:
        view = store.get_feature_view(projection.name)
        if list(view.entities) == [entity] and (views is None or view.name in views):
            refs += [f"{projection.name_to_use()}:{feature.name}" for feature in projection.features]
    if not refs:
        raise ValueError(f"feature service {service!r} has no feature view keyed on {entity!r} among {views}")
    return refs


def _require_tables(settings: Settings, store: FeatureStore, refs: Sequence[str]) -> None:
    """Fail naming the step to run when a view's lake table was never written (not DuckDB's IO error)."""
    for name in dict.fromkeys(ref.split(":")[0] for ref in refs):
        table = store.get_feature_view(name).batch_source.tags.get("lake_table")
        if table and not lake.exists(settings, table):
            step = "ktrec stats" if table.endswith("_stats") else "ktrec profiles"
            raise FileNotFoundError(
                f"feature view {name!r} reads lake table {table!r}, not written yet; run `{step}`"
            )


def _store(settings: Settings, store: FeatureStore | None) -> FeatureStore:
    if store is not None:
        return store
    from jobs.publish.store import get_store

    return get_store(settings, apply=False)


def training_store(settings: Settings, service: str = TRAINING_SERVICE) -> FeatureStore:
    """The store as the last ``feast apply`` left it; applied first only when ``service`` is not registered
    yet (a standalone ``ktrec train``), so parallel trainers after ``ktrec materialize`` never write it."""
    from feast.errors import FeatureServiceNotFoundException

    from jobs.publish.store import get_store

    store = _store(settings, None)
    try:
        store.get_feature_service(service)
    except FeatureServiceNotFoundException:
        store = get_store(settings, apply=True)
    return store


def historical_features(
    settings: Settings,
    *,
    entity: Entity,
    ids: Sequence[str],
    as_of: datetime,
    service: str = TRAINING_SERVICE,
    views: Sequence[str] | None = None,
    store: FeatureStore | None = None,
) -> pd.DataFrame:
    """Point-in-time features of ``ids`` at ``as_of``, one row per distinct id in first-seen order.

    ``views`` narrows the service to some of its views (e.g. ``["user_profile"]``); default: all of
    ``entity``'s.
    """
    key = _join_key(entity)
    store = _store(settings, store)
    refs = entity_feature_refs(store, service=service, entity=entity, views=views)
    _require_tables(settings, store, refs)
    unique = list(dict.fromkeys(str(i) for i in ids))
    entity_df = pd.DataFrame({key: unique, "event_timestamp": pd.Timestamp(lake.as_utc(as_of))})
    job = store.get_historical_features(entity_df=entity_df, features=refs, full_feature_names=True)
    frame = job.to_df()
    return frame.set_index(key).reindex(unique).reset_index()


def profile_embeddings(
    settings: Settings,
    *,
    entity: Entity,
    ids: Sequence[str],
    as_of: datetime,
    store: FeatureStore | None = None,
) -> dict[str, np.ndarray]:
    """``{id: embedding}`` for the ids that had a profile at ``as_of`` (ids without one are left out)."""
    view = f"{entity}_profile"
    frame = historical_features(settings, entity=entity, ids=ids, as_of=as_of, views=[view], store=store)
    column = f"{view}__embedding"
    present = frame[frame[column].notna()]
    return {
        str(row_id): np.asarray(vector, dtype=np.float32)
        for row_id, vector in zip(present[_join_key(entity)], present[column], strict=True)
    }


def online_features(
    settings: Settings,
    *,
    entity: Entity,
    ids: Sequence[str],
    service: str = SERVING_SERVICE,
    store: FeatureStore | None = None,
) -> pd.DataFrame:
    """The latest materialized features of ``ids`` from the online store (``None`` where an id has none)."""
    key = _join_key(entity)
    store = _store(settings, store)
    response = store.get_online_features(
        features=entity_feature_refs(store, service=service, entity=entity),
        entity_rows=[{key: str(i)} for i in ids],
        full_feature_names=True,
    )
    return pd.DataFrame(response.to_dict())
