"""Serving latency on loopback: Feast online reads (SQLite and Redis; SDK and ``feast serve`` HTTP) and the
champion's top-10 from ``mlflow models serve``, for 1, 10 and 100 entities, alone and with 4 clients.

Run: ``PYTHONPATH=. python -m benchmarks.serving [--requests 200]``; writes
``benchmarks/reports/serving.{json,md}``. MovieLens 100K goes through the real ingest, split, stats and
materialize jobs in a throwaway KTREC_HOME; profiles are random 384-d vectors written with the profile
table's writer (no LLM time); the served model is a BPR-MF trained 2 epochs by ``ktrec train`` and aliased
``champion`` directly (the benchmark measures serving, not the gate). Targets (issue 14): Feast Redis online
read of 100 entities p99 <= 10 ms through the SDK; model top-10 for one user p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

from benchmarks.feast_store import AS_OF, load_interactions, write_profiles
from jobs.core.settings import DEFAULT_DATASET, REPO_ROOT, Settings

REPORTS = REPO_ROOT / "benchmarks" / "reports"
SIZES = (1, 10, 100)
CLIENTS = 4


def percentiles(samples: list[float]) -> dict:
    values = np.asarray(samples)
    return {f"p{q}_ms": round(float(np.percentile(values, q)), 2) for q in (50, 95, 99)} | {"n": len(samples)}


def measure_calls(call, requests: int, clients: int) -> dict:
    """Latency of ``call()`` over ``requests`` calls per client, ``clients`` threads at once (after 5 warm-ups)."""
    for _ in range(5):
        call()

    def loop() -> list[float]:
        out = []
        for _ in range(requests):
            started = time.perf_counter()
            call()
            out.append((time.perf_counter() - started) * 1000)
        return out

    with ThreadPoolExecutor(max_workers=clients) as pool:
        samples = [s for chunk in pool.map(lambda _: loop(), range(clients)) for s in chunk]
    return percentiles(samples)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(command: list[str], ready_url: str, env: dict, log: Path, timeout: float = 300) -> subprocess.Popen:
    proc = subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{command[0]} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(ready_url, timeout=2).status_code < 500:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise TimeoutError(f"{ready_url} not ready after {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)


def feast_cases(settings: Settings, users: list[str], requests: int, label: str) -> dict:
    """SDK reads of the online_ranking service's user features for 1/10/100 users, and the same over HTTP."""
    from jobs.publish import reads
    from jobs.publish.store import get_store

    store = get_store(settings, apply=False)
    out = {}
    for n in SIZES:
        ids = users[:n]
        for clients in (1, CLIENTS):
            out[f"feast_{label}_sdk_{n}_c{clients}"] = measure_calls(
                lambda ids=ids: reads.online_features(settings, entity="user", ids=ids, store=store), requests, clients)
    port = free_port()
    feast = shutil.which("feast", path=str(Path(sys.executable).parent))
    proc = serve([feast, "-c", str(settings.feast_dir), "serve", "-h", "127.0.0.1", "-p", str(port)],
                 f"http://127.0.0.1:{port}/health", os.environ.copy(), settings.root / f"feast-{label}.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            # The service's user-keyed features (online_ranking also holds item views, keyed on item_id).
            refs = reads.entity_feature_refs(store, service=reads.SERVING_SERVICE, entity="user")
            for n in SIZES:
                body = {"features": list(refs), "entities": {"user_id": users[:n]}}
                for clients in (1, CLIENTS):
                    out[f"feast_{label}_http_{n}_c{clients}"] = measure_calls(
                        lambda body=body: client.post("/get-online-features", json=body).raise_for_status(),
                        requests, clients)
    finally:
        stop(proc)
    return out


def champion(settings: Settings) -> None:
    """A BPR-MF trained 2 epochs on a random split, registered and aliased champion."""
    from jobs import split, train
    from jobs.registry import tracking

    split.run(settings, strategy="random", name="serving")
    summary = train.run(settings, scenario=REPO_ROOT / "conf" / "bpr" / "baseline.yaml", split="serving", seed=0,
                        epochs=2, progress=False)
    run = tracking.log_training_run(settings, summary=summary, run_key="benchmark/serving/bpr")
    version = tracking.register_version(settings, run=run)
    tracking.client(settings).set_registered_model_alias("ktrec-bpr", "champion", version["version"])


def model_cases(settings: Settings, users: list[str], requests: int) -> dict:
    port = free_port()
    env = os.environ | {"MLFLOW_TRACKING_URI": settings.mlflow_uri, "MLFLOW_REGISTRY_URI": settings.mlflow_uri,
                        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    mlflow = shutil.which("mlflow", path=env["PATH"])
    proc = serve([mlflow, "models", "serve", "-m", "models:/ktrec-bpr@champion", "-h", "127.0.0.1", "-p", str(port),
                  "--env-manager", "local", "-w", "1"], f"http://127.0.0.1:{port}/ping", env,
                 settings.root / "mlflow-serve.log")
    out = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for n in SIZES:
                body = {"dataframe_split": {"columns": ["user_id"], "data": [[u] for u in users[:n]]},
                        "params": {"k": 10}}
                for clients in (1, CLIENTS):
                    out[f"model_top10_{n}_c{clients}"] = measure_calls(
                        lambda body=body: client.post("/invocations", json=body).raise_for_status(), requests, clients)
    finally:
        stop(proc)
    return out


def measure(home: Path, requests: int) -> dict:
    from jobs.publish import materialize, stats

    base = Settings(home=home, profile="local")
    rng = np.random.default_rng(base.seed)
    events = load_interactions(base, DEFAULT_DATASET)
    users, items = sorted(events["user_id"].unique()), sorted(events["item_id"].unique())
    write_profiles(base, entity="user", ids=users, rng=rng)
    write_profiles(base, entity="item", ids=items, rng=rng)
    stats.run(base, as_of=AS_OF[-1])
    results: dict = {}
    # Redis: its own Feast registry and yaml (a second home whose lake is the first one's), its own key prefix.
    (home / "redis").mkdir()
    (home / "redis" / "lake").symlink_to(base.lake, target_is_directory=True)
    redis = Settings(home=home / "redis", profile="local",
                     feast={"online_store": "redis", "project": "ktrec_bench_serving"})
    for label, settings in (("sqlite", base), ("redis", redis)):
        materialize.run(settings, end=AS_OF[-1])
        results |= feast_cases(settings, users, requests, label)
    champion(base)
    results |= model_cases(base, users, requests)
    return {"benchmark": "serving", "requests_per_client": requests, "clients": CLIENTS, "users": len(users),
            "results": results, "load_average": os.getloadavg(), "cpus": os.cpu_count(),
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "targets": {"feast_redis_sdk_100_c1": {"p99_ms": 10.0}, "model_top10_1_c1": {"p99_ms": 50.0}}}


def write_report(report: dict) -> None:
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "serving.json").write_text(json.dumps(report, indent=2) + "\n")
    rows = [f"| {name} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['n']} |"
            for name, r in report["results"].items()]
    met = {name: report["results"][name]["p99_ms"] <= t["p99_ms"] for name, t in report["targets"].items()}
    lines = ["# Serving latency on loopback (Feast online reads, MLflow model server)", "",
             f"{report['users']} users; {report['requests_per_client']} requests per client, 1 or "
             f"{report['clients']} clients (`_c1`/`_c4`); {report['cpus']} CPUs shared by clients and servers, "
             f"load average {report['load_average'][0]:.1f} at the end.", "",
             "| case | p50 ms | p95 ms | p99 ms | requests |", "|---|---|---|---|---|", *rows, "",
             "Targets: " + ", ".join(f"{k} p99 <= {v['p99_ms']} ms: {'met' if met[k] else 'NOT met'}"
                                     for k, v in report["targets"].items()), ""]
    (REPORTS / "serving.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per client and case")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ktrec-bench-serving-") as home:
        report = measure(Path(home), args.requests)
    write_report(report)
    print(json.dumps(report["results"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
