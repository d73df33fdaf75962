"""Ingest throughput: ktrec's Spark job beside a minimal Spark job, DuckDB and pandas, on the same file.

    python -m benchmarks.ingest [--sizes 1e6,5e6,20e6] [--engines ktrec,minimal,duckdb,pandas] [--repeats 5e6:3]
                                [--spark-master local[2] | --cluster-workers 2] [--report ingest]

For each size a synthetic event log (CSV; ~0.2 % bad rows of several kinds and ~0.5 % exact duplicates) is
generated once in a temporary folder; then each engine runs in its own subprocess on that file, the engines
interleaved per repeat so that they share the machine's conditions:

* ``ktrec``: jobs.ingest.batch.run (strict parsing, quarantine with line numbers and file digests,
  dedupe, partitioned Parquet, items/users, manifest, the atomic commit) on a fresh lake;
* ``minimal``: benchmarks.ingest_minimal, the same transform hand-written in Spark (the reference);
* ``duckdb``: benchmarks.ingest_duckdb, the single-machine reference; ``pandas``: benchmarks.ingest_pandas.

Reported: wall time of the transform (Spark session start-up excluded and given apart), rows/s, CPU seconds
of the engine's processes, peak RSS (the process plus its children, i.e. Spark's JVM, sampled every 0.1 s),
the kept and quarantined counts checked against what the generator planted, the load average at each run,
and from each Spark run's event log (benchmarks.spark_eventlog) its jobs, stages, passes over the input
and time per job. ``--cluster-workers N`` starts a standalone master and N one-core workers on loopback
and runs the Spark engines there. Writes benchmarks/reports/<report>.json and .md, after every size.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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
    chunk, bad_total, written, keys = 1_000_000, 0, 0, []
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
            keys.append((users[idx] * (n // 400 + 1) + items[idx]) * YEAR_S + (ts[idx] - T_START))
    # The rows a correct dedupe on (user_id, item_id, event_ts) keeps, from the generator's own arrays.
    distinct = int(np.unique(np.concatenate(keys)).size)
    return {"rows": n, "bad": bad_total, "kept": distinct, "bytes": path.stat().st_size}


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

    def cpu_seconds(self) -> float:
        """User + system CPU of this process and its children so far (a measure the machine's load inflates
        less than wall time)."""
        total = 0.0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except Exception:
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


def _spark_settings(home: Path, master: str, partitions: int, conf: dict[str, str]):
    from jobs.core.settings import Settings

    memory = os.environ.get("KTREC_BENCH_DRIVER_MEMORY", "4g")
    return Settings(home=home, spark={"master": master, "shuffle_partitions": partitions, "driver_memory": memory,
                                      "conf": conf})


def _parquet_rows(folder: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in folder.rglob("*.parquet"))


def spark_worker(engine: str, csv_path: Path, home: Path, master: str, partitions: int, conf: dict) -> dict:
    """``ktrec``: jobs.ingest.batch.run on a fresh lake; ``minimal``: benchmarks.ingest_minimal. Same session
    options for both, the event log on (benchmarks.spark_eventlog reads where the time went)."""
    from benchmarks.spark_eventlog import eventlog_conf, summarize
    from jobs.core.spark import get_spark

    events = home / "eventlog"
    settings = _spark_settings(home, master, partitions, {**conf, **eventlog_conf(events)})
    with PeakRss() as rss:
        t0 = time.perf_counter()
        spark = get_spark(settings, f"bench-{engine}")
        startup = time.perf_counter() - t0
        t1, cpu0 = time.perf_counter(), rss.cpu_seconds()
        if engine == "ktrec":
            from jobs.ingest import batch as ingest

            summary = ingest.run(settings, source=csv_path, batch_date=BATCH_DATE, spark=spark)
            seconds = time.perf_counter() - t1
            counts = {"rows_written": summary["interactions"], "rows_quarantined": summary["rows_quarantined"],
                      "partitions": len(summary["partitions_written"])}
        else:
            from benchmarks.ingest_minimal import ingest_minimal

            ingest_minimal(spark, csv_path, home / "minimal", batch_date=BATCH_DATE)
            seconds = time.perf_counter() - t1
            counts = {"rows_written": _parquet_rows(home / "minimal" / "interactions"),
                      "rows_quarantined": _parquet_rows(home / "minimal" / "bad"),
                      "partitions": len(list((home / "minimal" / "interactions").glob("event_date=*")))}
        cpu = rss.cpu_seconds() - cpu0
    spark.stop()
    return counts | {"seconds": seconds, "cpu_s": cpu, "startup_s": startup, "peak_rss_mb": rss.peak / 2**20,
                     "spark": summarize(events, source_bytes=csv_path.stat().st_size)}


def local_worker(engine: str, csv_path: Path, out_dir: Path, threads: int) -> dict:
    """``pandas`` (benchmarks.ingest_pandas) or ``duckdb`` (benchmarks.ingest_duckdb), in this process."""
    with PeakRss() as rss:
        t0, cpu0 = time.perf_counter(), rss.cpu_seconds()
        if engine == "pandas":
            from benchmarks.ingest_pandas import ingest_pandas

            result = ingest_pandas(csv_path, out_dir, batch_date=BATCH_DATE)
        else:
            from benchmarks.ingest_duckdb import ingest_duckdb

            result = ingest_duckdb(csv_path, out_dir, batch_date=BATCH_DATE, threads=threads)
        seconds, cpu = time.perf_counter() - t0, rss.cpu_seconds() - cpu0
    return {"rows_written": result["rows_written"], "rows_quarantined": result["rows_quarantined"],
            "seconds": seconds, "cpu_s": cpu, "peak_rss_mb": rss.peak / 2**20}


def _subprocess(args: list[str], timeout: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-m", "benchmarks.ingest", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_engine(engine: str, csv_path: Path, work: Path, *, master: str, partitions: int, conf: dict,
               timeout: int) -> dict:
    """One engine on ``csv_path`` in its own subprocess (a fresh JVM / heap each time)."""
    args = ["--worker", engine, "--csv", str(csv_path), "--home", str(work), "--spark-master", master,
            "--partitions", str(partitions), "--spark-conf", json.dumps(conf)]
    load = os.getloadavg()[0]
    result = _subprocess(args, timeout) | {"load_avg_1m": load}
    return result


def _median(runs: list[dict], key: str) -> float:
    return float(np.median([r[key] for r in runs]))


def engine_summary(runs: list[dict], n: int, expected: dict) -> dict:
    """Medians over the repeats, the count check against the planted figures, and the raw runs."""
    seconds = _median(runs, "seconds")
    counts_ok = all(r["rows_written"] == expected["kept"] and r["rows_quarantined"] == expected["bad"]
                    for r in runs)
    out = {"seconds": seconds, "rows_per_s": n / seconds, "cpu_s": _median(runs, "cpu_s"),
           "peak_rss_mb": _median(runs, "peak_rss_mb"),
           "rows_written": runs[0]["rows_written"], "rows_quarantined": runs[0]["rows_quarantined"],
           "counts_ok": counts_ok, "repeats": len(runs), "runs": runs}
    if "startup_s" in runs[0]:
        out["startup_s"] = _median(runs, "startup_s")
    return out


def parse_repeats(spec: str, sizes: list[int]) -> dict[int, int]:
    """``3`` (every size) or ``5e6:3,20e6:1`` (by size; unnamed sizes once)."""
    if ":" not in spec:
        return dict.fromkeys(sizes, int(spec))
    named = {int(float(k)): int(v) for k, v in (part.split(":") for part in spec.split(",") if part.strip())}
    return {n: named.get(n, 1) for n in sizes}


def bench(sizes: list[int], *, engines: list[str], bad_fraction: float, master: str, partitions: int,
          timeout: int, repeats: dict[int, int], conf: dict | None = None, pandas_max: int = 5_000_000,
          tmp_root: str | None = None, progress=None, parallel: bool = False) -> dict:
    """Each size: generate the log once, then every engine on it, interleaved per repeat (same sitting).
    ``progress`` gets the report so far after each size (a long run killed later still leaves figures)."""
    import psutil

    conf = conf or {}
    results = []

    def report() -> dict:
        return {
            "benchmark": "ingest", "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
                        "python": platform.python_version(), "spark_master": master,
                        "shuffle_partitions": partitions, "spark_conf": conf,
                        "driver_memory": os.environ.get("KTREC_BENCH_DRIVER_MEMORY", "4g")},
            "engines": engines, "bad_fraction": bad_fraction, "pandas_max_rows": pandas_max, "results": results,
            "sizes_planned": sizes, "load_avg_end": os.getloadavg(), "parallel": parallel,
        }

    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="ktrec-bench-", dir=tmp_root) as tmp:
            csv_path = Path(tmp) / "events.csv"
            t0 = time.perf_counter()
            planted = generate(csv_path, n, bad_fraction=bad_fraction)
            log.info("generated %d rows (%.0f MB) in %.1fs", n, planted["bytes"] / 1e6, time.perf_counter() - t0)
            todo = [e for e in engines if e != "pandas" or n <= pandas_max]
            runs: dict[str, list[dict]] = {e: [] for e in todo}
            for rep in range(repeats.get(n, 1)):
                def one(engine: str, rep: int = rep, n: int = n, csv_path: Path = csv_path) -> dict:
                    work = Path(tmp) / f"{engine}-{rep}"
                    result = run_engine(engine, csv_path, work, master=master, partitions=partitions, conf=conf,
                                        timeout=timeout)
                    shutil.rmtree(work, ignore_errors=True)
                    log.info("%d rows, %s #%d: %.1fs (load %.1f)", n, engine, rep + 1, result["seconds"],
                             result["load_avg_1m"])
                    return result

                if parallel:  # all engines of a repeat at once: the same conditions on a shared machine
                    with ThreadPoolExecutor(len(todo)) as pool:
                        for engine, result in zip(todo, pool.map(one, todo), strict=True):
                            runs[engine].append(result)
                else:
                    for engine in todo:
                        runs[engine].append(one(engine))
            summary = {e: engine_summary(r, n, planted) for e, r in runs.items()}
            entry = {"rows": n, "measured": datetime.now(UTC).isoformat(timespec="seconds"), "parallel": parallel,
                     "driver_memory": os.environ.get("KTREC_BENCH_DRIVER_MEMORY", "4g"),
                     "csv_mb": planted["bytes"] / 1e6, "planted_bad": planted["bad"],
                     "expected_kept": planted["kept"], "engines": summary,
                     "skipped": sorted(set(engines) - set(todo))}
            if "ktrec" in summary:
                entry["spark"] = {k: v for k, v in summary["ktrec"].items() if k != "runs"}  # benchmarks.capacity
            if "ktrec" in summary and "minimal" in summary:
                entry["ktrec_over_minimal"] = summary["ktrec"]["seconds"] / summary["minimal"]["seconds"]
            results.append(entry)
            if progress is not None:
                progress(report())
    return report()


ENGINE_NAMES = {"ktrec": "ktrec ingest", "minimal": "minimal Spark", "duckdb": "DuckDB", "pandas": "pandas"}


def _cell(engine: dict | None, key: str, fmt: str) -> str:
    return "–" if engine is None or engine.get(key) is None else format(engine[key], fmt)


def markdown(report: dict) -> str:
    m = report["machine"]
    engines = report["engines"]
    lines = [
        f"## Spark `{m['spark_master']}`", "",
        f"{report['created']}; {m['cpus']} CPUs, {m['memory_gb']} GiB; {m['shuffle_partitions']} shuffle "
        f"partitions; bad rows {report['bad_fraction']:.2%}. Wall time of the transform, median of the repeats "
        "(Spark session start-up excluded, given apart); engines interleaved per repeat on the same file. "
        "Counts: kept rows (after dedupe) and quarantined rows, checked against what the generator planted."
        + (f" Standalone cluster: {m['cluster']['workers']} workers × {m['cluster']['cores_each']} core "
           f"({m['cluster']['worker_memory']} each) on this machine; CPU s and peak RSS are the driver's processes "
           "only (the executors run under the workers), the executors' CPU is in the event-log table."
           if "cluster" in m else "")
        + (" The engines of a repeat ran at the same time (`--parallel`) at "
           + ", ".join(f"{r['rows']:,}" for r in report["results"] if r.get("parallel"))
           + " events, one after the other elsewhere." if any(r.get("parallel") for r in report["results"]) else "")
        + (" Not measured (the run was stopped before): "
           + ", ".join(f"{n:,}" for n in report["sizes_planned"][len(report["results"]):]) + " events."
           if len(report.get("sizes_planned", [])) > len(report["results"]) else ""), "",
        "| events | CSV MB | engine | repeats | s (median) | rows/s | CPU s | peak RSS MB | start-up s | kept | "
        "quarantined | counts | load 1m |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in report["results"]:
        for name in engines:
            e = r["engines"].get(name)
            if e is None:
                continue
            loads = ", ".join(f"{x['load_avg_1m']:.1f}" for x in e["runs"])
            lines.append(
                f"| {r['rows']:,} | {r['csv_mb']:.0f} | {ENGINE_NAMES.get(name, name)} | {e['repeats']} | "
                f"{e['seconds']:.1f} | {e['rows_per_s']:,.0f} | {e['cpu_s']:.1f} | {e['peak_rss_mb']:,.0f} | "
                f"{_cell(e, 'startup_s', '.1f')} | {e['rows_written']:,} | {e['rows_quarantined']:,} | "
                f"{'ok' if e['counts_ok'] else 'MISMATCH'} | {loads} |")
    lines += ["", "Ratios of medians (wall; CPU in brackets: user + system seconds of the engine's processes, "
              "which the machine's load inflates less).", "",
              "| events | ktrec / minimal Spark | ktrec / DuckDB | ktrec s per M events |",
              "|---:|---:|---:|---:|"]
    for r in report["results"]:
        e = r["engines"]
        k = e.get("ktrec")
        if k is None:
            continue
        ratios = [f"{k['seconds'] / e[o]['seconds']:.2f}× ({k['cpu_s'] / e[o]['cpu_s']:.2f}×)" if o in e else "–"
                  for o in ("minimal", "duckdb")]
        lines.append(f"| {r['rows']:,} | {' | '.join(ratios)} | {k['seconds'] / r['rows'] * 1e6:.1f} |")
    lines += ["", "Spark event log (median run): jobs, stages, passes over the input (bytes read by the stages "
              "that scan the text/CSV file ÷ its size), summed job time, and per job description its wall "
              "seconds (executor CPU seconds in brackets), longest first.", "",
              "| events | engine | jobs | stages | input passes | job s | wall s | top jobs (s) |",
              "|---:|---|---:|---:|---:|---:|---:|---|"]
    for r in report["results"]:
        for name in ("ktrec", "minimal"):
            e = r["engines"].get(name)
            if e is None:
                continue
            run = sorted(e["runs"], key=lambda x: x["seconds"])[len(e["runs"]) // 2]
            s = run["spark"]
            top = "; ".join(f"{label} ×{v['jobs']}: {v['seconds']:.1f} ({v['task_cpu_seconds']:.1f} CPU)"
                            for label, v in list(s["by_job"].items())[:5])
            lines.append(f"| {r['rows']:,} | {ENGINE_NAMES[name]} | {s['jobs']} | {s['stages']} | "
                         f"{s['source_passes']} | {s['job_seconds']:.1f} | {run['seconds']:.1f} | {top} |")
    return "\n".join(lines) + "\n"


def document(report: dict, name: str) -> str:
    """The report's Markdown; the main report also carries the cluster run's section when there is one."""
    text = ("# Ingest benchmark" + ("" if name == "ingest" else f": {name}") + "\n\n") + markdown(report)
    cluster = REPORTS / "ingest_cluster.json"
    if name == "ingest" and cluster.is_file():
        text += "\n" + markdown(json.loads(cluster.read_text()))
    if (REPORTS / "ingest_notes.md").is_file():
        text += "\nWhere the time goes, what changed and what is not measured: `ingest_notes.md`.\n"
    return text


def standalone_cluster(work: Path, *, workers: int, cores: int, memory: str):
    """A Spark standalone master and ``workers`` workers on loopback (as tests/test_ingest_ops.py starts one);
    a context manager yielding the master URL."""
    import contextlib
    import signal
    import socket

    import pyspark

    def free_port() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    @contextlib.contextmanager
    def cluster():
        spark_home = Path(pyspark.__file__).parent
        env = {**os.environ, "SPARK_HOME": str(spark_home), "SPARK_LOCAL_IP": "127.0.0.1",
               "SPARK_LOG_DIR": str(work / "logs"), "PYSPARK_PYTHON": sys.executable}
        work.mkdir(parents=True, exist_ok=True)
        procs: list[subprocess.Popen] = []

        def start(args: list[str], name: str, ready: str) -> None:
            path = work / f"{name}.log"
            with open(path, "wb") as out:
                procs.append(subprocess.Popen([str(spark_home / "bin" / "spark-class"), *args], env=env,
                                              stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
            deadline = time.monotonic() + 180
            while ready not in path.read_text(errors="replace"):
                if procs[-1].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start: {path.read_text(errors='replace')[-2000:]}")
                time.sleep(0.5)

        port = free_port()
        try:
            start(["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                   "--webui-port", str(free_port())], "master", "I have been elected leader")
            for i in range(workers):
                start(["org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}", "--host", "127.0.0.1",
                       "--cores", str(cores), "--memory", memory, "--webui-port", str(free_port()),
                       "--work-dir", str(work / f"worker{i}")], f"worker{i}", "Successfully registered with master")
            yield f"spark://127.0.0.1:{port}"
        finally:
            for proc in reversed(procs):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)

    return cluster()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,5e6,20e6")
    parser.add_argument("--engines", default="ktrec,minimal,duckdb,pandas",
                        help="comma-separated subset of ktrec, minimal, duckdb, pandas")
    parser.add_argument("--repeats", default="1", help="N for every size, or SIZE:N,... (e.g. 5e6:3)")
    parser.add_argument("--bad-fraction", type=float, default=0.002)
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--spark-conf", default="{}", help="JSON of extra spark.* options (both Spark engines)")
    parser.add_argument("--cluster-workers", type=int, default=0,
                        help="start a standalone master and this many workers on loopback and run on them")
    parser.add_argument("--worker-memory", default="3g")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--driver-memory", default="4g", help="Spark driver memory of both Spark engines")
    parser.add_argument("--pandas-max", type=float, default=5e6, help="skip pandas above this many events")
    parser.add_argument("--timeout", type=int, default=3600)
    parser.add_argument("--report", default="ingest", help="report name under benchmarks/reports/")
    parser.add_argument("--parallel", action="store_true",
                        help="run the engines of each repeat at the same time (fair on an oversubscribed machine)")
    parser.add_argument("--append", action="store_true",
                        help="keep the report's results for sizes this run does not measure (a rerun of a subset)")
    parser.add_argument("--render", action="store_true", help="rewrite the Markdown from the JSON report only")
    parser.add_argument("--worker", choices=list(ENGINE_NAMES), help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    conf = json.loads(args.spark_conf)
    if not args.worker:
        os.environ["KTREC_BENCH_DRIVER_MEMORY"] = args.driver_memory  # (the workers inherit it)
    if args.worker in ("ktrec", "minimal"):
        result = spark_worker(args.worker, args.csv, args.home, args.spark_master, args.partitions, conf)
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    if args.worker:
        threads = int(args.spark_master[6:-1]) if args.spark_master.startswith("local[") else os.cpu_count()
        sys.stdout.write(json.dumps(local_worker(args.worker, args.csv, args.home, threads)) + "\n")
        return 0
    if args.render:
        report = json.loads((REPORTS / f"{args.report}.json").read_text())
        (REPORTS / f"{args.report}.md").write_text(document(report, args.report))
        return 0
    sizes = [int(float(s)) for s in args.sizes.split(",") if s.strip()]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - set(ENGINE_NAMES)
    if unknown:
        parser.error(f"unknown engines {sorted(unknown)}; known: {list(ENGINE_NAMES)}")
    extra = {}
    REPORTS.mkdir(parents=True, exist_ok=True)

    kept = []
    if args.append and (REPORTS / f"{args.report}.json").is_file():
        previous = json.loads((REPORTS / f"{args.report}.json").read_text())
        kept = [r for r in previous["results"] if r["rows"] not in sizes]

    def write(report: dict) -> None:
        report["machine"].update(extra)
        if kept:
            report["results"] = sorted(kept + [r for r in report["results"] if r not in kept],
                                       key=lambda r: r["rows"])
            report["sizes_planned"] = sorted({r["rows"] for r in report["results"]} | set(sizes))
        (REPORTS / f"{args.report}.json").write_text(json.dumps(report, indent=2) + "\n")
        (REPORTS / f"{args.report}.md").write_text(document(report, args.report))

    options = dict(engines=engines, bad_fraction=args.bad_fraction, partitions=args.partitions,
                   timeout=args.timeout, repeats=parse_repeats(args.repeats, sizes), pandas_max=int(args.pandas_max),
                   progress=write, parallel=args.parallel)
    if args.cluster_workers:
        extra["cluster"] = {"workers": args.cluster_workers, "cores_each": 1, "worker_memory": args.worker_memory}
        with tempfile.TemporaryDirectory(prefix="ktrec-cluster-") as tmp, \
                standalone_cluster(Path(tmp), workers=args.cluster_workers, cores=1,
                                   memory=args.worker_memory) as master:
            conf = {"spark.executor.memory": "2g", "spark.cores.max": str(args.cluster_workers), **conf}
            report = bench(sizes, master=master, conf=conf, **options)
    else:
        report = bench(sizes, master=args.spark_master, conf=conf, **options)
    write(report)
    sys.stdout.write(document(report, args.report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
