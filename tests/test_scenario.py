"""Scenario parsing and validation (models.scenario): every problem is reported before training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from kt_toys import TOY_MODELS, ToyGraph, ToyMF, toy_train

from models.kt import layer_width
from models.scenario import (
    Freeze,
    InitModel,
    RemoveKT,
    ScenarioError,
    SetKT,
    Train,
    check_model,
    load_scenario,
    parse_scenario,
)

CONF = Path(__file__).resolve().parents[1] / "conf"
INIT = {"init_model": {"name": "toymf", "config": {"embedding_size": 8}}}
TRAIN = {"train": {"epochs": 2}}


def _parse(*commands, models=TOY_MODELS):
    return parse_scenario({"name": "t", "commands": list(commands)}, models=models)


def test_a_two_stage_scenario_parses_into_typed_commands():
    scenario = _parse(INIT, {"set_kt": {"layer": "user_embedding", "alpha": 0.25, "loss": "cosine"}},
                      {"train": {"epochs": 4, "lr": 0.01, "patience": 2}}, {"remove_kt": None},
                      {"freeze": "user_*"}, TRAIN, {"eval": {"split": "test"}}, {"save": {}})
    assert scenario.variant == "kt"
    assert scenario.model == InitModel("toymf", {"embedding_size": 8})
    assert scenario.commands[1] == SetKT(layer="user_embedding", alpha=0.25, loss="cosine")
    assert scenario.commands[2] == Train(epochs=4, lr=0.01, patience=2)
    assert isinstance(scenario.commands[3], RemoveKT)
    assert scenario.commands[4] == Freeze(modules=("user_*",))
    scaled = scenario.with_epochs(3)
    assert [c.epochs for c in scaled.commands if isinstance(c, Train)] == [2, 1]


@pytest.mark.parametrize("commands, message", [
    ([INIT, {"trian": {"epochs": 1}}], "unknown command 'trian'; valid: ['eval', 'freeze', 'init_model'"),
    ([INIT, {"train": {"epochs": 1, "lrr": 0.1}}], "unknown option 'lrr'; valid: ['batch_size', 'epochs'"),
    ([INIT, {"train": {"lr": 0.1}}], "missing required option 'epochs'"),
    ([INIT, {"train": {"epochs": "ten"}}], "epochs='ten' must be of type int"),
    ([INIT, {"train": {"epochs": 0}}], "epochs=0 is not valid; expected a positive integer"),
    ([INIT, {"train": {"epochs": 1, "metric": "auc@10"}}], "expected recall|ndcg|hr|mrr@K"),
    ([INIT, {"set_kt": {"layer": "x", "loss": "mae"}}, TRAIN],
     "loss='mae' is not valid; expected one of ['rmse', 'cosine']"),
    ([INIT, {"set_kt": {"layer": "x", "alpha": 1.5}}, TRAIN], "alpha=1.5 is not valid; expected a number in [0, 1]"),
    ([INIT, {"set_kt": {"layer": "x", "side": "group"}}, TRAIN], "expected one of ['user', 'item']"),
    ([INIT, {"reduce_dim": {"dim": 8, "method": "umap"}}, TRAIN], "expected one of ['pca']"),
    ([INIT, TRAIN, {"eval": {"split": "dev"}}], "split='dev' is not valid; expected one of ['valid', 'test']"),
    ([INIT, {"freeze": []}, TRAIN], "must be a module-name glob or a non-empty list"),
    ([TRAIN], "the first command must be init_model"),
    ([INIT, INIT, TRAIN], "only one init_model is allowed"),
    ([INIT, {"remove_kt": {}}, TRAIN], "remove_kt without an active set_kt"),
    ([INIT, {"set_kt": {"layer": "a"}}, {"set_kt": {"layer": "b"}}, TRAIN], "set_kt while a transfer is active"),
    ([INIT], "the scenario never trains"),
    ([{"init_model": {"name": "bert"}}, TRAIN], "unknown model 'bert'; valid: ['toygraph', 'toymf']"),
    ([INIT, "train", TRAIN], "expected `- <command>: {...}`"),
])
def test_each_scenario_error_is_caught_with_its_message(commands, message):
    with pytest.raises(ScenarioError) as info:
        _parse(*commands)
    assert message in str(info.value)


def test_all_problems_are_reported_at_once():
    with pytest.raises(ScenarioError) as info:
        _parse(INIT, {"train": {"epochs": 0, "lr": -1}}, {"eval": {"split": "dev"}})
    assert len(info.value.problems) == 3


def test_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("commands: [init_model: {name: toymf}\n")
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(bad)
    bad.write_text("- init_model: {name: toymf}\n")
    with pytest.raises(ScenarioError, match="non-empty `commands` list"):
        load_scenario(bad)


def _check(scenario, model):
    data = toy_train()
    model.setup(data)
    batch = {"user": torch.arange(10), "pos_item": torch.arange(10), "neg_item": torch.arange(10, 20)}
    check_model(scenario, model, profile_sides={"user"},
                width_of=lambda layer, output: layer_width(model, layer, batch, output=output))


@pytest.mark.parametrize("model_cls, commands, message", [
    (ToyMF, [{"set_kt": {"layer": "user_emb"}}],
     "unknown layer 'user_emb'; valid: ['user_embedding', 'item_embedding', 'head']"),
    (ToyMF, [{"reduce_dim": {"dim": 4}}, {"set_kt": {"layer": "user_embedding"}}],
     "dimension mismatch: user profiles reduced to 4 but layer 'user_embedding' is 8 wide"),
    (ToyMF, [{"set_kt": {"layer": "item_embedding", "side": "item"}}],
     "no item profiles for this split; available: ['user']"),
    (ToyMF, [{"freeze": ["tower.*"]}], "'tower.*' matches no module"),
    (ToyGraph, [{"set_kt": {"layer": "user_embedding"}}], "did not run during calculate_loss"),
    (ToyGraph, [{"set_kt": {"layer": "propagate"}}], "returns a tuple of 2; set `output` to 0..1"),
])
def test_model_dependent_errors(model_cls, commands, message):
    scenario = _parse(INIT, *commands, TRAIN)
    with pytest.raises(ScenarioError) as info:
        _check(scenario, model_cls(30, 40, embedding_size=8))
    assert message in str(info.value)


def test_a_valid_scenario_passes_the_model_checks():
    scenario = _parse(INIT, {"reduce_dim": {"dim": 8}}, {"set_kt": {"layer": "user_embedding"}}, TRAIN,
                      {"remove_kt": {}}, {"freeze": ["user_*"]}, TRAIN)
    _check(scenario, ToyMF(30, 40, embedding_size=8))


@pytest.fixture(scope="module")
def toy_split(tmp_path_factory):
    from kt_toys import write_toy_split

    from jobs.core.settings import Settings
    from models.data import load_split

    return load_split(write_toy_split(Settings(home=tmp_path_factory.mktemp("home"))))


@pytest.mark.parametrize("path", sorted(CONF.glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_conf_scenario_passes_all_checks_on_its_model(path, toy_split):
    from kt_toys import toy_profiles

    from models.cf import MODELS
    from models.trainer import Trainer

    scenario = load_scenario(path, models=MODELS)
    assert scenario.name == f"{path.parent.name}-{path.stem}"
    assert scenario.variant == ("kt" if path.name == "kt.yaml" else "baseline")
    split = toy_split
    trainer = Trainer(data=split, profiles={"user": toy_profiles(split.n_users), "item": toy_profiles(split.n_items)},
                      seed=0, progress=False)
    trainer.check(scenario, trainer.build(scenario.model))
