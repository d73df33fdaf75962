"""The CoRA pipeline end to end on a tiny lake and a tiny random-weight LLM: prompt table (Spark),
fallback BPR-MF, CoRA plus the three baselines, metrics by slice, the saved adapter reloaded and used
by `ktrec cora score`; and one short slow run on the real SmolLM2."""

from __future__ import annotations

import copy
import json
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cora_tiny import tiny_llm_folder, write_tiny_lake

from jobs.cora import data as cora_data
from jobs.cora import train as cora_train

T0 = datetime(2021, 3, 1)
TITLES = {f"i{k}": f"Film {k}" for k in range(16)}


def _events(n_users: int = 24, per_user: int = 10, seed: int = 0) -> list[tuple]:
    """Two taste groups (even / odd items liked); days spread so the time split has every user early."""
    rng = np.random.default_rng(seed)
    events = []
    for u in range(n_users):
        for k, item in enumerate(rng.choice(16, size=per_user, replace=False)):
            liked = (item % 2) == (u % 2)
            events.append((f"u{u}", f"i{item}", 5.0 if liked else 2.0, k * 3 + int(rng.integers(0, 3))))
    events.append(("u_new", "i1", 5.0, 40))  # a user first seen in test: a cold example
    events.append(("u_new", "i3", 2.0, 41))
    return events


@pytest.fixture
def lake_with_prompts(spark, settings, tmp_path):
    write_tiny_lake(spark, settings, events=_events(), titles=TITLES, t0=T0)
    cora_data.run(settings, name="tiny", threshold=4.0, max_history=5, spark=spark)
    frame, _, _ = cora_train.read_examples(settings, "tiny")
    llm = tiny_llm_folder(tmp_path / "tiny-llm", family="llama", corpus=frame.prompt.tolist())
    return settings, llm


def test_train_cora_runs_all_systems_and_saves_a_reloadable_adapter(lake_with_prompts, tmp_path):
    from typer.testing import CliRunner

    from jobs.cli import app
    from jobs.cora.score import load_adapter
    from models.cora.io import read_adapter

    settings, llm = lake_with_prompts
    summary = cora_train.run(settings, data="tiny", llm=str(llm), max_train=64, max_test=None, epochs=1,
                             batch_size=8, rank=4, alpha=8.0, cf_epochs=3, output_dir=tmp_path / "run")
    assert set(summary["metrics"]) == {"cora", "zero_shot", "lora", "cf"}
    scores = pd.read_parquet(summary["scores_path"])
    assert len(scores) == summary["n_test"] and summary["n_train"] == 64
    for name, slices in summary["metrics"].items():
        assert slices["all"]["n"] == len(scores)
        assert slices["cold"]["n"] == int(scores.cold.sum()) >= 1
        assert slices["warm"]["n"] + slices["cold"]["n"] == len(scores)
        assert slices["all"]["auc"] is None or 0.0 <= slices["all"]["auc"] <= 1.0
        assert ((scores[name] > 0) & (scores[name] < 1)).all()
    assert summary["cf_source"].startswith("fallback: BPR-MF")
    assert summary["timing"]["cora"]["loss"]["steps"] == 8
    assert summary["timing"]["lora"]["trainable_params"] > 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["adapter_path"] == summary["adapter_path"]

    adapter = read_adapter(summary["adapter_path"])
    again = adapter.probabilities(scores.user_id.tolist(), scores.item_id.tolist(), scores.prompt.tolist())
    assert np.allclose(again, scores.cora.to_numpy(), atol=1e-5)

    result = CliRunner().invoke(app, ["cora", "score", "--adapter", summary["adapter_path"], "--user", "u0",
                                      "--item", "i2", "--json"])
    assert result.exit_code == 0, result.output
    cli_score = json.loads(result.stdout.strip().splitlines()[-1])["scores"][0]["score"]
    assert abs(cli_score - float(load_adapter(summary["adapter_path"]).score([("u0", "i2")])[0])) < 1e-5


def test_train_cora_rejects_bad_requests(lake_with_prompts):
    settings, llm = lake_with_prompts
    with pytest.raises(FileNotFoundError, match="ktrec cora data"):
        cora_train.run(settings, data="nope", llm=str(llm))
    with pytest.raises(ValueError, match="unknown baselines"):
        cora_train.run(settings, data="tiny", llm=str(llm), baselines=("gpt",))
    with pytest.raises(FileNotFoundError, match="not a Hugging Face model folder"):
        cora_train.run(settings, data="tiny", llm=str(llm.parent), baselines=(), cf_epochs=1)


@pytest.mark.slow
def test_cora_on_smollm2_starts_as_the_llm_and_trains_only_the_generator(smollm2_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from models.cora.frozen_cf import FrozenCF
    from models.cora.io import read_adapter, save_adapter
    from models.cora.model import CoRA, CoRAConfig
    from models.cora.prompt import PromptCodec, render
    from models.cora.train import Examples, FitConfig, fit, predict

    codec = PromptCodec(AutoTokenizer.from_pretrained(smollm2_dir), max_length=96)
    assert codec.chat and codec.tokenizer.decode([codec.yes_id]) == "Yes"
    llm = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    before = {k: v.clone() for k, v in llm.state_dict().items()}
    gen = torch.Generator().manual_seed(0)
    cf = FrozenCF(user_ids=[f"u{k}" for k in range(8)], item_ids=["a", "b"],
                  user_table=torch.randn(8, 16, generator=gen), item_table=torch.randn(2, 16, generator=gen))
    titles = ["Toy Story (1995)", "Heat (1995)", "Fargo (1996)", "Casablanca (1942)"]
    examples = Examples(users=[f"u{k}" for k in range(8)], items=["a", "b"] * 4,
                        prompts=[render(titles[: 1 + k % 3], titles[3]) for k in range(8)],
                        labels=np.array([1, 0] * 4))
    cora = CoRA(llm, cf_dim=16, yes_id=codec.yes_id, no_id=codec.no_id, config=CoRAConfig(rank=4, alpha=8.0))
    scorer = lambda b: cora(b["input_ids"], b["attention_mask"], b["user_emb"], b["item_emb"])  # noqa: E731
    base = lambda b: cora.base_logits(b["input_ids"], b["attention_mask"])  # noqa: E731
    assert np.allclose(predict(scorer, examples, codec=codec, cf=cf, batch_size=4),
                       predict(base, examples, codec=codec, cf=cf, batch_size=4), atol=1e-5)
    cora.train()
    fit(scorer, cora.trainable_parameters(), examples, codec=codec, cf=cf,
        config=FitConfig(epochs=1, batch_size=4, lr=1e-3))
    cora.eval()
    assert all(torch.equal(v, before[k]) for k, v in llm.state_dict().items())
    trained = predict(scorer, examples, codec=codec, cf=cf, batch_size=4)
    assert not np.allclose(trained, predict(base, examples, codec=codec, cf=cf, batch_size=4), atol=1e-6)
    folder = save_adapter(tmp_path / "adapter", cora=cora, cf=cf, llm_path=smollm2_dir, max_length=96)
    assert sum(f.stat().st_size for f in folder.iterdir()) < 0.2 * (smollm2_dir / "model.safetensors").stat().st_size
    reloaded = read_adapter(folder).probabilities(examples.users, examples.items, examples.prompts, batch_size=4)
    assert np.allclose(reloaded, 1 / (1 + np.exp(-trained)), atol=1e-5)


def test_cora_gate_needs_every_baseline_and_the_champion_beaten():
    from jobs.cora.register import decide

    run = {"cora_all_auc": 0.70, "zero_shot_all_auc": 0.50, "lora_all_auc": 0.65, "cf_all_auc": 0.60}
    passed, reason = decide(run, champion_auc=None, margin=0.0)
    assert passed and reason.endswith("no champion yet")
    assert decide(run, champion_auc=0.69, margin=0.0)[0]
    passed, reason = decide(run, champion_auc=0.69, margin=0.02)
    assert not passed and "champion" in reason
    passed, reason = decide(run | {"lora_all_auc": 0.71}, champion_auc=None, margin=0.0)
    assert not passed and "lora baseline" in reason
    assert not decide({"zero_shot_all_auc": 0.5}, champion_auc=None, margin=0.0)[0]


def _with_auc(summary: dict, **auc: float) -> dict:
    """The real run's summary with the test AUC (slice ``all``) of each named system set by hand."""
    metrics = copy.deepcopy(summary["metrics"])
    for system, value in auc.items():
        metrics[system]["all"]["auc"] = value
    return summary | {"metrics": metrics}


def test_cora_run_is_registered_gated_and_idempotent(lake_with_prompts, tmp_path):
    """One real trained adapter, registered under four run keys with AUCs set so each verdict is known."""
    from mlflow import MlflowClient

    from jobs.cora.register import REGISTERED, register_cora

    settings, llm = lake_with_prompts
    summary = cora_train.run(settings, data="tiny", llm=str(llm), max_train=32, max_test=None, epochs=1,
                             batch_size=8, rank=4, alpha=8.0, cf_epochs=2, output_dir=tmp_path / "run")
    client = MlflowClient(settings.mlflow_uri, registry_uri=settings.mlflow_uri)
    alias = lambda name: str(client.get_model_version_by_alias(REGISTERED, name).version)  # noqa: E731
    baselines = {"zero_shot": 0.50, "lora": 0.70, "cf": 0.60}

    # Beats every baseline and there is no champion yet: promoted.
    first = register_cora(settings, summary=_with_auc(summary, cora=0.80, **baselines), run_key="test/cora/1")
    assert (first["version"], first["passed"], first["promoted"]) == ("1", True, True)
    assert first["reason"].endswith("no champion yet") and "lora baseline (0.7000)" in first["reason"]
    assert first["auc"] == 0.80
    assert alias("champion") == alias("challenger") == "1"
    version = client.get_model_version(REGISTERED, "1")
    assert version.tags["ktrec.gate"] == "passed" and version.tags["ktrec.gate_reason"] == first["reason"]
    assert {a.path for a in client.list_artifacts(first["run_id"], "adapter")}, "the adapter folder is logged"

    # Beats the baselines but not the champion's 0.80: refused, the champion stays.
    worse = register_cora(settings, summary=_with_auc(summary, cora=0.75, **baselines), run_key="test/cora/2")
    assert (worse["version"], worse["passed"], worse["promoted"]) == ("2", False, False)
    assert "champion" in worse["reason"] and alias("champion") == "1" and alias("challenger") == "2"
    assert client.get_model_version(REGISTERED, "2").tags["ktrec.gate"] == "refused"

    # Above the champion but below the plain-LoRA baseline of its own run: refused.
    lora = register_cora(settings, summary=_with_auc(summary, cora=0.90, **baselines | {"lora": 0.95}),
                         run_key="test/cora/3")
    assert (lora["passed"], lora["promoted"]) == (False, False) and "lora baseline" in lora["reason"]
    assert alias("champion") == "1"

    # Beats every baseline and the champion: the new champion.
    better = register_cora(settings, summary=_with_auc(summary, cora=0.85, **baselines), run_key="test/cora/4")
    assert (better["version"], better["passed"], better["promoted"]) == ("4", True, True)
    assert "beats the champion" in better["reason"] and alias("champion") == "4"

    # The first run key again: the same run and version, no new one, and now refused against v4's 0.85.
    again = register_cora(settings, summary=_with_auc(summary, cora=0.80, **baselines), run_key="test/cora/1")
    assert (again["run_id"], again["version"]) == (first["run_id"], "1")
    assert (again["passed"], again["promoted"]) == (False, False) and alias("champion") == "4"
    assert len(client.search_model_versions(f"name = '{REGISTERED}'")) == 4


def test_nightly_train_cora_task_reads_the_nights_kt_run_and_registers_the_adapter(spark, settings, tmp_path):
    """``jobs.nightly.tasks.train_cora`` for real: the night's split, its KT CF run, CoRA, the registry."""
    from mlflow import MlflowClient

    from jobs.cora.register import REGISTERED
    from jobs.core.settings import REPO_ROOT
    from jobs.nightly.tasks import train_cora
    from jobs.registry.tracking import RUN_KEY
    from jobs.split.table import run as split
    from jobs.train.scenario_run import run as train
    from models.cora.prompt import render

    write_tiny_lake(spark, settings, events=_events(), titles=TITLES, t0=T0)
    split(settings, strategy="temporal", name="nightly")
    # A 1-epoch BPR stands in for the night's KT run (CoRA only reads its embeddings from the run folder).
    bpr = train(settings, scenario=REPO_ROOT / "conf" / "bpr" / "baseline.yaml", split="nightly", seed=0,
                epochs=1, progress=False, output_dir=tmp_path / "bpr")
    titles = list(TITLES.values())
    llm = tiny_llm_folder(tmp_path / "tiny-llm", corpus=[render(titles[:3], t) for t in titles])
    missing = str(tmp_path / "no-such-run")
    results = [
        {"model": "neumf", "variant": "kt", "run_dir": missing},  # CoRA cannot read NeuMF embeddings
        {"model": "bpr", "variant": "baseline", "run_dir": missing},  # not the KT run
        {"model": "bpr", "variant": "kt", "run_dir": bpr["run_dir"]},
    ]
    night = date(2026, 3, 1)
    with pytest.raises(ValueError, match="CoRA needs a trained bpr or lightgcn or sasrec"):
        train_cora(settings, results=results[:2], split="nightly", run_date=night, promote=True, llm=str(llm))

    decision = train_cora(settings, results=results, split="nightly", run_date=night, promote=False,
                          llm=str(llm), max_train=32, max_test=None)
    # Promotion off: registered as the challenger whatever the gate says, never the champion.
    assert (decision["model"], decision["version"], decision["promoted"]) == (REGISTERED, "1", False)
    client = MlflowClient(settings.mlflow_uri, registry_uri=settings.mlflow_uri)
    assert str(client.get_model_version_by_alias(REGISTERED, "challenger").version) == "1"
    assert "champion" not in client.get_registered_model(REGISTERED).aliases
    run = client.get_run(decision["run_id"])
    assert run.data.tags[RUN_KEY] == "ktrec_nightly/2026-03-01/cora" and run.data.params["n_train"] == "32"
    # The run folder is keyed on the night, built from the night's split and frozen on the KT run's model.
    summary = json.loads((settings.runs_dir / "2026-03-01" / "cora" / "metrics.json").read_text())
    assert summary["data"] == "cora/nightly" and summary["data_meta"]["source"] == "splits/nightly"
    assert summary["cf_source"] == f"ktrec train run {Path(bpr['run_dir'])}" and summary["cf_split_matches_data"]
    adapter = json.loads((Path(summary["adapter_path"]) / "config.json").read_text())
    assert adapter["cf_source"] == summary["cf_source"] and adapter["llm"] == str(llm)
