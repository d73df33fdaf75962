"""The alignment jobs on a three-user lake (tests/align_tiny.py): the task data against samples worked out by
hand (recommendation prompts and answers, the auxiliary tasks' shape), no valid/test title in any training
sample of its user, determinism for a seed, every bad-input rule counted; then training on a tiny random-weight
LLM (every system on the same users, the same budget, catalogue ids only), `ktrec align retrieve`, the gate
registering `ktrec-align`, and the sub-app's help."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from align_tiny import CUT_B3, TITLES, build

from jobs.align import data
from models.align import prompts as tpl


@pytest.fixture(scope="module")
def table(spark, tmp_path_factory):
    from jobs.core.settings import Settings

    settings = Settings(home=tmp_path_factory.mktemp("align-home"))
    summary = build(spark, settings)
    frame, meta, catalogue = data.read_samples(settings, "tiny")
    return settings, summary, frame, meta, catalogue


def _one(frame: pd.DataFrame, user: str, task: str, cutoff: str) -> pd.Series:
    rows = frame[(frame.user_id == user) & (frame.task == task) & (frame.cutoff == cutoff)]
    assert len(rows) == 1, (user, task, cutoff, len(rows))
    return rows.iloc[0]


def test_retrieval_samples_are_the_hand_worked_ones(table):
    _, _, frame, _, _ = table
    expected = {  # (user, cut-off): (history shown, oldest first, latest 3 titles; target)
        ("ua", "train"): (["Alpha One", "Alpha Two", "Beta Nine"], "Twin Film"),
        ("ua", "valid"): (["Alpha Two", "Beta Nine", "Twin Film"], "Alpha Four"),
        ("ua", "test"): (["Beta Nine", "Twin Film", "Alpha Four"], "Alpha Five"),
        # ub's d1 ("Twin Film", the title of its test item) is left out of its training samples
        ("ub", "train"): (["Beta Two", "Alpha Four", "Alpha Five"], CUT_B3),
        ("ub", "test"): (["Alpha Five", CUT_B3, "Beta Nine"], "Twin Film"),
        ("uc", "train"): (["Gamma One"], "Gamma Two"),
    }
    for (user, cutoff), (history, target) in expected.items():
        row = _one(frame, user, "retrieval", cutoff)
        assert (row.prompt, row.answer) == tpl.retrieval(history, target)
        assert row.prompt.startswith("A user's items, oldest first: " + "; ".join(history) + ".\n")
    assert frame[(frame.user_id == "uc") & (frame.cutoff != "train")].empty  # < 3 interactions: no held-out item


def test_rating_and_ranking_samples(table):
    _, _, frame, meta, catalogue = table
    assert meta["shape"]["with_rating"]
    rating = _one(frame, "ua", "rating", "test")
    assert rating.answer == "5" and rating.prompt.startswith(
        "A user's ratings from 1 to 5, oldest first: Beta Nine (2); Twin Film (4); Alpha Four (3).\n"
        "How will the user rate Alpha Five?")
    ranking = _one(frame, "ub", "ranking", "test")
    ids, titles = list(ranking.candidate_ids), list(ranking.candidate_titles)
    assert len(ids) == 2 and ranking.answer == "Twin Film" and ids[int(ranking.target_index)] == "d2"
    ub_items = {"b1", "d1", "b2", "a4", "a5", "b3", "b9", "d2"}
    negatives = [i for i in ids if i != "d2"]
    assert not set(negatives) & ub_items and len(set(titles)) == 2  # unseen, distinct titles
    assert set(negatives) <= set(catalogue.item_id)  # sampled from titled training items only
    assert ranking.prompt.endswith("\n".join(titles) + "\nAnswer with the title of the first one.")


def test_auxiliary_samples(table):
    _, _, frame, _, _ = table
    mim = _one(frame, "ua", "mim", "train")  # latest 3 training titles, one of them masked
    shown = mim.prompt.split("oldest first: ")[1].split(".\n")[0].split("; ")
    original = ["Alpha Two", "Beta Nine", "Twin Film"]
    assert shown.count(tpl.MASK) == 1 and mim.answer == original[shown.index(tpl.MASK)]
    assert [s for s in shown if s != tpl.MASK] == [t for t in original if t != mim.answer]
    bpr = _one(frame, "ub", "bpr", "train")  # the later positive (ub's last training item) against an unseen one
    assert bpr.answer == CUT_B3 and CUT_B3 in list(bpr.candidate_titles)
    other = [i for i in bpr.candidate_ids if i != "b3"]
    assert len(other) == 1 and other[0] not in {"b1", "d1", "b2", "a4", "a5", "b3", "b9", "d2"}
    assert bpr.prompt.startswith("A user's items, oldest first: Beta Two; Alpha Four; Alpha Five.\n")  # latest 3
    # MLM: every item text here is a short title (under 4 words), so the rule skips it and says so
    assert frame[frame.task == "mlm"].empty


def test_mlm_masks_spans_by_hand():
    prompt, answer = tpl.mlm(["Toy", "Story", "(1995).", "Animation", "Comedy"], [(1, 1), (3, 2)])
    assert prompt == ("Fill in each [mask] of this item description: Toy [mask] (1995). [mask]\n"
                      "Answer with the missing words, separated by '; '.")
    assert answer == "Story; Animation Comedy"
    with pytest.raises(ValueError, match="overlap"):
        tpl.mlm(["a", "b", "c"], [(0, 2), (1, 1)])


def test_no_held_out_title_in_any_training_sample_of_its_user(table):
    settings, _, frame, _, _ = table
    from jobs.core import lake

    split = lake.read_frame(settings, lake.split_table("tiny"))
    for user, rows in split.groupby("user_id"):
        held_out = {TITLES[i] for i in rows.loc[rows.split != "train", "item_id"] if TITLES[i]}
        for sample in frame[(frame.user_id == user) & (frame.cutoff == "train")].itertuples():
            text = sample.prompt + "\n" + sample.answer + "\n" + "\n".join(sample.candidate_titles)
            assert not any(title in text for title in held_out), (user, sample.task, held_out)


def test_deterministic_for_a_seed(spark, table, tmp_path):
    from jobs.core.settings import Settings

    _, _, frame, _, _ = table
    settings = Settings(home=tmp_path / "again")
    build(spark, settings)
    again = data.read_samples(settings, "tiny")[0]
    pd.testing.assert_frame_equal(frame, again)


def test_bad_input_is_counted(table):
    _, summary, frame, meta, catalogue = table
    assert meta["bad_input"] == {"untitled_events": 1, "train_events_sharing_a_held_out_title": 1,
                                 "untitled_items": 1, "titles_cut_for_length": 1, "items_sharing_a_title": 2,
                                 "users_under_3_interactions": 1}
    assert meta["skipped"]["retrieval/test"] == {"fewer_than_3_interactions": 1}
    assert meta["kept"]["retrieval/train"] == 3 and meta["kept"]["retrieval/test"] == 2
    assert "x0" not in set(catalogue.item_id) and CUT_B3 in set(catalogue.title)
    assert summary["table"] == "align/tiny"


@pytest.fixture(scope="module")
def trained(table, tiny_llama_dir, tmp_path_factory):
    from jobs.align import train

    settings = table[0]
    out = tmp_path_factory.mktemp("align-run") / "run"
    summary = train.run(settings, data="tiny", llm=str(tiny_llama_dir), budget=6, max_test=None, rank=2, alpha=4.0,
                        batch_size=3, lr=1e-2, retrieval="score", output_dir=out)
    return settings, summary


def test_train_evaluates_every_system_on_the_same_users_and_saves_the_adapters(trained):
    settings, summary = trained
    assert set(summary["metrics"]) == {"rec_aux", "rec_only", "zero_shot"}
    assert summary["test_users"] == 2 and summary["catalogue"]["items"] == 12  # ua and ub; titled training items
    for m in summary["metrics"].values():
        assert 0 <= m["retrieval_ndcg_at_10"] <= 1 and 0 <= m["ranking_ndcg_at_5"] <= 1 and m["rating_rmse"] >= 0
    assert summary["training"]["rec_only"]["per_task"].keys() <= {"retrieval", "ranking", "rating"}
    assert set(summary["training"]["rec_aux"]["per_task"]) & {"mim", "bpr"}  # the aligned mixture has aux tasks
    assert sum(summary["training"]["rec_aux"]["per_task"].values()) == \
        sum(summary["training"]["rec_only"]["per_task"].values()) == 6  # the same budget
    scores = pd.read_parquet(summary["scores_path"])
    catalogue = set(data.read_samples(settings, "tiny")[2].item_id)
    for system in summary["metrics"]:
        for user, top in zip(scores.user_id, scores[f"{system}_top"], strict=True):
            assert set(top) <= catalogue and len(top) == len(set(top))
            # the user's train + valid items are masked
            assert not set(top) & ({"a1", "a2", "b9", "d2", "a4"} if user == "ua" else
                                   {"b1", "d1", "b2", "a4", "a5", "b3", "b9"})


def test_retrieve_command_returns_item_ids_for_a_user(trained, monkeypatch):
    from typer.testing import CliRunner

    from jobs.cli import app

    settings, summary = trained
    monkeypatch.setenv("KTREC_HOME", str(settings.home))
    from jobs.core.settings import get_settings

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["align", "retrieve", "--model", summary["model_dir"], "--data", "tiny",
                                          "--user", "uc", "--k", "3", "--json"])
        assert result.exit_code == 0, result.output
        line = json.loads(result.stdout.strip().splitlines()[-1])
        ids = line["results"][0]["item_ids"]
        assert len(ids) == 3 and not {"c1", "c2"} & set(ids)  # uc's own items never come back
        bad = CliRunner().invoke(app, ["align", "retrieve", "--model", summary["model_dir"], "--data", "tiny",
                                       "--user", "nobody"])
        assert bad.exit_code == 2 and "no events" in bad.output
    finally:
        get_settings.cache_clear()


def test_registered_as_ktrec_align_through_the_gate(trained):
    from mlflow import MlflowClient

    from jobs.align.register import REGISTERED, decide, flat_metrics, register_align

    settings, summary = trained
    first = register_align(settings, summary=summary, run_key="test/align/1")
    assert (first["passed"], first["reason"]) == decide(flat_metrics(summary["metrics"]), champion=None, margin=0.0)
    client = MlflowClient(settings.mlflow_uri, registry_uri=settings.mlflow_uri)
    version = client.get_model_version_by_alias(REGISTERED, "challenger")
    assert str(version.version) == first["version"] and version.tags["ktrec.gate_reason"] == first["reason"]
    again = register_align(settings, summary=summary, run_key="test/align/1")
    assert (again["run_id"], again["version"]) == (first["run_id"], first["version"])
    run = {"rec_aux_retrieval_ndcg_at_10": 0.3, "rec_only_retrieval_ndcg_at_10": 0.2,
           "zero_shot_retrieval_ndcg_at_10": 0.1}
    assert decide(run, champion=None, margin=0.0)[0]
    assert not decide(run | {"rec_only_retrieval_ndcg_at_10": 0.3}, champion=None, margin=0.0)[0]
    assert not decide(run, champion=0.29, margin=0.02)[0]


def test_cli_help():
    from typer.testing import CliRunner

    from jobs.cli import app

    for args in (["align", "--help"], ["align", "data", "--help"], ["align", "train", "--help"],
                 ["align", "retrieve", "--help"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0 and "Usage" in result.output
    assert "align" in CliRunner().invoke(app, ["--help"]).output
