"""``ktrec demo``: the nightly DAG end to end on the embedded defaults, then a summary table.

Runs ``airflow dags test ktrec_nightly`` (every task in one process, no scheduler) against an Airflow home
under KTREC_HOME with a SQLite metadata DB, on the configured dataset (MovieLens 100K by default): Spark
ingest, Great Expectations, template profiles, Feast, baseline and LLM-KT training, MLflow registry and
the promotion gate. Airflow runs as a child process, so this module imports no Airflow code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

from jobs.core.names import NIGHTLY_DAG_ID
from jobs.core.settings import REPO_ROOT, Settings

VENV_BIN = Path(sys.executable).parent
# What `airflow standalone` needs to show the demo's runs.
UI_ENV = ("AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__LOAD_EXAMPLES", "KTREC_HOME", "PYTHONPATH")


def airflow_env(home: Path, *, sql_conn: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for an Airflow child process with its home at ``home`` and ktrec's dags folder."""
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_conn or f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "PATH": os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")]),
    }
    return env | (extra or {})


def airflow(env: dict[str, str], *args: str, timeout: int = 600, capture: bool = True) -> str:
    """Run one ``airflow`` CLI command; raise with its output when it fails."""
    done = subprocess.run(
        [str(VENV_BIN / "airflow"), *args], env=os.environ | env, capture_output=capture, text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        tail = (done.stdout or "")[-3000:] + (done.stderr or "")[-3000:]
        raise RuntimeError(f"airflow {' '.join(args)} failed ({done.returncode}):\n{tail}")
    return done.stdout or ""


def prepare_airflow(settings: Settings) -> dict[str, str]:
    """Migrate the metadata DB and create the `gpu` pool (idempotent); returns the environment."""
    env = airflow_env(
        settings.airflow_home, extra={"KTREC_HOME": str(settings.root), "KTREC_PROFILE": settings.profile}
    )
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    return setup_airflow(env)


def setup_airflow(env: dict[str, str]) -> dict[str, str]:
    """``airflow db migrate`` and the `gpu` pool the DAGs' GPU tasks queue on (both idempotent)."""
    airflow(env, "db", "migrate")
    airflow(env, "pools", "set", "gpu", "1", "Profile generation and training (1 slot per GPU)")
    return env


def run(settings: Settings, *, run_date: date, models: list[str], epochs: int | None = None) -> dict[str, Any]:
    """Run the nightly DAG for ``run_date`` and return the per-model outcome read from its decisions."""
    env = prepare_airflow(settings)
    conf = {"models": models, "epochs": epochs, "dataset": str(settings.dataset)}
    logical = datetime.combine(run_date, dtime(2, 0), UTC).isoformat()
    started = time.perf_counter()
    airflow(env, "dags", "test", NIGHTLY_DAG_ID, logical, "-c", json.dumps(conf), timeout=3600, capture=False)
    seconds = round(time.perf_counter() - started, 1)
    decisions = sorted((settings.runs_dir / run_date.isoformat()).glob("*-decision.json"))
    return {
        "run_date": run_date.isoformat(),
        "seconds": seconds,
        "models": [json.loads(p.read_text()) for p in decisions],
        "mlflow_ui": f"{VENV_BIN / 'mlflow'} ui --backend-store-uri {settings.mlflow_uri} --host 127.0.0.1",
        "airflow_ui": " ".join(f"{k}={env[k]}" for k in UI_ENV) + f" {VENV_BIN / 'airflow'} standalone",
        "data_docs": str(settings.data_docs / "index.html"),
    }
