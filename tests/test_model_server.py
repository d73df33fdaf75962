"""The champion served by the real ``mlflow models serve`` on loopback answers like the Python pyfunc.

A tiny matrix factorisation is trained, logged, registered and promoted through the project's registry
code; the server process loads ``models:/ktrec-bpr@champion`` from the same SQLite registry and is asked
over HTTP for a user's top-10.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pandas as pd
import pytest
from airflow_env import VENV_BIN
from registry_helpers import fit, honest_ndcg, train_data, write_run, write_split
from servers import free_port, wait_http

from jobs.registry import gate, tracking

pytestmark = pytest.mark.servers


@pytest.fixture
def champion(settings, tmp_path):
    """``ktrec-bpr`` v1 promoted to champion: a trained model that beats its one-step baseline."""
    frame = write_split(settings)
    data = train_data(frame)
    logged = {}
    for label, steps, variant in (("weak", 1, "baseline"), ("strong", 60, "kt")):
        model, history = fit(data, steps=steps, seed=0)
        summary = write_run(tmp_path / "runs", model=model, data=data, history=history,
                            ndcg=honest_ndcg(model, data, frame), variant=variant)
        logged[label] = tracking.log_training_run(settings, summary=summary, run_key=f"serve/{label}",
                                                  model=model, train_data=data)
    tracking.register_version(settings, run=logged["strong"], baseline_run_id=logged["weak"]["run_id"])
    assert gate.promote(settings, model="bpr")["promoted"]
    return frame


def test_mlflow_model_server_returns_the_pyfunc_top10(settings, champion, tmp_path):
    import mlflow.pyfunc

    users = ["u0", "u1", "u7"]
    expected = mlflow.pyfunc.load_model("models:/ktrec-bpr@champion").predict(
        pd.DataFrame({"user_id": users}), params={"k": 10})
    port = free_port()
    env = os.environ | {"MLFLOW_TRACKING_URI": settings.mlflow_uri, "MLFLOW_REGISTRY_URI": settings.mlflow_uri,
                        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
                        # The pickled TinyMF class lives in the tests folder (zoo models travel in code_paths).
                        "PYTHONPATH": str(Path(__file__).parent)}
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [shutil.which("mlflow", path=env["PATH"]), "models", "serve", "-m", "models:/ktrec-bpr@champion",
         "-h", "127.0.0.1", "-p", str(port), "--env-manager", "local", "-w", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/ping", timeout=180)
        response = httpx.post(
            f"http://127.0.0.1:{port}/invocations",
            json={"dataframe_split": {"columns": ["user_id"], "data": [[u] for u in users]}, "params": {"k": 10}},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        answer = pd.DataFrame(response.json()["predictions"])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert list(answer["user_id"]) == users
    assert [list(ids) for ids in answer["item_ids"]] == [list(ids) for ids in expected["item_ids"]]
    # Real answers, not empty lists: ten items each, none of them a training item of the user.
    for user, ids in zip(users, answer["item_ids"], strict=True):
        seen = set(champion[(champion["user_id"] == user) & (champion["split"] == "train")]["item_id"])
        assert len(ids) == 10 and not seen & set(ids)
