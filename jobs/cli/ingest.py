"""The ingest stage on the command line: ``ktrec ingest`` reads a dataset folder or a log file into the
lake with Spark (partitioned by event_date, bad rows quarantined), and ``ktrec datasets download`` fetches
a public dataset (checksum verified) for it to read. A missing source, an unknown format or a bad ``--map``
exits 2; a failed download keeps its historical exit code 1.
"""

from __future__ import annotations

from pathlib import Path

import typer

from jobs.cli.common import JsonOpt, emit, known_errors, parse_time, spinner, utcnow


def parse_map(text: str | None) -> dict[str, str]:
    """``user_id=uid,item_id=iid`` → {"user_id": "uid", "item_id": "iid"}."""
    if not text:
        return {}
    pairs = [p.split("=", 1) for p in text.split(",") if p.strip()]
    if any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
        raise ValueError(f"--map expects FIELD=COLUMN pairs separated by commas, got {text!r}")
    return {k.strip(): v.strip() for k, v in pairs}


@known_errors()
def ingest(
    source: Path = typer.Option(..., "--source", help="Dataset folder or log file to ingest."),
    fmt: str | None = typer.Option(
        None, "--format", help="ml100k|ml1m|mlcsv|recbole|csv|jsonl|parquet (default: detected)."),
    batch_date: str | None = typer.Option(
        None, "--batch-date", help="Logical date of the batch, YYYY-MM-DD (default: today, UTC)."),
    column_map: str | None = typer.Option(
        None, "--map", help="Column mapping for generic logs: user_id=uid,item_id=iid,timestamp=ts,rating=r."),
    as_json: bool = JsonOpt,
) -> None:
    """Ingest interaction logs into the lake with Spark (partitioned by event_date, bad rows quarantined)."""
    from jobs.core.settings import get_settings
    from jobs.ingest.batch import run

    day = (parse_time(batch_date, "--batch-date", day=True) if batch_date else utcnow()).date()
    mapping = parse_map(column_map)
    with spinner(f"ingesting {source} (batch {day})"):
        summary = run(get_settings(), source=source, fmt=fmt, batch_date=day, column_map=mapping)
    emit(summary, as_json)


datasets_app = typer.Typer(help="Public datasets ktrec knows how to fetch (needs network).", no_args_is_help=True)


@datasets_app.command("download")
@known_errors(KeyError, code=1)  # exit 1 on a failed download: tests/test_ingest_ops.py pins it
def datasets_download(
    name: str = typer.Argument(..., help="ml-100k | ml-1m | ml-latest-small"),
    dest: Path = typer.Option(..., "--dest", help="Folder to unpack into (creates DEST/NAME)."),
    url: str | None = typer.Option(None, "--url", help="Mirror URL of the zip archive."),
    as_json: bool = JsonOpt,
) -> None:
    """Download a public dataset, check its MD5 and unpack it (fails clearly without network)."""
    from jobs.ingest.datasets import download

    path = download(name, dest=dest, url=url)
    emit({"dataset": name, "path": str(path)}, as_json)
