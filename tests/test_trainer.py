"""The scenario trainer (models.trainer) on a tiny split table: reproducible, early stopping, two stages."""

from __future__ import annotations

import pytest
import torch
from kt_toys import TOY_MODELS, toy_profiles, write_toy_profiles, write_toy_split

from models.data import load_split
from models.scenario import ScenarioError, parse_scenario
from models.trainer import Trainer, evaluate_split

KT_SCENARIO = {"name": "toy-kt", "commands": [
    {"init_model": {"name": "toymf", "config": {"embedding_size": 8}}},
    {"set_kt": {"layer": "user_embedding", "side": "user", "loss": "rmse", "alpha": 0.5}},
    {"train": {"epochs": 3, "lr": 0.05, "batch_size": 32}},
    {"remove_kt": {}},
    {"train": {"epochs": 3, "lr": 0.05, "batch_size": 32, "patience": 1}},
    {"eval": {"split": "valid"}}, {"eval": {"split": "test"}}, {"save": {}},
]}


@pytest.fixture
def split(settings):
    return load_split(write_toy_split(settings))


def _trainer(split, seed=7):
    profiles = {"user": toy_profiles(split.n_users), "item": toy_profiles(split.n_items)}
    return Trainer(data=split, profiles=profiles, seed=seed, models=TOY_MODELS, progress=False)


def test_a_seeded_run_is_reproducible(split):
    scenario = parse_scenario(KT_SCENARIO, models=TOY_MODELS)
    first, second = _trainer(split).run(scenario), _trainer(split).run(scenario)
    assert first.evals["test"].metrics == second.evals["test"].metrics
    assert [(e.loss, e.kt_loss, e.valid_metric) for e in first.history] == \
        [(e.loss, e.kt_loss, e.valid_metric) for e in second.history]
    other = _trainer(split, seed=8).run(scenario)
    assert [e.loss for e in other.history] != [e.loss for e in first.history]


def test_two_stages_record_kt_then_plain_and_leave_no_hook(split):
    result = _trainer(split).run(parse_scenario(KT_SCENARIO, models=TOY_MODELS))
    stage0 = [e for e in result.history if e.stage == 0]
    stage1 = [e for e in result.history if e.stage == 1]
    assert len(stage0) == 3 and all(e.kt and e.kt_loss > 0 for e in stage0)
    assert stage1 and all(not e.kt and e.kt_loss is None and e.loss == e.rec_loss for e in stage1)
    assert all(len(m._forward_hooks) == 0 for m in result.model.modules())
    assert set(result.saved) == {"model"} and set(result.evals) == {"valid", "test"}


def test_early_stopping_restores_the_best_epoch(split):
    scenario = parse_scenario({"commands": [
        {"init_model": {"name": "toymf", "config": {"embedding_size": 8}}},
        {"train": {"epochs": 12, "lr": 0.5, "batch_size": 16, "patience": 2}},
    ]}, models=TOY_MODELS)
    result = _trainer(split).run(scenario)
    scores = [e.valid_metric for e in result.history]
    best = max(scores)
    assert result.best_epochs == [scores.index(best) + 1]
    assert evaluate_split(result.model, split, "valid").metrics["ndcg_at_10"] == pytest.approx(best)


def test_freeze_keeps_weights_fixed(split):
    scenario = parse_scenario({"commands": [
        {"init_model": {"name": "toymf", "config": {"embedding_size": 8}}},
        {"freeze": ["user_embedding"]}, {"train": {"epochs": 2, "lr": 0.05}},
    ]}, models=TOY_MODELS)
    torch.manual_seed(7)
    initial = TOY_MODELS["toymf"](split.n_users, split.n_items, embedding_size=8).user_embedding.weight.clone()
    result = _trainer(split).run(scenario)
    assert torch.equal(result.model.user_embedding.weight, initial)
    assert not result.model.user_embedding.weight.requires_grad


def test_model_errors_stop_the_run_before_training(split):
    scenario = parse_scenario({"commands": [
        {"init_model": {"name": "toymf", "config": {"embedding_size": 8}}},
        {"set_kt": {"layer": "tower"}}, {"train": {"epochs": 50}},
    ]}, models=TOY_MODELS)
    with pytest.raises(ScenarioError, match="unknown layer 'tower'"):
        _trainer(split).run(scenario)


def _toy_profile_rows(n: int, generator: str, when: str, groups: bool = True):
    emb = toy_profiles(n, groups=groups).embeddings.tolist()
    return [(f"u{i}", emb[i], generator, when) for i in range(n)]


def test_train_job_writes_metrics_model_and_scenario_that_reload(settings, tmp_path):
    import json

    import numpy as np
    import pandas as pd
    import yaml

    from jobs.train.run_folder import load_model
    from jobs.train.scenario_run import run

    write_toy_split(settings)
    # Before train_end (2024-01-01 + < 240 h): used. After it: a future version that must be ignored.
    rows = _toy_profile_rows(30, "template:none:v1", "2024-01-01T00:00:00Z")
    rows += [(f"u{i}", [9.0] * 16, "template:none:v2", "2031-01-01T00:00:00Z") for i in range(30)]
    write_toy_profiles(settings, entity="user", rows=rows)
    path = tmp_path / "kt.yaml"
    path.write_text(yaml.safe_dump(KT_SCENARIO))
    summary = run(settings, scenario=path, split="toy", seed=3, epochs=4, models=TOY_MODELS, progress=False)
    assert summary["variant"] == "kt" and summary["model"] == "toymf"
    assert summary["profile_version"]["user"]["generators"] == ["template:none:v1"]
    assert summary["profile_version"]["user"]["source"] == "feast"
    assert summary["profile_version"]["user"]["coverage"] == 1.0
    metrics = json.loads(open(summary["metrics_path"]).read())
    assert metrics["protocol"] == "full" and metrics["test"]["metrics"] == summary["metrics"]
    assert len(metrics["history"]) == 4  # --epochs 4 shared by the two stages
    per_user = pd.read_parquet(f"{summary['run_dir']}/per_user_test.parquet")
    assert len(per_user) == metrics["test"]["n_users"]
    assert per_user["ndcg_at_10"].mean() == pytest.approx(summary["metrics"]["ndcg_at_10"])
    model = load_model(summary["run_dir"], models=TOY_MODELS)
    split = load_split(settings.lake / "splits" / "toy")
    assert evaluate_split(model, split, "test").metrics == summary["metrics"]
    replay = parse_scenario(yaml.safe_load(open(summary["scenario_path"])), models=TOY_MODELS)
    assert [type(c) for c in replay.commands] == [type(c) for c in parse_scenario(KT_SCENARIO).commands]
    assert not list(settings.runs_dir.glob(".*tmp"))
    saved = torch.load(f"{summary['run_dir']}/save_model.pt", weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())  # save was the last command
    assert np.isfinite(metrics["seconds_per_epoch"])


def test_feast_and_lake_profile_reads_agree_point_in_time(settings):
    from datetime import UTC, datetime

    import numpy as np

    from jobs.train.profile_targets import read_profiles

    rows = _toy_profile_rows(6, "template:none:v1", "2024-01-01T00:00:00Z")
    rows += [(f"u{i}", [float(i)] * 16, "vllm:smollm2:v1", "2024-02-01T00:00:00Z") for i in range(3)]
    write_toy_profiles(settings, entity="user", rows=rows)
    ids = [f"u{i}" for i in range(8)]  # u6, u7 have no profile

    def read(when, generator=None):
        return read_profiles(settings, entity="user", as_of=datetime(*when, tzinfo=UTC), ids=ids,
                             generator=generator)

    before, version = read((2024, 1, 15))  # Feast, before the newer generator's rows exist
    assert version["source"] == "feast" and sorted(before) == ids[:6]
    lake_before, lake_version = read((2024, 1, 15), "template:")
    assert lake_version["source"] == "lake"
    assert all(np.allclose(before[k], lake_before[k]) for k in ids[:6])
    after, version = read((2024, 3, 1))  # Feast serves the newest profile whichever generator wrote it
    assert version["generators"] == ["template:none:v1", "vllm:smollm2:v1"]
    assert np.allclose(after["u1"], 1.0) and np.allclose(after["u4"], before["u4"])
    only_template, _ = read((2024, 3, 1), "template:")
    assert np.allclose(only_template["u1"], before["u1"])


def test_train_job_errors_are_clear(settings, tmp_path):
    import yaml

    from jobs.train.scenario_run import run

    path = tmp_path / "kt.yaml"
    path.write_text(yaml.safe_dump(KT_SCENARIO))
    with pytest.raises(FileNotFoundError, match="split 'nope' does not exist"):
        run(settings, scenario=path, split="nope", seed=1, models=TOY_MODELS)
    write_toy_split(settings)
    with pytest.raises(FileNotFoundError, match="ktrec profiles --entity user"):
        run(settings, scenario=path, split="toy", seed=1, models=TOY_MODELS)
    write_toy_profiles(settings, entity="user", rows=_toy_profile_rows(30, "template:x:v1", "2030-01-01T00:00:00Z"))
    with pytest.raises(LookupError, match="no user profiles with event_timestamp <="):
        run(settings, scenario=path, split="toy", seed=1, models=TOY_MODELS)


def test_ktrec_train_cli_end_to_end(settings, tmp_path):
    import json

    import yaml
    from typer.testing import CliRunner

    from jobs.cli import app
    from jobs.train.run_folder import load_model

    write_toy_split(settings)
    emb = toy_profiles(40).embeddings.tolist()
    write_toy_profiles(settings, entity="item",
                       rows=[(f"i{i}", emb[i], "template:none:v1", "2023-12-31T00:00:00Z") for i in range(40)])
    path = tmp_path / "bpr-kt.yaml"
    path.write_text(yaml.safe_dump({"name": "bpr-kt", "commands": [
        {"init_model": {"name": "bpr", "config": {"embedding_dim": 8}}},
        {"set_kt": {"layer": "item_embedding", "side": "item", "loss": "cosine", "alpha": 0.5}},
        {"train": {"epochs": 1, "lr": 0.01, "batch_size": 64}}, {"remove_kt": {}},
        {"train": {"epochs": 1, "lr": 0.01, "batch_size": 64}}]}))
    result = CliRunner().invoke(app, ["train", "--scenario", str(path), "--split", "toy", "--seed", "5", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["model"] == "bpr" and summary["variant"] == "kt" and 0 <= summary["metrics"]["ndcg_at_10"] <= 1
    model = load_model(summary["run_dir"])
    split = load_split(settings.lake / "splits" / "toy")
    assert evaluate_split(model, split, "test").metrics == pytest.approx(summary["metrics"])
    bad = CliRunner().invoke(app, ["train", "--scenario", str(path), "--split", "missing", "--json"])
    assert bad.exit_code == 1 and "split 'missing' does not exist" in bad.output
