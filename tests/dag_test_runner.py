"""Run one DAG once with ``dag.test()`` and print its outcome as one JSON line.

Tests call this in a child process so each run gets its own Airflow configuration (Airflow reads it at
import) and its own KTREC_* environment, exactly as a worker would:

    python tests/dag_test_runner.py dags/ktrec_nightly.py ktrec_nightly 2026-03-01T02:00:00+00:00 \\
        '{"models": ["bpr"]}'
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime


def main(argv: list[str]) -> int:
    dag_file, dag_id, logical_date, conf = argv[0], argv[1], argv[2], json.loads(argv[3])
    logging.basicConfig(level=logging.WARNING)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=dag_file)
    if bag.import_errors:
        raise SystemExit(f"import errors: {bag.import_errors}")
    dag = bag.dags[dag_id]
    started = time.perf_counter()
    run = dag.test(logical_date=datetime.fromisoformat(logical_date), run_conf=conf)
    seconds = time.perf_counter() - started
    tasks = {}
    for ti in run.get_task_instances():
        key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
        tasks[key] = _value(ti.state)
    sys.stdout.write(
        json.dumps({"state": _value(run.state), "tasks": tasks, "seconds": round(seconds, 1)}) + "\n"
    )
    return 0


def _value(state) -> str | None:
    return None if state is None else getattr(state, "value", str(state))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
