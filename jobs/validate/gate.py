"""The Great Expectations gate between ingest and everything downstream (``ktrec validate``).

``run`` validates the lake's ``interactions``, ``items`` and ``users`` tables and a one-row ``batch`` table
of cross-table facts (orphan interactions counted with Spark anti-joins, the quarantine ratio read from
the batch's ingest manifest). Every suite runs, Data Docs are rebuilt under ``settings.data_docs``, and only
then a failure raises :class:`ValidationFailed` listing every failed expectation, so one run shows all that
is wrong with a batch. ``validate_profiles`` is the same gate for ``profiles_user`` / ``profiles_item``.
Suites live in jobs/validate/expectations.py, GE plumbing in jobs/validate/gx.py.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import date, datetime, timedelta
from typing import Any

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from jobs.core import lake
from jobs.core.settings import Settings
from jobs.core.spark import get_spark, read_table
from jobs.ingest.write import manifest_path
from jobs.validate import expectations as ex
from jobs.validate.gx import (
    PANDAS,
    SPARK,
    Failure,
    ValidationFailed,
    build_context,
    build_docs,
    failures,
    new_run_id,
    validate,
)

log = logging.getLogger(__name__)

__all__ = ["ValidationFailed", "Failure", "run", "validate_profiles"]


def run(settings: Settings, *, batch_date: date | None = None) -> dict[str, Any]:
    """Validate the lake after ingesting ``batch_date`` (default: the latest ingested batch)."""
    started = time.perf_counter()
    spark = get_spark(settings)
    batch_date, manifest = load_manifest(settings, batch_date)
    names = (lake.INTERACTIONS, lake.ITEMS, lake.USERS)
    tables = {name: _read(spark, settings, name).cache() for name in names}
    try:
        facts = batch_facts(tables, manifest=manifest)
        checks = _lake_checks(settings, tables, batch_date=batch_date)
        checks.append((ex.batch_suite(max_quarantine_ratio=settings.validation.max_quarantine_ratio),
                       spark.createDataFrame([facts]), PANDAS))
        summary = _gate(settings, checks, title=f"lake validation of batch {batch_date}",
                        label=f"lake-{batch_date}")
    finally:
        for frame in tables.values():
            frame.unpersist()
    return summary | {
        "batch_date": batch_date.isoformat(), "facts": facts,
        "seconds": round(time.perf_counter() - started, 2),
    }


def _lake_checks(settings: Settings, tables: dict[str, DataFrame], *, batch_date: date) -> list:
    v, ingest = settings.validation, settings.ingest
    # Events may be stamped up to the end of batch_date + max_future_days (ingest quarantines later ones).
    latest = datetime.combine(batch_date + timedelta(days=ingest.max_future_days + 1), datetime.min.time())
    value_suites = {
        lake.INTERACTIONS: ex.interactions_suite(
            min_rating=ingest.min_rating, max_rating=ingest.max_rating,
            earliest=datetime.fromisoformat(ingest.earliest_event), latest=latest,
            min_rows=v.min_interactions,
        ),
        lake.ITEMS: ex.catalog_suite(name=lake.ITEMS, id_column="item_id", min_rows=v.min_items),
        lake.USERS: ex.catalog_suite(name=lake.USERS, id_column="user_id", min_rows=v.min_users),
    }
    schemas = {lake.INTERACTIONS: lake.INTERACTIONS_SCHEMA, lake.ITEMS: lake.ITEMS_SCHEMA,
               lake.USERS: lake.USERS_SCHEMA}
    return [check for name, frame in tables.items()
            for check in _table_checks(settings, name, frame, schemas[name], value_suites[name])]


def validate_profiles(settings: Settings, *, entity: str) -> dict[str, Any]:
    """Validate every stored version of the ``entity`` ("user" or "item") profile table."""
    name = lake.profile_table(entity)
    started = time.perf_counter()
    spark = get_spark(settings)
    table = _read(spark, settings, name).cache()
    try:
        frame = table.withColumn(ex.EMBEDDING_DIM, F.size("embedding"))
        suite = ex.profile_suite(name=name, min_rows=settings.validation.min_profiles)
        checks = _table_checks(settings, name, table, lake.PROFILES_SCHEMA, suite, frame=frame)
        summary = _gate(settings, checks, title=f"validation of {name}", label=name)
    finally:
        table.unpersist()
    return summary | {"table": name, "seconds": round(time.perf_counter() - started, 2)}


def _table_checks(
    settings: Settings, name: str, table: DataFrame, ddl: str, suite: Any, *, frame: DataFrame | None = None
) -> list[tuple[Any, DataFrame, str]]:
    """The schema suite on Spark, then the value suite on the engine the table's size calls for."""
    frame = table if frame is None else frame
    engine = PANDAS if table.count() <= settings.validation.pandas_max_rows else SPARK
    return [(ex.schema_suite(table=name, schema=_schema(ddl)), table, SPARK), (suite, frame, engine)]


def load_manifest(settings: Settings, batch_date: date | None) -> tuple[date, dict[str, Any]]:
    """The ingest manifest of ``batch_date``, or of the latest batch when none is given."""
    if batch_date is None:
        folder = manifest_path(settings, "any").parent  # the folder holding every batch's manifest
        found = sorted(folder.glob("*.json")) if folder.is_dir() else []
        if not found:
            raise ValidationFailed(f"no ingest manifest under {folder}: run `ktrec ingest` first")
        batch_date = date.fromisoformat(found[-1].stem)
    path = manifest_path(settings, batch_date)
    if not path.is_file():
        raise ValidationFailed(f"no ingest manifest for batch {batch_date} at {path}: was it ingested?")
    return batch_date, json.loads(path.read_text())


def batch_facts(tables: dict[str, DataFrame], *, manifest: dict[str, Any]) -> dict[str, float | int]:
    """Orphan interactions (item or user missing from its table) and the batch's quarantine ratio."""
    # Null ids are the not-null expectations' business; counting them as orphans too would double-report.
    interactions = tables[lake.INTERACTIONS].select("user_id", "item_id")
    orphan_items = interactions.where(F.col("item_id").isNotNull()).join(
        tables[lake.ITEMS].select("item_id"), on="item_id", how="left_anti"
    )
    orphan_users = interactions.where(F.col("user_id").isNotNull()).join(
        tables[lake.USERS].select("user_id"), on="user_id", how="left_anti"
    )
    rows_read = int(manifest.get("rows_read") or 0)
    quarantined = int(manifest.get("rows_quarantined") or 0)
    return {
        ex.ORPHAN_ITEMS: orphan_items.count(),
        ex.ORPHAN_USERS: orphan_users.count(),
        ex.QUARANTINE_RATIO: quarantined / rows_read if rows_read else 0.0,
    }


def _gate(settings: Settings, checks: list, *, title: str, label: str) -> dict[str, Any]:
    """Run every suite, build Data Docs, then raise if anything failed."""
    context = build_context(settings)
    run_id = new_run_id(label)
    results = [validate(context, suite=suite, frame=frame, engine=engine, run_id=run_id)
               for suite, frame, engine in checks]
    docs = build_docs(context, settings, run_id=run_id)
    found: list[Failure] = [f for result in results for f in failures(result)]
    if found:
        raise ValidationFailed.from_failures(title, found, docs)
    suites = {
        r.suite_name: {"success": r.success, "evaluated": r.statistics["evaluated_expectations"]}
        for r in results
    }
    return {"success": True, "suites": suites, "data_docs": str(docs)}


def _read(spark: SparkSession, settings: Settings, name: str) -> DataFrame:
    try:
        return read_table(spark, settings, name)
    except FileNotFoundError as err:
        raise ValidationFailed(f"{err}: nothing to validate") from err


def _schema(ddl: str) -> StructType:
    schema = StructType.fromDDL(ddl)
    assert isinstance(schema, StructType), ddl
    return schema
