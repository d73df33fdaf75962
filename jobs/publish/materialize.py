"""Register the feature definitions and load the online store up to a logical date (``ktrec materialize``).

``run(settings, end=...)`` applies features/ (idempotent), then for each feature view:

* first run: ``materialize(end - ttl, end)``. Feast's own default start is *wall-clock* now minus ttl, which
  loads nothing when the logical date is in the past (a backfill, or MovieLens' 1998 timestamps);
* later runs: ``materialize_incremental(end)``, from where the previous run stopped;
* a rerun of an already covered date: ``materialize(end - ttl, end)`` again, so the online store holds the
  state as of ``end`` (same result as the first run of that date; also picks up rewritten lake rows).

Views whose lake table has not been written yet (e.g. no profiles generated) are skipped and reported; a table
with nanosecond timestamps is refused with the offending files named (Feast needs microseconds).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from feast import FeatureStore, FeatureView

from jobs.core import lake
from jobs.core.settings import Settings
from jobs.publish.store import get_store, nanosecond_columns

log = logging.getLogger(__name__)


def _lake_table(view: FeatureView) -> str:
    return view.batch_source.tags.get("lake_table", "")


def _materialize_view(store: FeatureStore, view: FeatureView, *, end: datetime) -> dict:
    previous = view.most_recent_end_time
    if previous is not None and lake.as_utc(previous) < end:
        store.materialize_incremental(end_date=end, feature_views=[view.name])
        return {"mode": "incremental", "start": lake.as_utc(previous).isoformat(), "end": end.isoformat()}
    start = end - view.ttl
    store.materialize(start_date=start, end_date=end, feature_views=[view.name])
    return {
        "mode": "initial" if previous is None else "rerun",
        "start": start.isoformat(),
        "end": end.isoformat(),
    }


def run(settings: Settings, *, end: datetime) -> dict:
    """Apply the feature repository and materialize every view whose lake table exists, up to ``end``."""
    end = lake.as_utc(end)
    started = time.perf_counter()
    store = get_store(settings)
    applied = time.perf_counter()
    todo, skipped = [], {}
    for view in sorted(store.list_feature_views(), key=lambda v: v.name):
        table = _lake_table(view)
        if table and not lake.exists(settings, table):
            skipped[view.name] = f"lake table {table!r} not written yet"
        elif bad := (nanosecond_columns(settings, table) if table else []):
            # Checked for every view before loading any, so a bad table leaves the online store untouched.
            raise ValueError(
                f"lake table {table!r} has nanosecond timestamps (write microseconds): {bad[:5]}"
            )
        else:
            todo.append(view)
    views = {}
    for view in todo:
        views[view.name] = _materialize_view(store, view, end=end)
        log.info("materialized %s: %s", view.name, views[view.name])
    return {
        "project": store.project,
        "end": end.isoformat(),
        "views": views,
        "skipped": skipped,
        "online_store": settings.feast.online_store,
        "registry": settings.feast.registry,
        "feature_store_yaml": str(settings.feast_dir / "feature_store.yaml"),
        "seconds": {
            "apply": round(applied - started, 3),
            "materialize": round(time.perf_counter() - applied, 3),
        },
    }
