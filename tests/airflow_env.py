"""Airflow for tests: an AIRFLOW_HOME in tmp with a migrated SQLite metadata DB and the project's dags.

Airflow reads its configuration when ``airflow`` is first imported, so :func:`airflow_environment` sets
the environment before any test imports it (the DAG tests import airflow only inside test functions).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from jobs.demo import airflow_env  # noqa: F401 - the tests' Airflow child environment
from jobs.settings import REPO_ROOT

DAGS = REPO_ROOT / "dags"
VENV_BIN = Path(sys.executable).parent


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
