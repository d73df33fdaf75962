"""Wall time of the nightly DAG under ``dag.test()`` on a slice of MovieLens 100K (embedded settings).

    python -m benchmarks.nightly_dag [--users 60] [--epochs 2] [--models bpr]

Sets up a throwaway AIRFLOW_HOME (SQLite metadata, migrated, `gpu` pool) and KTREC_HOME, runs
``ktrec_nightly`` once for a fixed logical date and then again for the same date (the idempotent rerun),
each in a fresh process exactly as the DAG test does, and writes benchmarks/reports/nightly_dag.{json,md}
with the wall time of each run and each task's final state. Spark runs local[2]; profiles use the
template backend. The machine's load average is recorded because the development machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "benchmarks" / "reports"
sys.path.insert(0, str(ROOT / "tests"))  # the Airflow test environment and data-slice helpers

from airflow_env import DAGS, airflow_env, setup_airflow  # noqa: E402
from nightly_data import ml100k_slice  # noqa: E402

LOGICAL_DATE = "2026-03-01T02:00:00+00:00"


def run_once(env: dict[str, str], conf: dict) -> dict:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "dag_test_runner.py"), str(DAGS / "ktrec_nightly.py"),
         "ktrec_nightly", LOGICAL_DATE, json.dumps(conf)],
        env=os.environ | env, capture_output=True, text=True, timeout=3600,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result | {"process_seconds": round(time.perf_counter() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--models", default="bpr")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ktrec-bench-dag-") as tmp:
        root = Path(tmp)
        (root / "airflow").mkdir()
        env = airflow_env(root / "airflow", extra={
            "KTREC_HOME": str(root / "ktrec"), "KTREC_PROFILE": "local", "KTREC_SPARK__MASTER": "local[2]",
            "KTREC_SPARK__SHUFFLE_PARTITIONS": "2", "KTREC_SPARK__DRIVER_MEMORY": "2g"})
        setup_airflow(env)
        conf = {"dataset": str(ml100k_slice(root / "slice", users=args.users)),
                "models": args.models.split(","), "epochs": args.epochs, "profile_backend": "template",
                "full_refresh": False, "split_strategy": "random", "promote": True}
        runs = {"first": run_once(env, conf), "rerun_same_date": run_once(env, conf)}
    report = {"benchmark": "nightly_dag", "when": datetime.now(UTC).isoformat(timespec="seconds"),
              "users": args.users, "epochs": args.epochs, "models": args.models.split(","),
              "host": platform.node(), "cpus": os.cpu_count(), "load_avg": os.getloadavg(), "runs": runs}
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "nightly_dag.json").write_text(json.dumps(report, indent=2))
    lines = ["# ktrec_nightly under dag.test()", "",
             f"Slice: first {args.users} ml-100k users; models {args.models}; epochs {args.epochs}; "
             f"{os.cpu_count()} CPUs, load average {report['load_avg'][0]:.1f} at the end.", "",
             "| run | state | dag.test() s | process s |", "|---|---|---|---|"]
    lines += [f"| {name} | {r['state']} | {r['seconds']} | {r['process_seconds']} |"
              for name, r in runs.items()]
    (REPORTS / "nightly_dag.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(r["state"] == "success" for r in runs.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
