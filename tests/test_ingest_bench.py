"""benchmarks.ingest on a tiny log: every engine keeps and quarantines the rows a by-hand reading of the file
says, and the Spark event log shows ktrec's ingest reading its input once, in a bounded number of jobs."""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime

import pytest

from benchmarks import ingest as bench

N, BAD_FRACTION = 3000, 0.01
# The benchmark's batch date is 2024-01-01 and a day of slack is allowed: 2024-01-03T00:00Z is the future.
FUTURE = datetime(2024, 1, 3, tzinfo=UTC).timestamp()
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC).timestamp()
# ktrec's ingest ran 19 Spark jobs and read its input twice before it was restructured (issue 15).
MAX_JOBS = 14


def by_hand(path) -> tuple[int, int]:
    """(distinct valid (user, item, ts) keys, bad lines) from the CSV with the rules written out."""
    keys, bad = set(), 0
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        for fields in reader:
            try:
                user, item, rating, ts = fields
                ok = bool(user) and bool(item) and 0 <= float(rating) <= 5 and EARLIEST <= float(ts) < FUTURE
                ok = ok and math.isfinite(float(ts))
            except ValueError:  # wrong field count or a non-number
                ok = False
            if ok:
                keys.add((user, item, float(ts)))
            else:
                bad += 1
    return len(keys), bad


@pytest.mark.slow
def test_engines_agree_with_the_file_and_ktrec_scans_once(tmp_path):
    planted = bench.generate(tmp_path / "events.csv", N, bad_fraction=BAD_FRACTION)
    kept, bad = by_hand(tmp_path / "events.csv")
    assert (kept, bad) == (planted["kept"], planted["bad"]) and bad == 30 and kept < N - bad  # dups planted

    report = bench.bench([N], engines=["ktrec", "minimal", "duckdb", "pandas"], bad_fraction=BAD_FRACTION,
                         master="local[2]", partitions=2, timeout=600, repeats={N: 1}, tmp_root=str(tmp_path))
    engines = report["results"][0]["engines"]
    for name, result in engines.items():
        assert (result["rows_written"], result["rows_quarantined"]) == (kept, bad), name
        assert result["counts_ok"], name

    ktrec, minimal = engines["ktrec"]["runs"][0]["spark"], engines["minimal"]["runs"][0]["spark"]
    assert ktrec["source_scan_stages"] == 1 and ktrec["source_passes"] == 1.0
    assert ktrec["jobs"] <= MAX_JOBS, ktrec["by_job"]
    # The reference writes its two outputs with two actions: the metric does see a second scan.
    assert minimal["source_passes"] == 2.0
    assert "## Spark `local[2]`" in bench.markdown(report)
