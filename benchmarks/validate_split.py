"""Timings of the GE gate and the splits on MovieLens 100K (ingested by the real ingest job).

Run: ``PYTHONPATH=. python -m benchmarks.validate_split [--repeats 2]``; writes
``benchmarks/reports/validate_split.{json,md}``. Uses a throwaway KTREC_HOME and local[2] Spark.

The gate runs twice per engine: GE's pandas engine (tables collected with Arrow, the default up to
``validation.pandas_max_rows``) and GE's Spark engine (``pandas_max_rows=0``); the first run of the
process also pays Spark's and GE's warm-up. The 1-minute load average is recorded next to the figures
because the development machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import date
from pathlib import Path

from jobs.core.settings import DEFAULT_DATASET, REPO_ROOT, Settings

REPORTS = REPO_ROOT / "benchmarks" / "reports"
BATCH = date(2024, 3, 1)


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return round(time.perf_counter() - started, 2), value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="gate runs per engine")
    args = parser.parse_args(argv)
    from jobs.core.spark import get_spark
    from jobs.ingest import batch as ingest
    from jobs.split import table as split
    from jobs.validate import gate as validate

    settings = Settings(home=Path(tempfile.mkdtemp(prefix="ktrec-bench-validate-")),
                        spark={"master": "local[2]", "shuffle_partitions": 4})
    spark = get_spark(settings, "ktrec-bench-validate")
    seconds: dict[str, object] = {"load_1min": os.getloadavg()[0]}
    seconds["ingest"], _ = timed(ingest.run, settings, source=DEFAULT_DATASET, batch_date=BATCH, spark=spark)
    for engine, limit in (("pandas", settings.validation.pandas_max_rows), ("spark", 0)):
        settings.validation.pandas_max_rows = limit
        seconds[f"validate_{engine}"] = [timed(validate.run, settings, batch_date=BATCH)[0]
                                         for _ in range(args.repeats)]
    counts = {}
    for strategy in ("loo", "temporal", "random"):
        seconds[f"split_{strategy}"], result = timed(split.run, settings, strategy=strategy)
        counts[strategy] = result["meta"]["counts"]
    seconds["split_loo_kcore10_min4"], _ = timed(
        split.run, settings, strategy="loo", name="loo_k10", k_core=10, min_rating=4.0
    )
    seconds["load_1min_end"] = os.getloadavg()[0]
    report = {"benchmark": "validate_split", "dataset": "ml-100k", "spark": "local[2]", "seconds": seconds,
              "split_counts": counts}
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "validate_split.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["# GE gate and splits on ml-100k", "", "| step | seconds |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in seconds.items()]
    lines += ["", "| split | " + " | ".join(next(iter(counts.values()))) + " |",
              "|---" * (1 + len(next(iter(counts.values())))) + "|"]
    lines += [f"| {s} | " + " | ".join(str(v) for v in c.values()) + " |" for s, c in counts.items()]
    (REPORTS / "validate_split.md").write_text("\n".join(lines) + "\n")
    print(json.dumps(report))
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
