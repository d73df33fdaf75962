"""The DAG files parse cleanly and quickly, and the nightly DAG has the intended shape and settings."""

from __future__ import annotations

import time

import pytest
from airflow_env import DAGS, airflow_env

DAG_FILES = sorted(DAGS.glob("*.py"))


@pytest.fixture(scope="module")
def airflow_configured(tmp_path_factory):
    """Point Airflow at a tmp home before it is imported (parsing needs no metadata DB)."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in airflow_env(tmp_path_factory.mktemp("airflow-home")).items():
            mp.setenv(key, value)
        yield


def _imported_by(path) -> set[str]:
    """Modules a fresh interpreter holds after importing only the DAG file (parse-time imports)."""
    import json
    import subprocess
    import sys

    code = (
        "import sys, json, runpy; before = set(sys.modules); runpy.run_path(sys.argv[1]); "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _bag(path):
    from airflow.dag_processing.dagbag import DagBag

    # known_pools makes the bag reject a task whose pool the deployment does not define.
    return DagBag(dag_folder=str(path), known_pools={"default_pool", "gpu"})


@pytest.mark.parametrize("path", DAG_FILES, ids=[p.name for p in DAG_FILES])
def test_dag_file_parses_without_errors(airflow_configured, path):
    import airflow.sdk  # noqa: F401  (Airflow's own import is not the file's parse time)

    started = time.perf_counter()
    bag = _bag(path)
    seconds = time.perf_counter() - started
    assert bag.import_errors == {}
    assert bag.dags, f"{path.name} defines no DAG"
    # A structure check, not a benchmark: parsing must not do real work (heavy imports, I/O).
    assert seconds < 5, f"{path.name} took {seconds:.1f}s to parse"
    imported = _imported_by(path)
    assert not {"torch", "pyspark", "mlflow"} & {m.split(".")[0] for m in imported}
    # Of the project only the light names module (and its empty parent packages) is read at parse time.
    assert {m for m in imported if m.split(".")[0] == "jobs"} <= {"jobs", "jobs.core", "jobs.core.names"}


def test_dag_lists_equal_the_code_they_name():
    """The DAGs' model and backend choices are the zoo's models and the LLM backends, not a copy."""
    from jobs.core import names
    from models.cf import MODELS
    from models.llm import BACKENDS

    assert names.MODELS == tuple(MODELS) and names.BACKENDS == BACKENDS


def test_nightly_structure(airflow_configured):
    dag = _bag(DAGS / "ktrec_nightly.py").dags["ktrec_nightly"]
    downstream = {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}
    assert downstream == {
        "ingest": ["validate"],
        "validate": ["split"],
        "split": ["profiles", "stats", "train", "train_align", "train_cora", "train_delrec"],
        "profiles": ["validate_profiles"],
        "validate_profiles": ["stats"],
        "stats": ["materialize"],
        "materialize": ["train"],
        "selected_models": ["train"],
        "train": ["evaluate", "train_align", "train_cora", "train_delrec"],
        "train_cora": [],
        "train_delrec": [],
        "train_align": [],
        "evaluate": ["gate"],
        "gate": ["register"],
        "register": ["promote"],
        "promote": [],
    }
    gpu_tasks = {"profiles", "train", "train_cora", "train_delrec", "train_align"}
    assert {t.task_id for t in dag.tasks if t.pool == "gpu"} == gpu_tasks
    assert {t.task_id for t in dag.tasks if t.queue == "gpu"} == gpu_tasks
    assert all(t.execution_timeout is not None and t.retry_exponential_backoff for t in dag.tasks)
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert dag.timetable.expression == "0 2 * * *" and dag.start_date.tzinfo is not None
    assert dag.doc_md and "nightly" in dag.tags


def test_nightly_params_are_typed_and_documented(airflow_configured):
    from airflow.sdk.exceptions import ParamValidationError

    dag = _bag(DAGS / "ktrec_nightly.py").dags["ktrec_nightly"]
    for name in dag.params:
        param = dag.params.get_param(name)
        assert param.description and param.schema.get("title") and param.schema.get("section"), name
        assert "type" in param.schema, name
    dag.params.validate()  # the defaults are valid
    delrec = dag.params.get_param("delrec")  # off by default; the trigger form says what it does
    assert delrec.value is False and delrec.schema["type"] == "boolean" and "ktrec-delrec" in delrec.description
    align = dag.params.get_param("align")
    assert align.value is False and align.schema["type"] == "boolean" and "ktrec-align" in align.description
    models, epochs = dag.params.get_param("models"), dag.params.get_param("epochs")
    processes = dag.params.get_param("num_processes")
    assert models.resolve(value=["bpr", "sasrec"]) == ["bpr", "sasrec"]
    assert epochs.resolve(value=None) is None and epochs.resolve(value=3) == 3  # optional allows null
    assert processes.resolve() == 1 and processes.resolve(value=2) == 2  # 1: today's one-process training
    for param, bad in ((models, ["not-a-model"]), (models, []), (epochs, 0), (processes, 0), (processes, None)):
        with pytest.raises(ParamValidationError):
            param.resolve(value=bad)


def test_promote_dag_structure(airflow_configured):
    dag = _bag(DAGS / "ktrec_promote.py").dags["ktrec_promote"]
    assert dag.schedule is None or dag.timetable.summary in ("None", "")
    assert {p for p in dag.params} == {"model", "version", "rollback_to"}
    assert [t.task_id for t in dag.tasks] == ["change_champion"]
