"""Small helpers shared by the ingest tests: write fixture files, read lake tables back."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

from jobs.core import lake
from jobs.ingest import batch as ingest

DAY = date(2024, 3, 1)


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def run(spark, settings, source: Path, *, batch_date: date = DAY, **kwargs) -> dict:
    return ingest.run(settings, source=source, batch_date=batch_date, spark=spark, **kwargs)


def table(spark, settings, name: str):
    return spark.read.parquet(str(lake.table_path(settings, name)))


def rows(spark, settings, name: str = lake.INTERACTIONS, columns: list[str] | None = None) -> list[tuple]:
    df = table(spark, settings, name)
    cols = columns or [c for c in lake.INTERACTION_COLUMNS if c in df.columns]
    return sorted(tuple(r) for r in df.select(*cols).collect())


def partition_inodes(settings, date_text: str) -> dict[str, int]:
    folder = lake.table_path(settings, lake.INTERACTIONS) / f"event_date={date_text}"
    return {p.name: os.stat(p).st_ino for p in folder.iterdir() if p.suffix == ".parquet"}


TABLES = (lake.INTERACTIONS, lake.ITEMS, lake.USERS, lake.QUARANTINE)
TIMING = ("seconds",)  # the manifest's only field that may differ between two runs of one batch


def manifests(settings) -> dict[str, dict]:
    """Every batch manifest by file name, without its timing fields."""
    folder = lake.table_path(settings, lake.INGEST_MANIFESTS)
    found = sorted(folder.glob("*.json")) if folder.is_dir() else []
    return {p.name: {k: v for k, v in json.loads(p.read_text()).items() if k not in TIMING} for p in found}


def lake_state(spark, settings) -> dict:
    """Every ingest table row for row (all columns, sorted) plus the manifests: what a reader sees."""
    state: dict = {"manifests": manifests(settings)}
    for name in TABLES:
        if lake.exists(settings, name):
            df = table(spark, settings, name)
            state[name] = sorted((tuple(r) for r in df.select(*sorted(df.columns)).collect()), key=repr)
    return state
