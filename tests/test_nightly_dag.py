"""The nightly DAG end to end with ``dag.test()`` on a slice of MovieLens 100K, embedded settings
(real Spark, Great Expectations, Feast, MLflow): a good night, the same night again, and a bad batch;
and ``ktrec demo`` (jobs.nightly.demo.run), which runs the same DAG through ``airflow dags test``.

The gate's verdict is checked against NDCG@10 computed by hand (tests/registry_helpers.py) from the two
models the night saved, on the night's split: with no champion yet, KT must be promoted exactly when it
beats its baseline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from airflow_env import DAGS, airflow_env, setup_airflow
from nightly_data import ml100k_slice
from registry_helpers import run_folder_ndcg

pytestmark = pytest.mark.slow
RUNNER = Path(__file__).with_name("dag_test_runner.py")
NIGHT_1, NIGHT_2, NIGHT_3 = (f"2026-03-0{day}T02:00:00+00:00" for day in (1, 2, 3))
SPLIT_1, SPLIT_2 = "nightly-2026-03-01", "nightly-2026-03-02"  # the split tables are keyed on the date
NIGHT_1_NOON = 1772366400  # 2026-03-01T12:00:00Z: the slices' latest event (the log of that night)
AFTER_NIGHT_1 = 1772413200  # 2026-03-02T01:00:00Z: events a later log delivers, after night 1 ended
SMALL_SPARK = {
    "KTREC_SPARK__MASTER": "local[2]",
    "KTREC_SPARK__SHUFFLE_PARTITIONS": "2",
    "KTREC_SPARK__DRIVER_MEMORY": "2g",
}
# Every table a good night publishes (the stats tables are written by the `stats` task).
NIGHT_TABLES = ("interactions", "items", "users", f"splits/{SPLIT_1}", "profiles_user", "profiles_item",
                "user_stats", "item_stats")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A migrated Airflow home and a KTREC_HOME; returns a function that runs the DAG for a date."""
    root = tmp_path_factory.mktemp("nightly")
    env = airflow_env(
        root / "airflow",
        extra={"KTREC_HOME": str(root / "ktrec"), "KTREC_PROFILE": "local", **SMALL_SPARK},
    )
    (root / "airflow").mkdir()
    setup_airflow(env)

    def run(logical_date: str, conf: dict) -> dict:
        out = subprocess.run(
            [
                sys.executable,
                str(RUNNER),
                str(DAGS / "ktrec_nightly.py"),
                "ktrec_nightly",
                logical_date,
                json.dumps(conf),
            ],
            env=os.environ | env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert out.returncode == 0, out.stderr[-4000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    from jobs.core.settings import Settings

    return run, Settings(home=root / "ktrec", profile="local"), root


def _conf(dataset: Path) -> dict:
    return {
        "dataset": str(dataset),
        "models": ["bpr"],
        "epochs": 1,
        "profile_backend": "template",
        "full_refresh": False,
        "split_strategy": "random",
        "promote": True,
    }


def _registry_state(settings) -> dict:
    from jobs.registry import tracking as registry
    client = registry.client(settings)
    runs = client.search_runs([registry.experiment_id(settings, client)])
    versions = client.search_model_versions("name = 'ktrec-bpr'")
    return {
        "runs": sorted(r.info.run_id for r in runs),
        "versions": sorted(str(v.version) for v in versions),
        "tags": {str(v.version): dict(v.tags) for v in versions},
    }


def _lake_versions(settings) -> dict:
    from jobs.core import lake
    names = [lake.INTERACTIONS, lake.split_table(SPLIT_1), lake.USER_PROFILES, lake.ITEM_PROFILES]
    return {n: str(lake.current_version(settings, n)) for n in names}


def _split_rows(settings, name: str) -> list[tuple]:
    """The split table's rows, sorted, read with pandas (independently of the code under test)."""
    import pandas as pd

    folder = settings.lake / "splits" / name
    frame = pd.concat([pd.read_parquet(p) for p in sorted(folder.resolve().rglob("*.parquet"))])
    return sorted(frame[["user_id", "item_id", "split"]].astype(str).itertuples(index=False, name=None))


def _feature_files(settings) -> dict:
    return {str(p): p.stat().st_mtime_ns for p in settings.feast_dir.rglob("*") if p.is_file()}


def _ratings_in(dataset: Path) -> int:
    """Lines of the slice's u.data: every one is a valid rating, so each must become one interaction."""
    return sum(1 for line in (dataset / "u.data").read_text().splitlines() if line.strip())


def _interaction_rows(settings) -> int:
    import pyarrow.parquet as pq

    from jobs.core import lake

    return pq.read_table(lake.table_path(settings, lake.INTERACTIONS)).num_rows


def _expected_verdict(settings, run_date: str) -> bool:
    """Whether the night's KT run must pass the gate (no champion yet: it must beat its baseline), from
    NDCG@10 scored by hand on the night's split; also checks the trainer's logged numbers against it."""
    from jobs.registry import tracking as registry

    client = registry.client(settings)
    logged = {
        r.data.tags["ktrec.variant"]: r.data.metrics["test_ndcg_at_10"]
        for r in client.search_runs([registry.experiment_id(settings, client)])
        if r.data.tags.get("ktrec.run_key", "").startswith(f"ktrec_nightly/{run_date}/bpr/")
    }
    night = settings.runs_dir / run_date
    by_hand = {v: run_folder_ndcg(settings, night / f"bpr-{v}", SPLIT_1) for v in ("baseline", "kt")}
    assert logged == pytest.approx(by_hand, abs=1e-5)
    return by_hand["kt"] > by_hand["baseline"]


@pytest.mark.timeout(1800)  # four DAG runs; minutes each on 2 busy cores
def test_nightly_end_to_end_rerun_and_bad_batch(pipeline, tmp_path):
    run, settings, root = pipeline
    good = ml100k_slice(tmp_path / "good", users=40, latest_at=NIGHT_1_NOON)

    first = run(NIGHT_1, _conf(good))
    print(f"dag.test() wall time, night 1 (40 users): {first['seconds']} s", flush=True)
    assert first["state"] == "success", first
    # Every task succeeds except CoRA, DELRec and alignment, off unless the `cora` / `delrec` / `align` params ask.
    assert {k: v for k, v in first["tasks"].items() if v != "success"} == {"train_cora": "skipped",
                                                                           "train_delrec": "skipped",
                                                                           "train_align": "skipped"}
    assert {k for k in first["tasks"] if k.startswith("train[")} == {"train[0]", "train[1]"}
    state = _registry_state(settings)
    assert len(state["runs"]) == 2 and state["versions"] == ["1"]
    gate = state["tags"]["1"]["ktrec.gate"]
    from jobs.registry.gate import champion

    passes = _expected_verdict(settings, "2026-03-01")
    assert gate == ("passed" if passes else "refused")
    assert champion(settings, model="bpr") == ("1" if passes else None)
    decision = json.loads((settings.runs_dir / "2026-03-01" / "bpr-decision.json").read_text())
    assert (decision["version"], decision["promoted"]) == ("1", passes)
    # The first night published every table and a feature store (registry, online store, its yaml), and
    # ingested each rating of the slice exactly once.
    lake_after_first, features_after_first = _lake_versions(settings), _feature_files(settings)
    assert "None" not in lake_after_first.values(), lake_after_first
    from jobs.core import lake as lake_tables

    assert all(lake_tables.exists(settings, t) for t in NIGHT_TABLES)
    assert {Path(f).name for f in features_after_first} >= {"feature_store.yaml", "registry.db", "online.db"}
    assert _interaction_rows(settings) == _ratings_in(good)

    from jobs.core.lake import INTERACTIONS, table_path
    from jobs.core.spark import get_spark

    count = lambda: get_spark(settings).read.parquet(str(table_path(settings, INTERACTIONS))).count()  # noqa: E731
    rows_first, split_1 = count(), _split_rows(settings, SPLIT_1)

    # Night 2 brings 20 more users whose events happen after night 1 ended.
    later_log = ml100k_slice(tmp_path / "later", users=60, late=(41, AFTER_NIGHT_1), latest_at=NIGHT_1_NOON)
    later = run(NIGHT_2, _conf(later_log))
    assert later["state"] == "success", later
    assert count() > rows_first  # the new events are in the lake
    split_2 = _split_rows(settings, SPLIT_2)
    assert {u for u, *_ in split_2} - {u for u, *_ in split_1} == {str(u) for u in range(41, 61)}
    after_night_2, rows_night_2 = _registry_state(settings), count()
    champion_night_2 = champion(settings, model="bpr")

    # Night 1 cleared and rerun (a backfill): it sees none of night 2's events, adds no interaction, no run,
    # no version; its split is row-for-row the first one. Its gate is taken again against today's champion
    # (aliases are not per date), so the backfill never takes the champion alias from night 2's decision.
    rerun = run(NIGHT_1, _conf(good))
    print(f"dag.test() wall time, night 1 again after night 2: {rerun['seconds']} s", flush=True)
    assert rerun["state"] == "success", rerun
    assert _split_rows(settings, SPLIT_1) == split_1
    assert count() == rows_night_2
    state = _registry_state(settings)
    assert (state["runs"], state["versions"]) == (after_night_2["runs"], after_night_2["versions"])
    assert champion(settings, model="bpr") == champion_night_2

    # A bad batch fails validation: nothing from the split on runs, and features and models are untouched.
    lake_before, features_before = _lake_versions(settings), _feature_files(settings)
    bad = run(NIGHT_3, _conf(ml100k_slice(tmp_path / "bad", users=40, corrupt=True)))
    assert bad["state"] == "failed"
    assert bad["tasks"]["validate"] == "failed"
    for task in ("split", "materialize", "evaluate", "register", "promote", "train_cora", "train_delrec",
                 "train_align"):
        assert bad["tasks"].get(task) in ("upstream_failed", None), (task, bad["tasks"])
    assert _registry_state(settings) == state
    assert _feature_files(settings) == features_before
    after = _lake_versions(settings)
    assert {k: after[k] for k in after if k != "interactions"} == {
        k: lake_before[k] for k in lake_before if k != "interactions"
    }


def test_demo_runs_the_nightly_dag_and_reports_its_outcome(tmp_path, monkeypatch):
    """``ktrec demo`` for real on 30 users, 1 epoch: its own Airflow home, the DAG, the registry, the lake."""
    from jobs.core import lake
    from jobs.core.settings import Settings
    from jobs.nightly import demo
    from jobs.registry import tracking as registry
    from jobs.registry.gate import champion

    for key, value in SMALL_SPARK.items():
        monkeypatch.setenv(key, value)
    dataset = ml100k_slice(tmp_path / "data", users=30)
    settings = Settings(home=tmp_path / "ktrec", profile="local", dataset=dataset)
    out = demo.run(settings, run_date=date(2026, 3, 1), models=["bpr"], epochs=1)
    print(f"ktrec demo wall time (30 users, 1 epoch): {out['seconds']} s", flush=True)

    assert out["run_date"] == "2026-03-01" and (settings.airflow_home / "airflow.db").is_file()
    assert all(lake.exists(settings, t) for t in NIGHT_TABLES)
    assert _interaction_rows(settings) == _ratings_in(dataset)
    assert Path(out["data_docs"]).is_file()
    client = registry.client(settings)
    keys = {r.data.tags["ktrec.run_key"] for r in client.search_runs([registry.experiment_id(settings, client)])}
    assert keys == {"ktrec_nightly/2026-03-01/bpr/baseline", "ktrec_nightly/2026-03-01/bpr/kt"}
    assert str(client.get_model_version_by_alias("ktrec-bpr", "challenger").version) == "1"
    # The demo's report is the night's decision, and the registry ends as the hand-scored gate says.
    passes = _expected_verdict(settings, "2026-03-01")
    assert champion(settings, model="bpr") == ("1" if passes else None)
    [reported] = out["models"]
    assert (reported["model"], reported["version"], reported["promoted"]) == ("bpr", "1", passes)
    assert reported["champion"] == champion(settings, model="bpr")
