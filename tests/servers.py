"""Real servers for tests: Airflow (through infra/airflow.sh) and an MLflow tracking server, on loopback.

Each server gets a free 127.0.0.1 port and a fresh Postgres database, and is stopped by process group
(every process it spawned goes with it); the database is dropped afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from airflow_env import VENV_BIN

from jobs.core.settings import REPO_ROOT

PG = "postgresql+psycopg2://postgres@127.0.0.1:5432"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, *, timeout: float, ok=lambda r: r.status_code == 200) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=5)
            if ok(response):
                return response
            last = response.status_code
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(1)
    raise TimeoutError(f"{url} not ready after {timeout}s (last: {last})")


@contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """A fresh database on the local Postgres; yields its SQLAlchemy URL and drops it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], check=True)
    try:
        yield f"{PG}/{name}"
    finally:
        subprocess.run(
            ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--force", "--if-exists", name], check=False
        )


@contextmanager
def airflow_services(home: Path, *, env: dict[str, str]) -> Iterator[str]:
    """Init and start Airflow with infra/airflow.sh; yields the base URL; stops every service."""
    port = free_port()
    full = (
        os.environ
        | env
        | {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__API__PORT": str(port),
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        }
    )
    script = str(REPO_ROOT / "infra" / "airflow.sh")
    subprocess.run([script, "init"], env=full, check=True, capture_output=True, timeout=600)
    subprocess.run([script, "start"], env=full, check=True, capture_output=True, timeout=60)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/api/v2/monitor/health", timeout=240)
        yield base
    finally:
        subprocess.run([script, "stop"], env=full, check=False, capture_output=True, timeout=120)
        for pidfile in (home / "run").glob("*.pid"):  # backstop: nothing may outlive the test
            _kill_group(int(pidfile.read_text()))


def _kill_group(pgid: int) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def airflow_token(base: str, home: Path) -> str:
    """A JWT from the simple auth manager, with the admin password it generated on first start."""
    passwords = home / "simple_auth_manager_passwords.json.generated"
    deadline = time.monotonic() + 60
    while not passwords.is_file() and time.monotonic() < deadline:
        time.sleep(1)
    password = json.loads(passwords.read_text())["admin"]
    response = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=30)
    response.raise_for_status()
    return response.json()["access_token"]


def trigger_and_wait(
    base: str, token: str, dag_id: str, *, conf: dict, logical_date: str | None, timeout: float
) -> dict:
    """Unpause ``dag_id`` once it is parsed, trigger a run with ``conf`` and wait for a final state."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"{base}/api/v2", headers=headers, timeout=30) as api:
        deadline = time.monotonic() + 180
        while api.get(f"/dags/{dag_id}").status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} was not parsed by the dag-processor")
            time.sleep(2)
        api.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
        created = api.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": logical_date, "conf": conf})
        created.raise_for_status()
        run_id = created.json()["dag_run_id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = api.get(f"/dags/{dag_id}/dagRuns/{run_id}").json()
            if run["state"] in ("success", "failed"):
                tasks = api.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()
                instances = tasks["task_instances"]
                return run | {
                    "task_states": {t["task_id"]: t["state"] for t in instances},
                    # (task_id, map_index) -> (queue, hostname): where each instance ran.
                    "task_hosts": {(t["task_id"], t["map_index"]): (t.get("queue"), t.get("hostname"))
                                   for t in instances},
                }
            time.sleep(3)
    raise TimeoutError(f"{dag_id} run {run_id} did not finish in {timeout}s")


@contextmanager
def mlflow_server(artifacts: Path, *, backend_uri: str) -> Iterator[str]:
    """``mlflow server`` on ``backend_uri`` with a local artifact root; yields its URL."""
    port = free_port()
    log = (artifacts.parent / "mlflow-server.log").open("wb")
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            backend_uri,
            "--artifacts-destination",
            str(artifacts),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", timeout=180)
        yield url
    finally:
        _kill_group(proc.pid)
        proc.wait(timeout=30)
        log.close()
