"""No-KT twins (models.scenario.Scenario.twin) and the Optuna search (jobs.train.tune, jobs.train.search_space):
the twin is the KT run with only the transfer taken out, and the search never reads the test split."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from kt_toys import TOY_MODELS, toy_profiles, write_toy_split

from models.data import load_split
from models.scenario import Eval, InitModel, RemoveKT, Save, ScenarioError, SetKT, Train, load_scenario, parse_scenario
from models.trainer import Trainer

CONF = Path(__file__).resolve().parents[1] / "conf"
ZOO = ("bpr", "lightgcn", "neumf", "multvae", "simplex", "sasrec")


@pytest.mark.parametrize("model", ZOO)
def test_each_conf_twin_is_the_kt_scenario_without_its_transfer(model):
    kt = load_scenario(CONF / model / "kt.yaml")
    twin = kt.twin()
    # conf/<model>/kt.yaml: init, set_kt, train, remove_kt, train, eval valid, eval test, save.
    assert [type(c) for c in kt.commands] == [InitModel, SetKT, Train, RemoveKT, Train, Eval, Eval, Save]
    assert [type(c) for c in twin.commands] == [InitModel, Train, Train, Eval, Eval, Save]
    assert twin.commands == tuple(kt.commands[i] for i in (0, 2, 4, 5, 6, 7))  # same stages, epochs, lr, patience
    assert twin.variant == "twin" and kt.variant == "kt" and twin.with_epochs(10).variant == "twin"
    data = yaml.safe_load((CONF / model / "kt.yaml").read_text())
    assert parse_scenario({**data, "twin": True}).commands == twin.commands


def test_a_twin_needs_a_transfer():
    with pytest.raises(ScenarioError, match="no set_kt"):
        load_scenario(CONF / "bpr" / "baseline.yaml").twin()
    with pytest.raises(ScenarioError, match="twin='yes'"):
        parse_scenario({**yaml.safe_load((CONF / "bpr" / "kt.yaml").read_text()), "twin": "yes"})


def _two_stage(model: str, config: dict, layer: str, side: str, alpha: float) -> dict:
    return {"name": f"{model}-probe", "commands": [
        {"init_model": {"name": model, "config": config}},
        {"set_kt": {"layer": layer, "side": side, "loss": "cosine", "alpha": alpha}},
        {"train": {"epochs": 2, "lr": 0.01, "batch_size": 16, "patience": 2}},
        {"remove_kt": {}},
        {"train": {"epochs": 2, "lr": 0.01, "batch_size": 16, "patience": 2}},
    ]}


@pytest.mark.parametrize("model,config,layer,side", [
    ("bpr", {"embedding_dim": 8}, "item_embedding", "item"),
    ("multvae", {"hidden_dim": 16, "latent_dim": 8}, "user_out", "user"),  # dropout: random numbers must line up
])
def test_kt_with_alpha_zero_trains_bit_identical_weights_to_its_twin(settings, model, config, layer, side):
    split = load_split(write_toy_split(settings))
    profiles = {"user": toy_profiles(split.n_users), "item": toy_profiles(split.n_items)}

    def weights(scenario):
        result = Trainer(data=split, profiles=profiles, seed=5, progress=False).run(scenario)
        return result.model.state_dict(), [e.valid_metric for e in result.history]

    twin, twin_valid = weights(parse_scenario(_two_stage(model, config, layer, side, 0.5)).twin())
    off, off_valid = weights(parse_scenario(_two_stage(model, config, layer, side, 0.0)))
    on, _ = weights(parse_scenario(_two_stage(model, config, layer, side, 0.5)))
    assert off_valid == twin_valid
    assert all(torch.equal(off[k], twin[k]) for k in twin)
    assert not all(torch.equal(on[k], twin[k]) for k in twin)  # the transfer does change the weights


SEARCH = {"name": "toy-kt", "commands": [
    {"init_model": {"name": "toymf", "config": {"embedding_size": 8}}},
    {"set_kt": {"layer": "user_embedding", "side": "user", "loss": "cosine", "alpha": 0.5}},
    {"train": {"epochs": 2, "lr": 0.05, "batch_size": 32, "patience": 2}},
    {"remove_kt": {}},
    {"train": {"epochs": 2, "lr": 0.05, "batch_size": 32, "patience": 2}},
    {"eval": {"split": "valid"}}, {"eval": {"split": "test"}}, {"save": {}},
], "search": {"trials": 2, "epochs": 2, "params": {
    "lr": {"low": 0.001, "high": 0.1, "log": True, "target": "train.lr"},
    "dim": {"choices": [4, 8], "target": "init_model.config.embedding_size"},
    "alpha": {"low": 0.1, "high": 0.9, "target": "set_kt.alpha"},
    "hook": {"choices": [{"layer": "user_embedding", "side": "user"}, {"layer": "item_embedding", "side": "item"}],
             "target": "set_kt"},
}}}


def test_search_space_parses_splits_transfer_keys_and_applies_values():
    from jobs.train.search_space import parse_search

    space = parse_search(SEARCH)
    assert (space.trials, space.epochs) == (2, 2)
    assert [p.name for p in space.params] == ["lr", "dim", "alpha", "hook"]
    assert [p.name for p in space.for_twin().params] == ["lr", "dim"]
    out = space.apply(SEARCH, {"lr": 0.02, "dim": 4, "alpha": 0.3, "hook": {"layer": "item_embedding", "side": "item"}})
    assert "search" not in out and "search" in SEARCH  # the original is left alone
    assert [c["train"]["lr"] for c in out["commands"] if "train" in c] == [0.02, 0.02]  # every stage
    assert out["commands"][0]["init_model"]["config"] == {"embedding_size": 4}
    assert out["commands"][1]["set_kt"] == {"layer": "item_embedding", "side": "item", "loss": "cosine", "alpha": 0.3}
    assert SEARCH["commands"][1]["set_kt"]["alpha"] == 0.5


def test_search_space_errors_are_collected():
    from jobs.train.search_space import parse_search

    bad = {**SEARCH, "search": {"trials": 0, "colour": 1, "params": {
        "a": {"low": 0.1, "high": 0.01, "target": "train.lr"},
        "b": {"choices": [1], "target": "nosuch.x"},
        "c": {"low": 0.0, "high": 1.0, "log": True, "target": "train.lr"},
        "d": {"choices": [1, 2], "target": "freeze"}}}}
    with pytest.raises(ScenarioError) as err:
        parse_search(bad)
    text = str(err.value)
    for needle in ("trials=0", "'colour'", "low=0.1 high=0.01", "'nosuch.x' names no command", "log range",
                   "no freeze command", "takes mappings"):
        assert needle in text
    with pytest.raises(ScenarioError, match="no `search:` block"):
        parse_search({"commands": SEARCH["commands"]})


def _rewrite_split(settings, change):
    """Rewrite the toy split table with ``change(frame)`` applied (in place, same meta.json)."""
    import pandas as pd

    from jobs.core.lake import split_table, table_path

    folder = table_path(settings, split_table("toy"))
    part = next(folder.rglob("*.parquet"))
    frame = pd.read_parquet(part)
    change(frame).to_parquet(part, index=False)


def test_the_search_never_reads_test(settings, tmp_path):
    from jobs.train.tune import run

    write_toy_split(settings)
    path = tmp_path / "kt.yaml"
    path.write_text(yaml.safe_dump(SEARCH))
    profiles = toy_profiles(30).embeddings.tolist()
    from kt_toys import write_toy_profiles

    write_toy_profiles(settings, entity="user", rows=[(f"u{i}", profiles[i], "template:v1", "2024-01-01T00:00:00Z")
                                                      for i in range(30)])
    write_toy_profiles(settings, entity="item", rows=[(f"i{i}", profiles[i % 30], "template:v1",
                                                       "2024-01-01T00:00:00Z") for i in range(40)])

    def search(out):
        return run(settings, scenario=path, split="toy", seed=3, generator="template:", models=TOY_MODELS,
                   output_dir=tmp_path / out, progress=False)

    first = search("a")
    assert len(first["values"]) == 2 and first["best_value"] == max(first["values"])
    best = yaml.safe_load(Path(first["paths"]["best.yaml"]).read_text())
    assert "search" not in best and best["commands"][1]["set_kt"]["alpha"] == first["best_params"]["alpha"]

    def shuffle_test(frame):  # every test event moved to another item, half of them removed
        test = frame["split"] == "test"
        frame.loc[test, "item_id"] = [f"i{(int(i[1:]) + 7) % 40}" for i in frame.loc[test, "item_id"]]
        return frame.drop(frame.index[test][::2])

    _rewrite_split(settings, shuffle_test)
    blind = search("b")
    assert blind["values"] == first["values"] and blind["best_params"] == first["best_params"]

    def shuffle_valid(frame):  # the same change on valid must change the search: it is what it reads
        valid = frame["split"] == "valid"
        frame.loc[valid, "item_id"] = [f"i{(int(i[1:]) + 7) % 40}" for i in frame.loc[valid, "item_id"]]
        return frame

    _rewrite_split(settings, shuffle_valid)
    assert search("c")["values"] != first["values"]


def test_ktrec_tune_twin_logs_the_study_to_mlflow(settings, tmp_path):
    import json

    from mlflow import MlflowClient
    from typer.testing import CliRunner

    from jobs.cli import app

    write_toy_split(settings)
    runner = CliRunner()
    assert "--twin" in runner.invoke(app, ["tune", "--help"]).output
    result = runner.invoke(app, ["tune", "--scenario", str(CONF / "bpr" / "kt.yaml"), "--split", "toy", "--twin",
                                 "--trials", "2", "--epochs", "2", "--output-dir", str(tmp_path / "t"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["variant"] == "twin" and sorted(summary["best_params"]) == ["lr", "weight_decay"]
    best = parse_scenario(yaml.safe_load((tmp_path / "t" / "best.yaml").read_text()))
    assert best.variant == "twin" and not any(isinstance(c, SetKT) for c in best.commands)
    run = MlflowClient(tracking_uri=settings.mlflow_uri).get_run(summary["mlflow_run_id"])
    assert run.data.metrics["valid_ndcg_at_10"] == pytest.approx(summary["best_value"])
    assert run.data.params["best_lr"] == str(summary["best_params"]["lr"])
    client = MlflowClient(tracking_uri=settings.mlflow_uri)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "study")}
    assert artifacts == {"study/best.yaml", "study/trials.csv", "study/study.json"}
