"""Airflow for tests: the project's dags folder and the child-process environment the demo uses too.

Airflow reads its configuration when ``airflow`` is first imported, so tests run DAGs in child processes
with :func:`airflow_env` (an AIRFLOW_HOME in tmp) after :func:`setup_airflow` (migrated DB, `gpu` pool).
"""

from __future__ import annotations

from jobs.core.settings import REPO_ROOT
from jobs.nightly.demo import VENV_BIN, airflow_env, setup_airflow  # noqa: F401 - re-exported for the tests

DAGS = REPO_ROOT / "dags"
