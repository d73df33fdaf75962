"""Registry and promotion gate on a real embedded MLflow (SQLite + local artifacts) with tiny torch models."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from registry_helpers import (
    fit,
    honest_ndcg,
    ndcg_at_10_by_hand,
    run_folder_ndcg,
    train_data,
    write_run,
    write_split,
)

from jobs.registry import gate as promotion
from jobs.registry import tracking as registry
from jobs.train import scenario_run


def test_hand_written_ndcg_on_three_users():
    """The tests' own NDCG@10 on a case worked out by hand (positions are 1-based, gain 1/log2(p + 1)).

    u0 ranks 2 (.8), 3, 4, 1 (item 0 is known): its target 2 is first      -> 1 / 1             = 1
    u1 ranks 0, 1, 2, 3, 4: targets 2 and 4 at positions 3 and 5           -> (1/2 + 1/log2 6) / (1 + 1/log2 3)
                                                                           =  0.88685 / 1.63093 = 0.54377
    u2 ranks 3, 2, 1, 0 (item 4 is known): its target 0 is fourth          -> 1 / log2 5        = 0.43068
    mean                                                                   -> 1.97445 / 3       = 0.65815
    """
    scores = np.array([[0.9, 0.1, 0.8, 0.3, 0.2], [0.5, 0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4, 0.5]])
    known = np.zeros((3, 5), dtype=bool)
    known[0, 0] = known[2, 4] = True
    assert ndcg_at_10_by_hand(scores, known, {0: {2}, 1: {2, 4}, 2: {0}}) == pytest.approx(0.65815, abs=1e-5)
    # Only the first ten positions count: of 12 items ranked by index, item 9 is tenth, item 10 eleventh.
    ranked = np.arange(12, 0, -1)[None, :].astype(float)
    nothing = np.zeros((1, 12), dtype=bool)
    assert ndcg_at_10_by_hand(ranked, nothing, {0: {9}}) == pytest.approx(0.28906, abs=1e-5)  # 1 / log2 11
    assert ndcg_at_10_by_hand(ranked, nothing, {0: {10}}) == 0.0


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory):
    """An empty, fully migrated MLflow SQLite store, built once (migrations take ~15 s here)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def trained(settings, tmp_path, migrated_db):
    """A split, an untrained (weak) and a trained (strong) model with their honest test NDCG@10."""
    settings.root.mkdir(parents=True, exist_ok=True)
    shutil.copy(migrated_db, settings.root / "mlflow.db")
    frame = write_split(settings)
    data = train_data(frame)
    runs = tmp_path / "runs"
    out = {"frame": frame, "data": data, "runs": runs}
    for label, steps, seed, variant in (("weak", 1, 1, "baseline"), ("strong", 60, 0, "kt")):
        model, history = fit(data, steps=steps, seed=seed)
        out[label] = write_run(
            runs,
            model=model,
            data=data,
            history=history,
            ndcg=honest_ndcg(model, data, frame),
            variant=variant,
        )
        out[f"{label}_model"] = model
    return out


def log(settings, trained, label, key, *, variant=None, data=None):
    """Log the run ``label`` (weak/strong) under ``key``, optionally relabelled as another variant."""
    summary = trained[label] | ({"variant": variant} if variant else {})
    return registry.log_training_run(
        settings,
        summary=summary,
        run_key=key,
        model=trained[f"{label}_model"],
        train_data=data or trained["data"],
    )


def test_run_is_logged_registered_and_gated(settings, trained):
    weak, strong = trained["weak"], trained["strong"]  # noqa: F841 (read by some tests only)
    assert strong["metrics"]["ndcg_at_10"] > weak["metrics"]["ndcg_at_10"]  # the data makes training matter
    baseline = log(settings, trained, "weak", "t/2026-01-01/bpr/baseline")
    run = log(settings, trained, "strong", "t/2026-01-01/bpr/kt")
    logged = registry.client(settings).get_run(run["run_id"])
    assert logged.data.metrics["test_ndcg_at_10"] == pytest.approx(strong["metrics"]["ndcg_at_10"])
    assert logged.data.params["scenario.commands.0.init_model.config.embedding_dim"] == "8"
    history = registry.client(settings).get_metric_history(run["run_id"], "loss")
    assert [m.step for m in history] == list(range(1, 61))
    assert {d.dataset.name for d in logged.inputs.dataset_inputs} == {"split:loo"}
    artifacts = {a.path for a in registry.client(settings).list_artifacts(run["run_id"], "plots")}
    assert artifacts == {"plots/training_curves.png", "plots/test_metrics.png"}

    version = registry.register_version(settings, run=run, baseline_run_id=baseline["run_id"])
    assert (version["name"], version["version"]) == ("ktrec-bpr", "1")
    decision = promotion.promote(settings, model="bpr")
    assert decision["promoted"] and promotion.champion(settings, model="bpr") == "1"

    # The served model answers with item ids of the user's taste group, never a training item.
    import mlflow.pyfunc

    served = mlflow.pyfunc.load_model("models:/ktrec-bpr@champion")
    answer = served.predict(pd.DataFrame({"user_id": ["u0", "nobody"]}), params={"k": 5})
    seen = set(trained["frame"].query("user_id == 'u0' and split == 'train'")["item_id"])
    assert len(answer["item_ids"][0]) == 5 and not seen & set(answer["item_ids"][0])
    assert list(answer["item_ids"][1]) == []


def test_worse_model_is_refused_with_reason(settings, trained):
    weak, strong = trained["weak"], trained["strong"]  # noqa: F841 (read by some tests only)
    base = log(settings, trained, "weak", "n1/bpr/baseline")
    first = registry.register_version(
        settings, run=log(settings, trained, "strong", "n1/bpr/kt"), baseline_run_id=base["run_id"]
    )
    assert promotion.promote(settings, model="bpr")["promoted"]
    # Night 2: the "KT" model is the weak one; it loses to the champion and to its baseline.
    second = registry.register_version(
        settings, run=log(settings, trained, "weak", "n2/bpr/kt"), baseline_run_id=base["run_id"]
    )
    decision = promotion.promote(settings, model="bpr")
    assert not decision["promoted"] and decision["version"] == second["version"] == "2"
    assert "baseline" in decision["reason"]
    version = registry.client(settings).get_model_version("ktrec-bpr", "2")
    assert version.tags["ktrec.gate"] == "refused" and version.tags["ktrec.gate_reason"] == decision["reason"]
    assert promotion.champion(settings, model="bpr") == first["version"]


def test_champion_margin_and_rollback(settings, trained, monkeypatch):
    weak, strong = trained["weak"], trained["strong"]  # noqa: F841 (read by some tests only)
    base = log(settings, trained, "weak", "m/bpr/baseline")
    run = log(settings, trained, "strong", "m/bpr/kt")
    registry.register_version(settings, run=run, baseline_run_id=base["run_id"])
    promotion.promote(settings, model="bpr")
    # The same model again (another night): a tie does not beat the champion by the margin.
    v2 = registry.register_version(
        settings, run=log(settings, trained, "strong", "m2/bpr/kt"), baseline_run_id=base["run_id"]
    )
    decision = promotion.promote(settings, model="bpr")
    assert not decision["promoted"] and "champion v1" in decision["reason"]
    assert decision["champion_ndcg"] == pytest.approx(strong["metrics"]["ndcg_at_10"])
    # A forced rollback/roll-forward moves the alias; the tag records where it came from.
    moved = promotion.rollback(settings, model="bpr", to_version=v2["version"])
    assert moved == {"model": "ktrec-bpr", "champion": "2", "previous_champion": "1"}
    promotion.rollback(settings, model="bpr", to_version="1")
    assert promotion.champion(settings, model="bpr") == "1"
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException):
        promotion.rollback(settings, model="bpr", to_version="9")


def test_rerun_duplicates_nothing(settings, trained):
    weak, strong = trained["weak"], trained["strong"]  # noqa: F841 (read by some tests only)
    results = []
    for _ in range(2):
        base = log(settings, trained, "weak", "r/bpr/baseline")
        run = log(settings, trained, "strong", "r/bpr/kt")
        results.append(
            (base, run, registry.register_version(settings, run=run, baseline_run_id=base["run_id"]))
        )
    (b1, r1, v1), (b2, r2, v2) = results
    assert (b1["run_id"], r1["run_id"], v1["version"]) == (b2["run_id"], r2["run_id"], v2["version"])
    assert r2["reused"] and not v2["created"]
    mlflow_client = registry.client(settings)
    assert len(mlflow_client.search_runs([registry.experiment_id(settings, mlflow_client)])) == 2
    assert len(mlflow_client.search_model_versions("name = 'ktrec-bpr'")) == 1


def test_champion_rescored_on_new_split(settings, trained):
    weak, strong = trained["weak"], trained["strong"]  # noqa: F841 (read by some tests only)
    base = log(settings, trained, "weak", "s1/bpr/baseline")
    run = log(settings, trained, "strong", "s1/bpr/kt")
    registry.register_version(settings, run=run, baseline_run_id=base["run_id"])
    promotion.promote(settings, model="bpr")
    # A new night: a new split version, so the stored champion metric no longer applies.
    frame = write_split(settings, seed=7)
    data = train_data(frame)
    model, _ = fit(data, steps=60, seed=3)
    kt = write_run(
        trained["runs"],
        model=model,
        data=data,
        history=[],
        ndcg=honest_ndcg(model, data, frame),
        variant="kt",
    )
    untrained, _ = fit(data, steps=0)
    bl = write_run(
        trained["runs"],
        model=untrained,
        data=data,
        history=[],
        ndcg=honest_ndcg(untrained, data, frame),
        variant="baseline",
    )
    base2 = registry.log_training_run(
        settings, summary=bl, run_key="s2/bpr/baseline", model=untrained, train_data=data
    )
    run2 = registry.log_training_run(settings, summary=kt, run_key="s2/bpr/kt", model=model, train_data=data)
    registry.register_version(settings, run=run2, baseline_run_id=base2["run_id"])
    decision = promotion.gate(settings, model="bpr")
    # The champion (the strong model of night 1) scored by hand on the new split's test rows.
    expected = honest_ndcg(trained["strong_model"], data, frame)
    assert decision.champion_ndcg == pytest.approx(expected, abs=1e-6)
    assert decision.champion_ndcg != pytest.approx(strong["metrics"]["ndcg_at_10"])


STRONG_BPR = """\
name: bpr-strong
commands:
  - init_model: {name: bpr, config: {embedding_dim: 16}}
  - train: {epochs: 60, lr: 0.05, batch_size: 256, patience: 60, metric: ndcg@10}
  - eval: {split: valid}
  - eval: {split: test}
  - save: {}
"""


def test_cli_register_and_promote(settings, trained, tmp_path):
    """The CLI path on the trainer's own run folders: a well-trained BPR against a 1-epoch one, both ways."""
    from typer.testing import CliRunner

    from jobs.cli import app
    from jobs.core.settings import REPO_ROOT

    strong_yaml = tmp_path / "bpr-strong.yaml"
    strong_yaml.write_text(STRONG_BPR)
    # One epoch at the baseline's small learning rate barely moves the random initial embeddings; sixty
    # full passes at 0.05 learn the two taste groups of the split.
    weak, strong = (
        scenario_run.run(
            settings, scenario=scenario, split="loo", seed=seed, epochs=epochs, progress=False,
            output_dir=trained["runs"] / f"cli-{label}",
        )["run_dir"]
        for label, scenario, seed, epochs in (
            ("weak", REPO_ROOT / "conf" / "bpr" / "baseline.yaml", 1, 1),
            ("strong", strong_yaml, 2, None),
        )
    )
    # The scenario is what it claims to be, measured by hand on the split: the strong run is far better.
    assert run_folder_ndcg(settings, strong, "loo") > run_folder_ndcg(settings, weak, "loo") + 0.1

    runner = CliRunner()

    def cli(*args: str):
        out = runner.invoke(app, [*args, "--json"])
        return out.exit_code, json.loads(out.stdout.strip().splitlines()[-1])

    code, registered = cli("register", "--run-dir", strong, "--baseline-dir", weak)
    assert code == 0 and registered["version"] == "1"
    code, result = cli("promote", "--model", "bpr")
    assert (code, result["promoted"], result["version"]) == (0, True, "1")
    assert promotion.champion(settings, model="bpr") == "1"

    # The weak run as the challenger, the strong one as its baseline: it must be refused, exit code 2.
    code, registered = cli("register", "--run-dir", weak, "--baseline-dir", strong)
    assert code == 0 and registered["version"] == "2"
    code, result = cli("promote", "--model", "bpr")
    assert (code, result["promoted"], result["version"]) == (2, False, "2")
    assert "baseline" in result["reason"]
    assert promotion.champion(settings, model="bpr") == "1"

    code, moved = cli("promote", "--model", "bpr", "--rollback-to", "2")
    assert code == 0 and moved == {"model": "ktrec-bpr", "champion": "2", "previous_champion": "1"}
    assert promotion.champion(settings, model="bpr") == "2"
