"""DELRec's training job end to end on the tiny lake and a tiny random-weight LLM: every system on the same
candidates through the one evaluator, the teacher's own scores, the saved model reloaded by `ktrec delrec
score`, MLflow registration gated on HR@1, the truncation rule, and the sub-app's commands."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from delrec_tiny import build

from jobs.delrec import train as delrec_train
from jobs.delrec.prepare import draw, read_table, to_examples


@pytest.fixture(scope="module")
def tiny_lake(spark, tmp_path_factory):
    from jobs.core.settings import Settings

    settings = Settings(home=tmp_path_factory.mktemp("delrec-train-home"))
    build(spark, settings)
    return settings


@pytest.fixture(scope="module")
def trained(tiny_lake, tiny_llama_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("delrec-run") / "run"
    summary = delrec_train.run(tiny_lake, data="tiny", llm=str(tiny_llama_dir), max_distill=None, max_train=None,
                               max_test=None, n_soft=3, rank=2, alpha=4.0, batch_size=4, output_dir=out)
    return tiny_lake, summary


def test_every_system_is_scored_on_the_same_candidates(trained):
    settings, summary = trained
    scores = pd.read_parquet(summary["scores_path"])
    frame, _ = read_table(settings, "tiny")
    test = frame[(frame.task == "rec") & (frame.cutoff == "test")]
    assert sorted(scores.user_id) == sorted(test.user_id)  # every test example: nothing dropped silently
    assert summary["counts"]["test"] == {"rows": len(test), "truncated": 0, "prompt_too_long": 0}
    assert set(summary["metrics"]) == set(delrec_train.SYSTEMS)
    from models.metrics import evaluate_candidates

    targets = scores.target_index.to_numpy()
    for name, slices in summary["metrics"].items():
        matrix = np.stack(scores[name].to_numpy())
        assert matrix.shape == (len(scores), 6) and np.isfinite(matrix).all()
        expected = evaluate_candidates(matrix, targets, ks=(1, 5)).metrics
        assert slices["all"]["hr_at_1"] == pytest.approx(expected["candidates6_hr_at_1"], abs=1e-5)
        assert slices["all"]["n"] == slices["warm"]["n"] + slices["sparse"]["n"] == len(scores)
        assert slices["sparse"]["n"] == int((scores.n_train <= 5).sum()) >= 1  # u_three: one training item
    assert {"delrec_vs_teacher", "delrec_vs_lora"} == set(summary["significance"])
    assert summary["stage1"]["examples"]["ta"] > 0 and summary["stage1"]["examples"]["rps"] > 0
    assert summary["timing"]["delrec"]["train_seconds"] > 0 and summary["timing"]["lora"]["trainable_params"] > 0


def test_the_teacher_ranks_the_candidates_by_its_own_scores(trained):
    from jobs.core import lake
    from jobs.train import run_folder
    from models.data import load_split
    from models.sequences import pad_histories

    settings, summary = trained
    scores = pd.read_parquet(summary["scores_path"])
    data = load_split(lake.table_path(settings, lake.split_table("tiny")))
    model = run_folder.load_model(summary["teacher_run"]).eval()
    row = scores.iloc[0]
    u = list(data.train.user_ids).index(row.user_id)
    history, _ = pad_histories(data.test_sequences, [u], model.max_len)  # train + valid: the test cut-off
    with torch.no_grad():
        full = model.full_sort_predict({"history": history, "user": torch.tensor([u])})[0].numpy()
    items = list(data.train.item_ids)
    assert np.allclose(row.teacher, [full[items.index(i)] for i in row.candidate_ids], atol=1e-5)


def test_saved_model_scores_the_same_through_the_cli(trained, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from jobs.cli.delrec import app

    settings, summary = trained
    scores = pd.read_parquet(summary["scores_path"])
    from jobs.delrec import score as delrec_score

    result = delrec_score.run(settings, model_dir=summary["model_dir"], data="tiny", output=tmp_path / "rank.parquet")
    assert result["metrics"]["all"] == summary["metrics"]["delrec"]["all"]
    ranked = pd.read_parquet(tmp_path / "rank.parquet").set_index("user_id")
    for row in scores.itertuples():
        best = row.candidate_ids[int(np.argmax(row.delrec))]
        assert ranked.loc[row.user_id, "ranked_ids"][0] == best
    from jobs.core.settings import get_settings

    monkeypatch.setenv("KTREC_HOME", str(settings.home))
    get_settings.cache_clear()
    try:
        cli = CliRunner().invoke(app, ["score", "--model", summary["model_dir"], "--data", "tiny", "--user",
                                       scores.user_id.iloc[0], "--json"])
    finally:
        get_settings.cache_clear()
    assert cli.exit_code == 0, cli.output
    out = json.loads(cli.stdout.strip().splitlines()[-1])
    assert out["users"] == 1 and out["rankings"][0]["ranked_ids"][0] == scores.candidate_ids.iloc[0][
        int(np.argmax(scores.delrec.iloc[0]))]


def test_registered_as_ktrec_delrec_gated_on_hr_at_1_and_idempotent(trained):
    from mlflow import MlflowClient

    from jobs.delrec.register import REGISTERED, decide, flat_metrics, register_delrec

    settings, summary = trained
    first = register_delrec(settings, summary=summary, run_key="test/delrec/1")
    assert (first["passed"], first["reason"]) == decide(flat_metrics(summary["metrics"]), champion_hr=None,
                                                        margin=0.0)
    client = MlflowClient(settings.mlflow_uri, registry_uri=settings.mlflow_uri)
    version = client.get_model_version_by_alias(REGISTERED, "challenger")
    assert str(version.version) == first["version"] and version.tags["ktrec.gate_reason"] == first["reason"]
    logged = {a.path for a in client.list_artifacts(first["run_id"], "model")}
    assert {"model/soft_prompt.pt", "model/lora", "model/config.json"} <= logged
    again = register_delrec(settings, summary=summary, run_key="test/delrec/1")
    assert (again["run_id"], again["version"]) == (first["run_id"], first["version"])


def test_delrec_gate_needs_the_teacher_the_ablation_and_the_champion_beaten():
    from jobs.delrec.register import decide

    run = {"delrec_all_hr_at_1": 0.30, "teacher_all_hr_at_1": 0.25, "lora_all_hr_at_1": 0.28}
    passed, reason = decide(run, champion_hr=None, margin=0.0)
    assert passed and reason.endswith("no champion yet")
    assert not decide(run, champion_hr=0.29, margin=0.02)[0]
    passed, reason = decide(run | {"teacher_all_hr_at_1": 0.30}, champion_hr=None, margin=0.0)
    assert not passed and "SASRec teacher" in reason
    passed, reason = decide(run | {"lora_all_hr_at_1": 0.31}, champion_hr=None, margin=0.0)
    assert not passed and "ablation" in reason


def test_a_prompt_longer_than_the_context_is_truncated_or_skipped(tiny_lake, tiny_llama_dir):
    from models.delrec import prompts
    from models.llmrec.layout import Codec
    from models.llmrec.loading import load_tokenizer

    frame, _ = read_table(tiny_lake, "tiny")
    rows = draw(frame, "rec", "test", None, seed=0)
    rows = rows[rows.history_titles.map(len) == 4].head(3)
    codec = Codec(load_tokenizer(tiny_llama_dir), system=prompts.SYSTEM)
    length = lambda r, h: codec.context_length(  # noqa: E731
        prompts.render("rec", teacher="SASRec", history=h, candidates=list(r.candidate_titles)),
        list(r.candidate_titles), 3)
    first = rows.iloc[0]
    full, one = length(first, list(first.history_titles)), length(first, list(first.history_titles)[-1:])
    # Room for the last two titles only: the two oldest are dropped, by the stated rule.
    limit = length(first, list(first.history_titles)[-2:])
    examples, kept, counts = to_examples(rows.head(1), codec=codec, teacher="SASRec", n_soft=3, max_length=limit)
    assert counts == {"rows": 1, "truncated": 1, "prompt_too_long": 0} and full > limit
    assert examples.prompts[0] == prompts.render("rec", teacher="SASRec", history=list(first.history_titles)[-2:],
                                                 candidates=list(first.candidate_titles))
    # Not even one title fits: skipped and counted, never sent cut in the middle.
    examples, kept, counts = to_examples(rows, codec=codec, teacher="SASRec", n_soft=3, max_length=one - 1)
    assert len(examples) == 0 and counts["prompt_too_long"] == len(rows)


def test_the_sub_app_builds_the_tables_and_reports_bad_requests(spark, settings, tiny_llama_dir):
    from cora_tiny import write_tiny_lake
    from delrec_tiny import T0, TITLES, events
    from typer.testing import CliRunner

    from jobs.cli.delrec import app
    from jobs.split.table import run as split

    write_tiny_lake(spark, settings, events=events(), titles=TITLES, t0=T0)
    split(settings, strategy="loo", name="cli")
    runner = CliRunner()
    result = runner.invoke(app, ["teacher", "--split", "cli", "--epochs", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["table"] == "delrec_teacher/cli"
    result = runner.invoke(app, ["data", "--split", "cli", "--n-candidates", "6", "--max-history", "4", "--json"])
    assert result.exit_code == 0, result.output
    kept = json.loads(result.stdout.strip().splitlines()[-1])["kept"]
    assert kept["rec/test"] >= 10
    result = runner.invoke(app, ["train", "--data", "nope", "--llm", str(tiny_llama_dir)])
    assert result.exit_code == 2 and "ktrec delrec data" in result.output
    split(settings, strategy="random", name="rnd")
    result = runner.invoke(app, ["teacher", "--split", "rnd"])
    assert result.exit_code == 2 and "leave-one-out" in result.output


def test_nightly_task_splits_leave_one_out_trains_the_teacher_and_registers(spark, settings, tiny_llama_dir):
    """On a night whose split is not leave-one-out the task cuts its own (same cut-off), trains the fixed-epoch
    teacher on it, builds the prompts, trains DELRec and registers ktrec-delrec."""
    from datetime import date

    import numpy as np
    from cora_tiny import write_tiny_lake
    from delrec_tiny import T0

    from jobs.core import lake
    from jobs.nightly.tasks import train_delrec
    from jobs.split.table import read_meta
    from jobs.split.table import run as split

    rng = np.random.default_rng(1)  # a catalogue big enough for 20 candidates per prompt
    rows = [(f"u{u}", f"i{k}", 4.0, day) for u in range(30)
            for day, k in enumerate(rng.choice(200, size=10, replace=False))]
    write_tiny_lake(spark, settings, events=rows, titles={f"i{k}": f"Film {k}" for k in range(200)}, t0=T0)
    split(settings, strategy="random", name="night")
    result = train_delrec(settings, results=[], split="night", run_date=date(2026, 6, 1), promote=True,
                          llm=str(tiny_llama_dir), max_train=4, max_test=4)
    assert result["split"] == "delrec-2026-06-01" and read_meta(settings, result["split"])["strategy"] == "loo"
    assert result["teacher_source"].startswith("conf/delrec/teacher.yaml")
    assert result["model"] == "ktrec-delrec" and result["version"] == "1"
    assert all(lake.exists(settings, f"{t}/delrec-2026-06-01") for t in ("delrec", "delrec_teacher"))
    assert (settings.runs_dir / "2026-06-01" / "delrec" / "model" / "soft_prompt.pt").is_file()
