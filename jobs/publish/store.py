"""The Feast feature store configured from settings: ``get_store(settings)``, a rendered feature_store.yaml.

Two profiles, picked by ``settings.feast``:

* embedded (``infra/local.yaml``): DuckDB offline store over the lake's parquet, SQLite online store and a
  file registry, all under ``settings.feast_dir``; nothing to start.
* servers (``infra/servers.yaml``): Spark offline store, Redis online store and a SQL registry on Postgres.

The config is built in code because every path derives from ``KTREC_HOME``; :func:`render_yaml` writes the
same config to ``<feast_dir>/feature_store.yaml`` so the ``feast`` CLI works too::

    feast -c features -f $KTREC_HOME/feast/feature_store.yaml plan     # parses features/repo.py
    feast -c $KTREC_HOME/feast serve -h 127.0.0.1 -p 6566               # reads only yaml + registry
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml
from feast import FeatureStore
from feast.repo_config import RepoConfig

from jobs.core import files
from jobs.core.settings import Settings

log = logging.getLogger(__name__)

FEATURE_STORE_YAML = "feature_store.yaml"


def config_dict(settings: Settings) -> dict[str, Any]:
    """The feature_store.yaml content for ``settings`` (absolute paths, no secrets beyond the URLs given)."""
    feast, home = settings.feast, settings.feast_dir
    if feast.registry == "sql":
        registry: Any = {
            "registry_type": "sql",
            "path": feast.registry_sql_url,
            "cache_ttl_seconds": 60,
            "sqlalchemy_config_kwargs": {"pool_pre_ping": True},
        }
    else:
        registry = {"registry_type": "file", "path": str(home / "registry.db"), "cache_ttl_seconds": 60}
    if feast.online_store == "redis":
        online: dict[str, Any] = {"type": "redis", "connection_string": feast.redis_connection}
    else:
        online = {"type": "sqlite", "path": str(home / "online.db")}
    offline: dict[str, Any] = {"type": feast.offline_store}
    if feast.offline_store == "spark":
        # Used only when no session is active (e.g. the `feast` CLI); jobs start theirs with jobs.core.spark.
        offline["spark_conf"] = {
            "spark.master": settings.spark.master,
            "spark.driver.host": "127.0.0.1",
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
            **settings.spark.conf,
        }
    return {
        "project": feast.project,
        "provider": "local",
        "registry": registry,
        "online_store": online,
        "offline_store": offline,
        "entity_key_serialization_version": 3,
    }


def repo_config(settings: Settings) -> RepoConfig:
    return RepoConfig(repo_path=settings.feast_dir, **config_dict(settings))


def render_yaml(settings: Settings) -> Path:
    """Write ``<feast_dir>/feature_store.yaml`` (atomically) and return its path."""
    header = f"# Rendered by jobs/publish/store.py from the '{settings.profile}' settings; edits are lost.\n"
    return files.write_text(settings.feast_dir / FEATURE_STORE_YAML,
                            header + yaml.safe_dump(config_dict(settings), sort_keys=False))


def definitions(settings: Settings) -> list[Any]:
    """The repository's objects (features/definitions.py), built for ``settings``' lake and offline store."""
    from features.definitions import definitions as build

    return build(settings.lake, settings.feast.offline_store)


def nanosecond_columns(settings: Settings, table: str) -> list[str]:
    """``file:column`` for each timestamp column stored in nanoseconds in lake table ``table``.

    The lake contract is microseconds: Spark (Feast's servers offline store) refuses nanosecond parquet, and
    pyarrow writes pandas timestamps as nanoseconds unless cast. Only the files' footers are read.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from jobs.core import lake
    folder = lake.table_path(settings, table)
    found = []
    for path in sorted(folder.rglob("*.parquet")) if folder.exists() else []:
        schema = pq.read_schema(path)
        found += [
            f"{path.relative_to(folder)}:{field.name}"
            for field in schema
            if pa.types.is_timestamp(field.type) and field.type.unit == "ns"
        ]
    return found


def ensure_registry_database(settings: Settings) -> None:
    """Create the SQL registry's Postgres database when it is missing (the tables Feast creates itself)."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.feast.registry_sql_url)
    if not url.drivername.startswith("postgresql"):
        return
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, dbname="postgres"
    )
    try:
        conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction.
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(url.database)))
                log.info("created Postgres database %s for the Feast registry", url.database)
    finally:
        conn.close()


def get_store(settings: Settings, *, apply: bool = True) -> FeatureStore:
    """A FeatureStore for ``settings``; with ``apply``, features/ objects are registered first."""
    objects = (
        definitions(settings) if apply else []
    )  # first: refuse a mismatched lake before writing anything
    render_yaml(settings)
    if settings.feast.registry == "sql":
        ensure_registry_database(settings)
    if settings.feast.offline_store == "spark":
        from jobs.core.spark import get_spark

        get_spark(settings, "ktrec-feast")  # Feast's Spark store uses the active session.
    store = FeatureStore(config=repo_config(settings))
    if apply:
        store.apply(objects)
    return store
