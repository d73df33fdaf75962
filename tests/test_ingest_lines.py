"""Quarantine line numbers when Spark cuts the input into many splits, over two files: each bad line keeps
its 1-based position in its own file (the numbering comes from per-split counts, jobs.ingest.quarantine)."""

from __future__ import annotations

from pathlib import Path

from ingest_helpers import run, table, write

from jobs.core import lake

T0 = 1_700_000_000
HEADER = "user_id,item_id,rating,timestamp\n"


def log_file(folder: Path, name: str, n: int, bad_lines: set[int]) -> Path:
    """``n`` data lines after the header; the lines numbered in ``bad_lines`` (header = line 1) rate 9."""
    body = "".join(f"u{k},i{k % 7},{9 if k + 1 in bad_lines else 3},{T0 + k}\n" for k in range(1, n + 1))
    return write(folder, name, HEADER + body)


def test_line_numbers_across_splits_and_files(spark, settings, tmp_path):
    bad = {"a.csv": {5, 17, 33, 41}, "b.csv": {2, 29, 31}}
    log_file(tmp_path / "logs", "a.csv", 40, bad["a.csv"])
    log_file(tmp_path / "logs", "b.csv", 30, bad["b.csv"])
    # ~250-byte splits: each ~1 KB file is read as several splits, lines cut at split boundaries included.
    old = {k: spark.conf.get(k) for k in ("spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes")}
    spark.conf.set("spark.sql.files.maxPartitionBytes", "250")
    spark.conf.set("spark.sql.files.openCostInBytes", "0")
    try:
        summary = run(spark, settings, tmp_path / "logs")
        splits = spark.read.text(str(tmp_path / "logs")).rdd.getNumPartitions()
    finally:
        for key, value in old.items():
            spark.conf.set(key, value)
    assert splits >= 6
    assert summary["rows_read"] == 70 and summary["rows_quarantined"] == 7
    got = {(Path(r["source_file"]).name, r["line_number"])
           for r in table(spark, settings, lake.QUARANTINE).select("source_file", "line_number").collect()}
    assert got == {(name, line) for name, lines in bad.items() for line in lines}
