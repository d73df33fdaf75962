"""Operational guarantees: a kill -9 mid-write leaves the lake as it was; the scale-out path on a real
Spark standalone master + worker; dataset downloads verify checksums and fail clearly without network."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pyspark
import pytest
from ingest_helpers import rows, run, write
from typer.testing import CliRunner

from jobs.cli import app
from jobs.core import lake
from jobs.ingest.datasets import DownloadError, download

REPO = Path(__file__).resolve().parents[1]
T0 = 1709028000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_env(settings, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "KTREC_HOME": str(settings.home), "KTREC_PROFILE": "local",
           "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    return env | extra


def stop_group(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def big_csv(path: Path, n: int) -> Path:
    lines = "".join(f"u{i % 997},i{i % 1499},{i % 5 + 1},{T0 + (i % 20) * 86400 + i}\n" for i in range(n))
    return write(path.parent, path.name, "user_id,item_id,rating,timestamp\n" + lines)


def test_kill_9_mid_write_leaves_previous_lake(spark, settings, tmp_path):
    run(spark, settings, write(tmp_path, "v1.csv", f"user_id,item_id,rating,timestamp\nu1,i1,4,{T0}\n"
                                                   f"u2,i2,3,{T0 + 86400}\n"))
    before_version = lake.current_version(settings, lake.INTERACTIONS)
    before = rows(spark, settings)
    source = big_csv(tmp_path / "v2.csv", 300_000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobs.cli", "ingest", "--source", str(source), "--batch-date", "2024-03-01", "--json"],
        cwd=REPO, env=cli_env(settings, KTREC_SPARK__MASTER="local[1]"), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 400
        # Spark creates <scratch>/new/_temporary when the partitioned write starts: kill it right there.
        while not list(settings.lake.glob(".scratch/*/new/_temporary")):
            assert proc.poll() is None, "the ingest ended before its write started"
            assert time.monotonic() < deadline, "the ingest never started writing"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        stop_group(proc, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert lake.current_version(settings, lake.INTERACTIONS) == before_version
    assert rows(spark, settings) == before


@pytest.fixture
def standalone_cluster(tmp_path):
    """A real Spark standalone master and one worker (1 core, 1 GiB) on loopback; stopped at the end."""
    spark_home = Path(pyspark.__file__).parent
    env = {**os.environ, "SPARK_HOME": str(spark_home), "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_LOG_DIR": str(tmp_path / "logs"), "PYSPARK_PYTHON": sys.executable}
    port = free_port()
    spark_class = str(spark_home / "bin" / "spark-class")
    procs = []

    def start(args: list[str], log_name: str, ready: str) -> None:
        log = tmp_path / log_name
        with open(log, "wb") as out:
            procs.append(subprocess.Popen([spark_class, *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True))
        deadline = time.monotonic() + 180
        while ready not in log.read_text(errors="replace"):
            assert procs[-1].poll() is None, log.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, f"{log_name} not ready"
            time.sleep(0.5)

    try:
        start(["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
               "--webui-port", str(free_port())], "master.log", "I have been elected leader")
        start(["org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}", "--host", "127.0.0.1",
               "--cores", "1", "--memory", "1g", "--webui-port", str(free_port()),
               "--work-dir", str(tmp_path / "work")], "worker.log", "Successfully registered with master")
        yield f"spark://127.0.0.1:{port}", tmp_path / "work"
    finally:
        for proc in reversed(procs):
            stop_group(proc)


@pytest.mark.servers
def test_ingest_on_standalone_cluster(spark, settings, tmp_path, standalone_cluster):
    master, work_dir = standalone_cluster
    source = write(tmp_path, "log.csv", f"user_id,item_id,rating,timestamp\nu1,i1,4,{T0}\nu2,i1,9,{T0}\n"
                                        f"u2,i2,2,{T0 + 86400}\n")
    conf = json.dumps({"spark.executor.memory": "512m", "spark.cores.max": "1"})
    done = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "ingest", "--source", str(source), "--batch-date", "2024-03-01",
         "--json"], cwd=REPO, capture_output=True, text=True, timeout=400,
        env=cli_env(settings, KTREC_SPARK__MASTER=master, KTREC_SPARK__DRIVER_MEMORY="1g", KTREC_SPARK__CONF=conf))
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["rows_valid"] == 2 and summary["quarantine_reasons"] == {"rating_out_of_range": 1}
    assert rows(spark, settings, columns=["user_id", "item_id"]) == [("u1", "i1"), ("u2", "i2")]
    # The executors ran on the worker: it made an application folder.
    assert any(p.name.startswith("app-") for p in work_dir.iterdir())


def test_download_fails_clearly_without_network(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/ml-100k.zip"  # nothing listens there
    with pytest.raises(DownloadError, match="could not download .*ml-100k.zip.*Without network"):
        download("ml-100k", dest=tmp_path, url=url, md5="0" * 32, timeout_s=5)
    assert not (tmp_path / "ml-100k").exists() and not list(tmp_path.iterdir())
    result = CliRunner().invoke(app, ["datasets", "download", "ml-1m", "--dest", str(tmp_path), "--url", url])
    assert result.exit_code == 1 and "could not download" in result.output


@pytest.fixture
def zip_server(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-100k/u.data", f"1\t2\t3\t{T0}\n")
    payload = buf.getvalue()
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "ml-100k.zip").write_bytes(payload)
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path / "www"))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/ml-100k.zip", hashlib.md5(payload).hexdigest()
    server.shutdown()


def test_download_checks_md5_then_unpacks(tmp_path, zip_server):
    url, md5 = zip_server
    dest = tmp_path / "data"
    with pytest.raises(DownloadError, match="does not match"):
        download("ml-100k", dest=dest, url=url, md5="f" * 32)
    assert not list(dest.iterdir())
    folder = download("ml-100k", dest=dest, url=url, md5=md5)
    assert folder == dest / "ml-100k" and (folder / "u.data").read_text().startswith("1\t2\t3")
