"""Small helpers shared by the ingest tests: write fixture files, read lake tables back."""

from __future__ import annotations

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
