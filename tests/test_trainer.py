"""The scenario trainer (models.trainer) on a tiny split table: reproducible, early stopping, two stages."""

from __future__ import annotations

import pytest
import torch

from kt_toys import TOY_MODELS, toy_profiles, write_toy_split
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
