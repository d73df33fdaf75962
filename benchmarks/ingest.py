"""Ingest throughput: the Spark job (jobs.ingest.batch.run) beside a plain pandas version of the same transform.

    python -m benchmarks.ingest [--sizes 1e6,5e6,20e6] [--bad-fraction 0.002] [--spark-master local[2]]

For each size a synthetic event log (CSV; ~0.2 % bad rows of several kinds and ~0.5 % exact duplicates) is
generated in a temporary folder. Each engine then runs in its own subprocess on the same file: parse,
validate, quarantine with line numbers, dedupe on (user_id, item_id, event_ts), write Parquet partitioned
by event_date. Reported: wall time of the ingest itself (Spark session start-up excluded and given apart),
rows/s, peak RSS (Spark: the Python driver plus its JVM, sampled every 0.1 s; pandas: the process's
maximum RSS). Writes benchmarks/reports/ingest.json and ingest.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

REPORTS = Path(__file__).resolve().parent / "reports"
BATCH_DATE = date(2024, 1, 1)
T_START = 1672531200  # 2023-01-01T00:00:00Z; a year of events
YEAR_S = 365 * 86400
BAD_KINDS = [
    "u{i},i{i},4",  # wrong column count
    ",i{i},4,1680000000",  # missing user id
    "u{i},i{i},good,1680000000",  # non-numeric rating
    "u{i},i{i},7,1680000000",  # rating out of range
    "u{i},i{i},4,soon",  # bad timestamp
    "u{i},i{i},4,1900000000",  # far future (2030)
]
log = logging.getLogger("benchmarks.ingest")


def generate(path: Path, n: int, *, bad_fraction: float, seed: int = 7) -> dict:
    """Write an n-line CSV log (plus header) in 1 M-row chunks; returns what was planted."""
    rng = np.random.default_rng(seed)
    chunk, bad_total, written = 1_000_000, 0, 0
    with open(path, "wb") as out:
        out.write(b"user_id,item_id,rating,timestamp\n")
        while written < n:
            m = min(chunk, n - written)
            n_bad = int(round(m * bad_fraction))
            n_good = m - n_bad
            users = rng.integers(0, max(n // 40, 1), n_good)
            items = rng.integers(0, max(n // 400, 1), n_good)
            ts = T_START + rng.integers(0, YEAR_S, n_good)
            ratings = rng.integers(1, 11, n_good) / 2
            dup = rng.random(n_good) < 0.005  # exact duplicates of the previous row
            idx = np.arange(n_good) - dup
            idx[0] = 0
            table = pa.table({"u": users[idx], "i": items[idx], "r": ratings[idx], "t": ts[idx]})
            buf = pa.BufferOutputStream()
            pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False))
            out.write(buf.getvalue().to_pybytes())
            out.write("".join(BAD_KINDS[k % len(BAD_KINDS)].format(i=k) + "\n" for k in range(n_bad)).encode())
            bad_total += n_bad
            written += m
    return {"rows": n, "bad": bad_total, "bytes": path.stat().st_size}


class PeakRss:
    """Samples the RSS of this process plus its children (Spark's JVM) in a background thread."""

    def __init__(self, interval: float = 0.1):
        import psutil

        self.proc, self.interval, self.peak = psutil.Process(), interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        total = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except Exception:  # a child may exit between listing and reading
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            time.sleep(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


def spark_worker(csv_path: Path, home: Path, master: str, partitions: int) -> dict:
    from jobs.core.settings import Settings
    from jobs.core.spark import get_spark
    from jobs.ingest import batch as ingest

    settings = Settings(home=home, spark={"master": master, "shuffle_partitions": partitions,
                                          "driver_memory": "4g"})
    with PeakRss() as rss:
        t0 = time.perf_counter()
        spark = get_spark(settings, "ktrec-bench")
        startup = time.perf_counter() - t0
        t1 = time.perf_counter()
        summary = ingest.run(settings, source=csv_path, batch_date=BATCH_DATE, spark=spark)
        seconds = time.perf_counter() - t1
    spark.stop()
    return {"seconds": seconds, "startup_s": startup, "peak_rss_mb": rss.peak / 2**20,
            "rows_valid": summary["rows_valid"], "rows_quarantined": summary["rows_quarantined"],
            "rows_written": summary["interactions"], "partitions": len(summary["partitions_written"])}


def pandas_worker(csv_path: Path, out_dir: Path) -> dict:
    import resource

    from benchmarks.ingest_pandas import ingest_pandas

    t0 = time.perf_counter()
    result = ingest_pandas(csv_path, out_dir, batch_date=BATCH_DATE)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return result | {"seconds": seconds, "peak_rss_mb": peak / 2**20}


def _subprocess(args: list[str], timeout: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-m", "benchmarks.ingest", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench(sizes: list[int], *, bad_fraction: float, master: str, partitions: int, timeout: int) -> dict:
    import psutil

    results = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="ktrec-bench-") as tmp:
            csv_path = Path(tmp) / "events.csv"
            t0 = time.perf_counter()
            planted = generate(csv_path, n, bad_fraction=bad_fraction)
            log.info("generated %d rows (%.0f MB) in %.1fs", n, planted["bytes"] / 1e6, time.perf_counter() - t0)
            load_before = os.getloadavg()[0]
            spark = _subprocess(["--worker", "spark", "--csv", str(csv_path), "--home", f"{tmp}/home",
                                 "--spark-master", master, "--partitions", str(partitions)], timeout)
            pandas = _subprocess(["--worker", "pandas", "--csv", str(csv_path), "--home", f"{tmp}/pandas"], timeout)
            for engine in (spark, pandas):
                engine["rows_per_s"] = n / engine["seconds"]
            results.append({"rows": n, "csv_mb": planted["bytes"] / 1e6, "planted_bad": planted["bad"],
                            "load_avg_1m_before": load_before, "load_avg_1m_after": os.getloadavg()[0],
                            "spark": spark, "pandas": pandas})
            log.info("%d rows: spark %.1fs (%.0f rows/s), pandas %.1fs", n, spark["seconds"],
                     spark["rows_per_s"], pandas["seconds"])
    return {
        "benchmark": "ingest", "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
                    "python": platform.python_version(), "spark_master": master, "shuffle_partitions": partitions},
        "bad_fraction": bad_fraction, "results": results,
    }


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# Ingest benchmark", "",
        f"{report['created']}; {m['cpus']} CPUs, {m['memory_gb']} GiB; Spark `{m['spark_master']}`, "
        f"{m['shuffle_partitions']} shuffle partitions; bad rows {report['bad_fraction']:.2%}. "
        "Same CSV, same transform (parse, validate, quarantine with line numbers, dedupe, partitioned "
        "Parquet). Wall time excludes Spark session start-up (given apart). Load average = other work on "
        "the shared machine.", "",
        "| events | CSV MB | Spark s | Spark rows/s | Spark peak RSS MB | start-up s | pandas s | pandas rows/s "
        "| pandas peak RSS MB | load 1m |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        s, p = r["spark"], r["pandas"]
        lines.append(
            f"| {r['rows']:,} | {r['csv_mb']:.0f} | {s['seconds']:.1f} | {s['rows_per_s']:,.0f} | "
            f"{s['peak_rss_mb']:,.0f} | {s['startup_s']:.1f} | {p['seconds']:.1f} | {p['rows_per_s']:,.0f} | "
            f"{p['peak_rss_mb']:,.0f} | {r['load_avg_1m_before']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,5e6,20e6")
    parser.add_argument("--bad-fraction", type=float, default=0.002)
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--timeout", type=int, default=3600)
    parser.add_argument("--worker", choices=["spark", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.worker == "spark":
        sys.stdout.write(json.dumps(spark_worker(args.csv, args.home, args.spark_master, args.partitions)) + "\n")
        return 0
    if args.worker == "pandas":
        sys.stdout.write(json.dumps(pandas_worker(args.csv, args.home)) + "\n")
        return 0
    sizes = [int(float(s)) for s in args.sizes.split(",") if s.strip()]
    report = bench(sizes, bad_fraction=args.bad_fraction, master=args.spark_master, partitions=args.partitions,
                   timeout=args.timeout)
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "ingest.json").write_text(json.dumps(report, indent=2) + "\n")
    (REPORTS / "ingest.md").write_text(markdown(report))
    sys.stdout.write(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
