"""DELRec's lake side on a tiny lake, against plain-Python truth: the teacher never sees a valid/test item and
its table lines up with users by id; the prompt table is deterministic, its prompts are `render`'s text, its
answers and candidates are right, and every kind of bad input has its named outcome."""

from __future__ import annotations

import hashlib
from collections import defaultdict

import pandas as pd
import pytest
import torch
from delrec_tiny import ONE_EVENT, THREE_EVENTS, TITLES, TWIN, UNTITLED_TEST, build, events

from jobs.core import lake
from jobs.delrec import data as delrec_data
from jobs.delrec import teacher
from models.delrec import prompts


def _table(settings, name: str) -> pd.DataFrame:
    return lake.read_frame(settings, delrec_data.delrec_table(name))


def _sequences(rows) -> dict[str, list[str]]:
    """Each user's items in time order (ties by item id), from the raw events."""
    by_user = defaultdict(list)
    for user, item, _, _day in sorted(rows, key=lambda r: (r[0], r[3], r[1])):
        by_user[user].append(item)
    return by_user


def _split(settings) -> dict[str, dict]:
    """Per user, from the split table read with pandas: train items in time order, the valid and test item."""
    frame = lake.read_frame(settings, lake.split_table("tiny")).sort_values(["event_ts", "item_id"])
    out = {}
    for user, rows in frame.groupby("user_id"):
        items = {s: rows[rows.split == s].item_id.tolist() for s in ("train", "valid", "test")}
        out[user] = {"train": items["train"], "valid": (items["valid"] or [None])[0],
                     "test": (items["test"] or [None])[0], "all": rows.item_id.tolist()}
    return out


@pytest.fixture(scope="module")
def tiny_table(spark, tmp_path_factory):
    from jobs.core.settings import Settings

    settings = Settings(home=tmp_path_factory.mktemp("delrec-home"))
    summary = build(spark, settings)
    return settings, summary, _table(settings, "tiny")


def test_teacher_never_sees_a_valid_or_test_item(spark, settings, tmp_path):
    """Same training prefixes, different valid/test items: the trained teachers are identical, weight for weight."""
    from cora_tiny import write_tiny_lake
    from delrec_tiny import T0

    from jobs.split.table import run as split
    from jobs.train import run_folder

    rows = events()
    sequences = _sequences(rows)
    held_out = {(u, s[-1]) for u, s in sequences.items() if len(s) >= 3} | \
        {(u, s[-2]) for u, s in sequences.items() if len(s) >= 3}
    # Other valid/test items for two users: items of the other taste group, known from others' training.
    swap = {("u0", sequences["u0"][-2]): "i33", ("u0", sequences["u0"][-1]): "i35",
            ("u1", sequences["u1"][-2]): "i32", ("u1", sequences["u1"][-1]): "i34"}
    assert set(swap) <= held_out and not {"i33", "i35"} & set(sequences["u0"])
    changed = [(u, swap.get((u, i), i), r, d) for u, i, r, d in rows]
    runs = []
    for k, lake_rows in enumerate((rows, changed)):
        write_tiny_lake(spark, settings, events=lake_rows, titles=TITLES, t0=T0)
        split(settings, strategy="loo", name=f"s{k}")
        runs.append(teacher.train(settings, split=f"s{k}", seed=0, epochs=2, output_dir=tmp_path / f"t{k}"))
    frames = [lake.read_frame(settings, lake.split_table(f"s{k}")) for k in range(2)]
    train = [f[f.split == "train"].sort_values(["user_id", "item_id"]).reset_index(drop=True)[["user_id", "item_id"]]
             for f in frames]
    pd.testing.assert_frame_equal(train[0], train[1])
    assert not frames[0][frames[0].split != "train"].equals(frames[1][frames[1].split != "train"])
    states = [torch.load(r / run_folder.MODEL, weights_only=True) for r in runs]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_teacher_table_is_keyed_by_user_and_cutoff(spark, tiny_table):
    from models.data import load_split
    from models.sequences import pad_histories

    settings, _, _ = tiny_table
    table = lake.read_frame(settings, teacher.teacher_table("tiny"))
    meta = teacher.read_meta(settings, "tiny")
    assert meta["model"] == "sasrec" and meta["display"] == "SASRec" and meta["k"] == 10
    data = load_split(lake.table_path(settings, lake.split_table("tiny")))
    from jobs.train import run_folder
    model = run_folder.load_model(meta["run_dir"]).eval()
    user = "u3"
    u = list(data.train.user_ids).index(user)
    history, _ = pad_histories(data.train.sequences, [u], model.max_len)
    scores = model.full_sort_predict({"history": history, "user": torch.tensor([u])})[0].detach().numpy()
    scores[data.train.sequences[u]] = -float("inf")
    mine = table[(table.user_id == user) & (table.cutoff == "valid")].sort_values("rank")
    assert mine.item_id.tolist()[:3] == [data.train.item_ids[i] for i in (-scores).argsort(kind="stable")[:3]]
    # cutoff_ts is the user's last training event (valid) or last valid event (test), from the raw events.
    days = sorted(d for uu, _, _, d in events() if uu == user)
    stamps = mine.cutoff_ts.dt.tz_localize(None) if mine.cutoff_ts.dt.tz is None else mine.cutoff_ts.dt.tz_convert(None)
    assert (stamps == pd.Timestamp("2022-05-01") + pd.Timedelta(days=days[-3])).all()
    assert set(table.cutoff) == {"valid", "test"} and table.groupby(["user_id", "cutoff"]).size().max() == 10


def test_prompt_table_is_deterministic(spark, tiny_table):
    settings, summary, first = tiny_table
    delrec_data.run(settings, split="tiny", name="again", n_candidates=6, max_history=4, spark=spark)
    pd.testing.assert_frame_equal(first, _table(settings, "again"))
    digest = lambda name: [hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
                           for p in sorted(lake.require(settings, delrec_data.delrec_table(name)).resolve()
                                           .glob("*.parquet"))]
    assert digest("tiny") == digest("again")


def test_prompts_answers_and_candidates_are_right(tiny_table):
    settings, summary, table = tiny_table
    users = _split(settings)
    key = lambda item: (TITLES[item] or "").lower()  # noqa: E731
    for row in table.itertuples():
        assert row.prompt == prompts.render(row.task, teacher="SASRec", history=list(row.history_titles),
                                            candidates=list(row.candidate_titles), given=list(row.given_titles))
        assert row.candidate_ids[row.target_index] == row.target_id
        assert len(set(t.lower() for t in row.candidate_titles)) == len(row.candidate_titles)  # distinct titles
        assert 1 <= len(row.history_titles) <= 4
        seen = {key(i) for i in users[row.user_id]["all"]}
        others = [i for i in row.candidate_ids if i != row.target_id]
        if row.task != "rps":
            assert len(row.candidate_ids) == 6 and not {key(i) for i in others} & seen
    rec = table[table.task == "rec"].set_index(["user_id", "cutoff"])
    checked = 0
    for user, parts in users.items():
        if parts["test"] and TITLES[parts["test"]]:
            test = rec.loc[(user, "test")]
            known = parts["train"] + ([parts["valid"]] if parts["valid"] else [])
            titled = [TITLES[i] for i in known if TITLES[i]]
            assert test.target_id == parts["test"] and list(test.history_titles) == titled[-4:]
            checked += 1
        if parts["valid"]:
            assert rec.loc[(user, "valid")].target_id == parts["valid"]
    assert checked >= 10
    # No two prompts of a user share a sampled candidate.
    for user, rows in table[table.task != "rps"].groupby("user_id"):
        sampled = [i for r in rows.itertuples() for i in r.candidate_ids if i != r.target_id]
        assert len(sampled) == len(set(sampled)), user
    assert TWIN[1] not in {i for r in table[table.user_id == "u1"].itertuples() for i in r.candidate_ids}


def test_temporal_analysis_hides_a_recent_training_item(tiny_table):
    settings, _, table = tiny_table
    users = _split(settings)
    for row in table[table.task == "ta"].itertuples():
        history = list(row.history_titles)
        assert history.count(prompts.HIDDEN) == 1
        slot = history.index(prompts.HIDDEN)
        train = [i for i in users[row.user_id]["train"] if TITLES[i]]
        assert 1 <= len(history) - 1 - slot <= 3  # one to three items follow the hidden one
        assert row.history_keep == len(history) - slot
        assert row.target_id == train[len(train) - (len(history) - slot)]


def test_pattern_simulating_follows_the_teacher_list(tiny_table):
    settings, _, table = tiny_table
    top = lake.read_frame(settings, teacher.teacher_table("tiny"))
    top = top[top.cutoff == "valid"].sort_values("rank")
    users = _split(settings)
    for user, rows in table[table.task == "rps"].groupby("user_id"):
        trained = {(TITLES[i] or "").lower() for i in users[user]["train"]}
        ranked = [i for i in top[top.user_id == user].item_id if TITLES[i] and TITLES[i].lower() not in trained]
        for row in rows.sort_values("step").itertuples():
            assert row.target_id == ranked[row.step - 1]
            assert list(row.given_titles) == [TITLES[i] for i in ranked[:row.step - 1]]
            assert len(row.candidate_ids) == 6 - (row.step - 1)


def test_bad_input_has_named_outcomes(tiny_table):
    settings, summary, table = tiny_table
    meta = summary["meta"]
    users = lambda task, cutoff: set(table[(table.task == task) & (table.cutoff == cutoff)].user_id)  # noqa: E731
    # One event: all train; its only rec example has an empty history; TA needs two items.
    assert ONE_EVENT not in users("rec", "train") | users("ta", "train")
    assert meta["skipped"]["rec/train"]["empty_history"] >= 2  # u_one and u_three
    assert meta["skipped"]["ta/train"]["short_history"] >= 1
    # Three events: a one-item history is a valid prompt.
    three = table[(table.user_id == THREE_EVENTS) & (table.task == "rec") & (table.cutoff == "valid")]
    assert list(three.history_titles.iloc[0]) == [TITLES["i4"]]
    # A test item without a title: skipped, counted, never a silent wrong label.
    assert UNTITLED_TEST not in users("rec", "test")
    assert meta["skipped"]["rec/test"]["untitled_target"] == 1
    assert meta["untitled_events"] == 2  # u0's history item and u_untitled's test item
    assert all("None" not in p for p in table.prompt)


def test_a_candidate_pool_smaller_than_asked_is_skipped_and_counted(spark, settings):
    summary = build(spark, settings, n_candidates=20, max_history=4, teacher_epochs=1)
    table = _table(settings, "tiny")
    meta = summary["meta"]
    # 37 titled items: a user's unseen ones fill its test candidates first, then run out for valid/train.
    assert meta["kept"]["rec/test"] >= 10 and "candidate_pool_small" not in meta["skipped"]["rec/test"]
    assert meta["skipped"]["rec/valid"]["candidate_pool_small"] > 0
    assert all(len(c) == 20 for c in table[table.task != "rps"].candidate_ids)
    with pytest.raises(ValueError, match="leave-one-out"):
        from jobs.split.table import run as split
        split(settings, strategy="random", name="rnd")
        delrec_data.run(settings, split="rnd", teacher="tiny")
