"""Airflow and MLflow as users run them: real services on loopback, Postgres metadata, REST API, UI.

Airflow runs through infra/airflow.sh (LocalExecutor, metadata on a fresh Postgres database); runs are
triggered through the REST API v2 with a JWT from the simple auth manager. MLflow runs as
``mlflow server`` on Postgres with a local artifact root.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from registry_helpers import fit, honest_ndcg, train_data, write_run, write_split
from servers import (
    airflow_services,
    airflow_token,
    mlflow_server,
    postgres_database,
    trigger_and_wait,
)

from jobs.core.settings import REPO_ROOT, Settings
from jobs.registry import gate as promotion
from jobs.registry import tracking as registry

pytestmark = pytest.mark.servers
ARTIFACTS = REPO_ROOT / "test-artifacts"


def _registry_with_two_versions(settings: Settings, runs: Path) -> None:
    """v1 (an untrained model) is champion; v2 (trained, beats its baseline) is the challenger."""
    frame = write_split(settings)
    data = train_data(frame)
    logged = {}
    for label, steps, seed, variant in (
        ("base", 0, 1, "baseline"),
        ("weak", 1, 2, "kt"),
        ("strong", 60, 0, "kt"),
    ):
        model, history = fit(data, steps=steps, seed=seed)
        summary = write_run(
            runs,
            model=model,
            data=data,
            history=history,
            ndcg=honest_ndcg(model, data, frame),
            variant=variant,
        )
        logged[label] = registry.log_training_run(
            settings, summary=summary, run_key=f"srv/{label}", model=model, train_data=data
        )
    for label in ("weak", "strong"):
        registry.register_version(settings, run=logged[label], baseline_run_id=logged["base"]["run_id"])
    promotion.rollback(settings, model="bpr", to_version="1")


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    """Airflow services with a KTREC_HOME holding a small registry; yields (base_url, token, settings)."""
    root = tmp_path_factory.mktemp("airflow-servers")
    ktrec_home = root / "ktrec"
    settings = Settings(home=ktrec_home, profile="local")
    _registry_with_two_versions(settings, root / "runs")
    home = root / "airflow"
    home.mkdir()
    with postgres_database("ktrec_airflow_test") as url:
        env = {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
            "KTREC_HOME": str(ktrec_home),
            "KTREC_PROFILE": "local",
            "KTREC_SPARK__MASTER": "local[1]",
            "KTREC_GPU_POOL_SLOTS": "1",
            # Only the runs a test triggers: unpausing must not start the latest scheduled night too.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            # The registry above holds models defined in tests/registry_helpers.py; workers load them.
            "PYTHONPATH": str(Path(__file__).parent),
            # Scale-out as users switch it on: CeleryExecutor, Redis broker, a `default` and a `gpu` worker.
            "KTREC_AIRFLOW_PROFILE": "celery",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:6379/{9 + os.getpid() % 6}",
        }
        with airflow_services(home, env=env) as base:
            yield base, airflow_token(base, home), settings


def test_promote_dag_runs_through_the_rest_api(airflow):
    base, token, settings = airflow
    assert promotion.champion(settings, model="bpr") == "1"
    run = trigger_and_wait(
        base,
        token,
        "ktrec_promote",
        conf={"model": "bpr", "version": None, "rollback_to": None},
        logical_date=None,
        timeout=300,
    )
    assert run["state"] == "success", run
    assert run["task_states"] == {"change_champion": "success"}
    assert promotion.champion(settings, model="bpr") == "2"


FORM_SECTIONS = {  # section -> field titles and descriptions the trigger form must show
    "Data": ["Dataset path", "Full refresh", "Split strategy",
             "Regenerate every profile instead of only those whose inputs changed."],
    "Profiles": ["Profile backend", "LLM backend for profiles; empty uses the configured one."],
    "Training": ["Models", "Epochs", "Train CoRA", "CF models to retrain; each trains as baseline and with LLM-KT."],
    "Registry": ["Promote"],
}


def test_trigger_form_shows_params_and_descriptions(airflow):
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").is_file():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    base, token, _ = airflow
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1400})
            context.add_cookies([{"name": "_token", "value": token, "url": base}])
            page = context.new_page()
            page.goto(f"{base}/dags/ktrec_nightly", wait_until="networkidle")
            page.get_by_role("button", name="Trigger").first.click()
            dialog = page.get_by_role("dialog")
            for section, texts in FORM_SECTIONS.items():  # one section opens at a time
                dialog.get_by_role("button", name=section, exact=True).click()
                for text in texts:
                    dialog.get_by_text(text).first.wait_for(state="visible", timeout=15_000)
                page.screenshot(path=str(ARTIFACTS / f"ktrec_nightly_trigger_{section.lower()}.png"))
        finally:
            browser.close()
    assert (ARTIFACTS / "ktrec_nightly_trigger_training.png").stat().st_size > 10_000


@pytest.mark.slow
def test_nightly_runs_through_the_rest_api(airflow, tmp_path):
    from nightly_data import ml100k_slice

    base, token, settings = airflow
    data = ml100k_slice(tmp_path / "ml-100k-slice", users=40)
    run = trigger_and_wait(
        base,
        token,
        "ktrec_nightly",
        conf={
            "dataset": str(data),
            "models": ["bpr"],
            "epochs": 1,
            "profile_backend": "template",
            "full_refresh": False,
            "split_strategy": "random",
            "promote": True,
        },
        logical_date="2026-03-01T02:00:00Z",
        timeout=1500,
    )
    assert run["state"] == "success", run
    states = run["task_states"]
    optional = ("train_cora", "train_delrec", "train_align")  # CoRA, DELRec and alignment are off by default
    assert {task: states.pop(task) for task in optional} == dict.fromkeys(optional, "skipped")
    assert set(states.values()) == {"success"}
    # Celery: the `gpu` queue's tasks ran on the gpu worker only, everything else on the default worker.
    ran = {key: where for key, where in run["task_hosts"].items() if key[0] not in optional}
    gpu_tasks = {"profiles", "train"}
    assert {where for (task, _), where in ran.items() if task in gpu_tasks} == {("gpu", "gpu")}
    assert {where for (task, _), where in ran.items() if task not in gpu_tasks} == {("default", "default")}


def test_registry_on_an_mlflow_server(tmp_path):
    """The same register/gate/promote flow against `mlflow server` on Postgres."""
    with (
        postgres_database("ktrec_mlflow_test") as url,
        mlflow_server(tmp_path / "mlartifacts", backend_uri=url) as server,
    ):
        settings = Settings(home=tmp_path / "home", profile="local", mlflow={"tracking_uri": server})
        _registry_with_two_versions(settings, tmp_path / "runs")
        decision = promotion.promote(settings, model="bpr")
        assert decision["promoted"] and promotion.champion(settings, model="bpr") == "2"
        version = registry.client(settings).get_model_version("ktrec-bpr", "2")
        assert version.tags["ktrec.gate"] == "passed"
        # Artifacts went through the server to its artifact root, not to the client's KTREC_HOME.
        assert any((tmp_path / "mlartifacts").rglob("MLmodel"))
        assert not (settings.mlflow_artifacts).exists()
    shutil.rmtree(tmp_path / "mlartifacts", ignore_errors=True)
