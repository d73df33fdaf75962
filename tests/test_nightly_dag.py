"""The nightly DAG end to end with ``dag.test()`` on a slice of MovieLens 100K, embedded settings
(real Spark, Great Expectations, Feast, MLflow): a good night, the same night again, and a bad batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from airflow_env import DAGS, airflow_env, setup_airflow
from nightly_data import ml100k_slice

pytestmark = pytest.mark.slow
RUNNER = Path(__file__).with_name("dag_test_runner.py")
NIGHT_1, NIGHT_2, NIGHT_3 = (f"2026-03-0{day}T02:00:00+00:00" for day in (1, 2, 3))
SPLIT_1, SPLIT_2 = "nightly-2026-03-01", "nightly-2026-03-02"  # the split tables are keyed on the date
AFTER_NIGHT_1 = 1772413200  # 2026-03-02T01:00:00Z: events a later log delivers, after night 1 ended


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A migrated Airflow home and a KTREC_HOME; returns a function that runs the DAG for a date."""
    root = tmp_path_factory.mktemp("nightly")
    env = airflow_env(
        root / "airflow",
        extra={
            "KTREC_HOME": str(root / "ktrec"),
            "KTREC_PROFILE": "local",
            "KTREC_SPARK__MASTER": "local[2]",
            "KTREC_SPARK__SHUFFLE_PARTITIONS": "2",
            "KTREC_SPARK__DRIVER_MEMORY": "2g",
        },
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


def test_nightly_end_to_end_rerun_and_bad_batch(pipeline, tmp_path):
    run, settings, root = pipeline
    good = ml100k_slice(tmp_path / "good", users=40)

    first = run(NIGHT_1, _conf(good))
    print(f"dag.test() wall time, night 1 (40 users): {first['seconds']} s", flush=True)
    assert first["state"] == "success", first
    # Every task succeeds except CoRA and DELRec, which are off unless the `cora` / `delrec` params ask for them.
    assert {k: v for k, v in first["tasks"].items() if v != "success"} == {"train_cora": "skipped",
                                                                           "train_delrec": "skipped"}
    assert {k for k in first["tasks"] if k.startswith("train[")} == {"train[0]", "train[1]"}
    state = _registry_state(settings)
    assert len(state["runs"]) == 2 and state["versions"] == ["1"]
    gate = state["tags"]["1"]["ktrec.gate"]
    from jobs.registry.gate import champion

    assert (champion(settings, model="bpr") == "1") == (gate == "passed")
    lake_after_first, features_after_first = _lake_versions(settings), _feature_files(settings)

    # The same logical date again: same runs, same version, no duplicated interactions.
    from jobs.core.lake import INTERACTIONS, table_path
    from jobs.core.spark import get_spark

    count = lambda: get_spark(settings).read.parquet(str(table_path(settings, INTERACTIONS))).count()  # noqa: E731
    rows_first = count()
    second = run(NIGHT_1, _conf(good))
    print(f"dag.test() wall time, night 1 again: {second['seconds']} s", flush=True)
    assert second["state"] == "success", second
    again = _registry_state(settings)
    # Same runs and versions; the gate's reason may change ("already the champion"), its verdict not.
    assert (again["runs"], again["versions"]) == (state["runs"], state["versions"])
    assert again["tags"]["1"]["ktrec.gate"] == gate
    assert count() == rows_first

    # Night 2 brings 20 more users whose events happen after night 1; then night 1 is cleared and rerun.
    split_1 = _split_rows(settings, SPLIT_1)
    later = run(NIGHT_2, _conf(ml100k_slice(tmp_path / "later", users=60, late=(41, AFTER_NIGHT_1))))
    assert later["state"] == "success", later
    assert count() > rows_first  # the new events are in the lake...
    split_2 = _split_rows(settings, SPLIT_2)
    assert {u for u, *_ in split_2} - {u for u, *_ in split_1} == {str(u) for u in range(41, 61)}
    rerun = run(NIGHT_1, _conf(good))
    assert rerun["state"] == "success", rerun
    # ...but night 1 rebuilt from the same lake sees none of them: its split is row-for-row the first one.
    assert _split_rows(settings, SPLIT_1) == split_1
    state = _registry_state(settings)

    # A bad batch fails validation: nothing from the split on runs, and features and models are untouched.
    lake_before, features_before = _lake_versions(settings), _feature_files(settings)
    bad = run(NIGHT_3, _conf(ml100k_slice(tmp_path / "bad", users=40, corrupt=True)))
    assert bad["state"] == "failed"
    assert bad["tasks"]["validate"] == "failed"
    for task in ("split", "materialize", "evaluate", "register", "promote", "train_cora", "train_delrec"):
        assert bad["tasks"].get(task) in ("upstream_failed", None), (task, bad["tasks"])
    assert _registry_state(settings) == state
    assert _feature_files(settings) == features_before
    after = _lake_versions(settings)
    assert {k: after[k] for k in after if k != "interactions"} == {
        k: lake_before[k] for k in lake_before if k != "interactions"
    }
    assert lake_after_first and features_after_first
