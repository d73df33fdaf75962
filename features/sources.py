"""Data sources: the lake tables Feast reads (profiles from the LLM job, stats from jobs/publish/stats.py).

:func:`lake_sources` builds them for a lake folder and an offline store kind, passed in by the caller
(``jobs.publish.store`` from the settings, ``repo.py`` from the environment for the ``feast`` CLI). Each path
is the table's stable symlink (jobs/core/lake.py), not a version folder: publishing a new version needs no
``feast apply``.

The embedded profile reads with DuckDB, which needs a file glob (``<table>/**/*.parquet``; ``**`` also matches
no folder, so flat and partitioned tables both work); the servers profile reads the folder with Spark.
"""

from __future__ import annotations

from pathlib import Path

from feast import FileSource
from feast.data_source import DataSource

from jobs.core import lake

# Every lake table Feast reads carries these two columns (DESIGN.md data contracts).
EVENT_TIMESTAMP = "event_timestamp"
CREATED_TIMESTAMP = "created_timestamp"


def _lake_source(
    root: Path, offline_store: str, table: str, *, description: str, field_mapping: dict[str, str] | None = None
) -> DataSource:
    """A source on lake table ``table`` under ``root``, of the kind ``offline_store`` reads."""
    folder = Path(root) / table
    common = {
        "name": f"lake_{table}",  # distinct from the views named after the same features
        "timestamp_field": EVENT_TIMESTAMP,
        "created_timestamp_column": CREATED_TIMESTAMP,
        "field_mapping": field_mapping or {},
        "description": description,
        "tags": {"lake_table": table},
    }
    if offline_store == "spark":
        # Imported here: the Spark source pulls in pyspark, which the embedded profile never needs.
        from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

        return SparkSource(path=str(folder), file_format="parquet", **common)
    if offline_store == "duckdb":
        return FileSource(path=f"{folder}/**/*.parquet", **common)
    return FileSource(path=str(folder), **common)  # Dask reads a folder of parquet files.


def lake_sources(root: Path, offline_store: str) -> dict[str, DataSource]:
    """The four sources, by lake table name, on the lake at ``root``."""
    # Profiles share one table layout for both entities; `entity_id` is renamed to the entity's join key.
    return {
        lake.USER_PROFILES: _lake_source(
            root, offline_store, lake.USER_PROFILES, field_mapping={"entity_id": "user_id"},
            description="LLM-written user profiles and their sentence embeddings, one row per user and as-of time.",
        ),
        lake.ITEM_PROFILES: _lake_source(
            root, offline_store, lake.ITEM_PROFILES, field_mapping={"entity_id": "item_id"},
            description="LLM-written item profiles and their sentence embeddings, one row per item and as-of time.",
        ),
        # Stats tables already use the join keys as their id columns.
        lake.USER_STATS: _lake_source(
            root, offline_store, lake.USER_STATS,
            description="Per-user interaction statistics computed by jobs/publish/stats.py at each as-of time.",
        ),
        lake.ITEM_STATS: _lake_source(
            root, offline_store, lake.ITEM_STATS,
            description="Per-item interaction statistics computed by jobs/publish/stats.py at each as-of time.",
        ),
    }
