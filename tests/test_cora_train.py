"""The CoRA pipeline end to end on a tiny lake and a tiny random-weight LLM: prompt table (Spark),
fallback BPR-MF, CoRA plus the three baselines, metrics by slice, the saved adapter reloaded and used
by `ktrec score-cora`; and one short slow run on the real SmolLM2."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from cora_tiny import tiny_llm_folder, write_tiny_lake

from jobs import cora_data, cora_train

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
    llm = tiny_llm_folder(tmp_path / "tiny-llm", family="qwen2", corpus=frame.prompt.tolist())
    return settings, llm


def test_train_cora_runs_all_systems_and_saves_a_reloadable_adapter(lake_with_prompts, tmp_path):
    from typer.testing import CliRunner

    from jobs.cli import app
    from jobs.cora_score import load_adapter
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

    result = CliRunner().invoke(app, ["score-cora", "--adapter", summary["adapter_path"], "--user", "u0",
                                      "--item", "i2", "--json"])
    assert result.exit_code == 0, result.output
    cli_score = json.loads(result.output.strip().splitlines()[-1])["scores"][0]["score"]
    assert abs(cli_score - float(load_adapter(summary["adapter_path"]).score([("u0", "i2")])[0])) < 1e-5


def test_train_cora_rejects_bad_requests(lake_with_prompts):
    settings, llm = lake_with_prompts
    with pytest.raises(FileNotFoundError, match="ktrec cora-data --name nope"):
        cora_train.run(settings, data="nope", llm=str(llm))
    with pytest.raises(ValueError, match="unknown baselines"):
        cora_train.run(settings, data="tiny", llm=str(llm), baselines=("gpt",))
    with pytest.raises(FileNotFoundError, match="not a Hugging Face model folder"):
        cora_train.run(settings, data="tiny", llm=str(llm.parent), baselines=(), cf_epochs=1)
