"""Data sources: the lake tables Feast reads (profiles from the LLM job, stats from jobs/stats.py).

Locations come from the process settings (``jobs.settings.get_settings()``: ``KTREC_HOME`` and the profile),
so ``feast plan``, ``ktrec materialize`` and the DAG all read the same lake. Each path is the table's stable
symlink (jobs/lake.py), not a version folder: publishing a new version needs no ``feast apply``.

The embedded profile reads with DuckDB, which needs a file glob (``<table>/**/*.parquet``; ``**`` also matches
no folder, so flat and partitioned tables both work); the servers profile reads the folder with Spark.
"""

from __future__ import annotations

from feast import FileSource
from feast.data_source import DataSource

from jobs import lake
from jobs.settings import Settings, get_settings

# The settings these sources were built for; jobs.feature_store rebuilds the definitions when they differ.
SETTINGS: Settings = get_settings()

# Every lake table Feast reads carries these two columns (DESIGN.md data contracts).
EVENT_TIMESTAMP = "event_timestamp"
CREATED_TIMESTAMP = "created_timestamp"


def _lake_source(table: str, *, description: str, field_mapping: dict[str, str] | None = None) -> DataSource:
    """A source on lake table ``table``, of the kind the configured offline store reads."""
    folder = lake.table_path(SETTINGS, table)
    common = {
        "name": f"lake_{table}",  # distinct from the views named after the same features
        "timestamp_field": EVENT_TIMESTAMP,
        "created_timestamp_column": CREATED_TIMESTAMP,
        "field_mapping": field_mapping or {},
        "description": description,
        "tags": {"lake_table": table},
    }
    if SETTINGS.feast.offline_store == "spark":
        # Imported here: the Spark source pulls in pyspark, which the embedded profile never needs.
        from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

        return SparkSource(path=str(folder), file_format="parquet", **common)
    if SETTINGS.feast.offline_store == "duckdb":
        return FileSource(path=f"{folder}/**/*.parquet", **common)
    return FileSource(path=str(folder), **common)  # Dask reads a folder of parquet files.


# Profiles share one table layout for both entities; `entity_id` is renamed to the entity's join key.
user_profiles_source = _lake_source(
    lake.USER_PROFILES,
    description="LLM-written user profiles and their sentence embeddings, one row per user and as-of time.",
    field_mapping={"entity_id": "user_id"},
)

item_profiles_source = _lake_source(
    lake.ITEM_PROFILES,
    description="LLM-written item profiles and their sentence embeddings, one row per item and as-of time.",
    field_mapping={"entity_id": "item_id"},
)

# Stats tables already use the join keys as their id columns.
user_stats_source = _lake_source(
    lake.USER_STATS,
    description="Per-user interaction statistics computed by jobs/stats.py at each as-of time.",
)

item_stats_source = _lake_source(
    lake.ITEM_STATS,
    description="Per-item interaction statistics computed by jobs/stats.py at each as-of time.",
)
