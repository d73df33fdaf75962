"""Airflow for tests: an AIRFLOW_HOME in tmp with a migrated SQLite metadata DB and the project's dags.

Airflow reads its configuration when ``airflow`` is first imported, so :func:`airflow_environment` sets
the environment before any test imports it (the DAG tests import airflow only inside test functions).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from jobs.settings import REPO_ROOT

DAGS = REPO_ROOT / "dags"
VENV_BIN = Path(sys.executable).parent


def airflow_env(
    home: Path, *, sql_conn: str | None = None, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment an Airflow process needs for ``home`` (on top of the current one)."""
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_conn or f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "PATH": os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")]),
    }
    return env | (extra or {})


def migrate(env: dict[str, str]) -> None:
    """``airflow db migrate`` in a child process (the parent's airflow, if imported, keeps its config)."""
    subprocess.run(
        [str(VENV_BIN / "airflow"), "db", "migrate"],
        env=os.environ | env,
        check=True,
        capture_output=True,
        timeout=600,
    )


def create_gpu_pool(env: dict[str, str], slots: int = 1) -> None:
    subprocess.run(
        [
            str(VENV_BIN / "airflow"),
            "pools",
            "set",
            "gpu",
            str(slots),
            "Profile generation and training (1 slot per GPU)",
        ],
        env=os.environ | env,
        check=True,
        capture_output=True,
        timeout=300,
    )
