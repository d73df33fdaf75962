"""load_split on a small split table written with pandas/pyarrow in the lake contract; batch iterators."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from jobs.core.lake import SPLIT_COLUMNS
from models.batches import NegativeSampler, iter_batches, pad_histories
from models.data import load_split

ROWS = [  # user, item, ts, split
    ("u1", "a", 1, "train"), ("u1", "b", 3, "train"), ("u1", "c", 2, "train"),
    ("u2", "b", 1, "train"), ("u2", "d", 2, "train"),
    ("u3", "a", 5, "train"),
    ("u1", "d", 4, "valid"), ("u2", "zz", 3, "valid"), ("u2", "a", 4, "valid"),
    ("u1", "a", 6, "test"),  # repeat of a train item: never rankable
    ("u1", "e", 5, "test"),  # item only in test
    ("u2", "c", 7, "test"), ("u2", "c", 8, "test"),  # duplicate target
    ("u3", "b", 6, "test"), ("u9", "a", 9, "test"),  # u9 unseen in train
]


def _write(path, rows=ROWS, partition: bool = False, meta: bool = True):
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "ts", "split"])
    frame["rating"] = np.float32(4.0)
    frame["event_ts"] = pd.to_datetime(frame["ts"], unit="D", origin="2020-01-01").astype("datetime64[us]")
    frame = frame[SPLIT_COLUMNS]
    path.mkdir(parents=True)
    if partition:
        frame.to_parquet(path, partition_cols=["split"], index=False)
    else:
        frame.to_parquet(path / "part-00000.parquet", index=False)
    (path / "_SUCCESS").write_text("")  # Spark's marker and checksum files must be ignored
    (path / ".part-00000.parquet.crc").write_bytes(b"\x00")
    if meta:
        (path / "meta.json").write_text(json.dumps({"name": "toy", "strategy": "random", "seed": 1}))
    return path


@pytest.mark.parametrize("partition", [False, True])
def test_load_split_round_trip(tmp_path, partition):
    split = load_split(_write(tmp_path / "toy", partition=partition))
    assert list(split.train.user_ids) == ["u1", "u2", "u3"]
    assert list(split.train.item_ids) == ["a", "b", "c", "d"]
    assert split.meta["name"] == "toy"
    idx = {name: i for i, name in enumerate(split.train.item_ids)}
    assert split.train.train.toarray().tolist() == [[1, 1, 1, 0], [0, 1, 0, 1], [1, 0, 0, 0]]
    assert split.train.sequences[0].tolist() == [idx["a"], idx["c"], idx["b"]]  # time order, not row order
    assert {u: t.tolist() for u, t in split.valid.items()} == {0: [idx["d"]], 1: [idx["a"]]}
    assert {u: t.tolist() for u, t in split.test.items()} == {1: [idx["c"]], 2: [idx["b"]]}
    assert split.dropped["valid"] == {"unseen_user": 0, "unseen_item": 1, "already_seen": 0}
    assert split.dropped["test"] == {"unseen_user": 1, "unseen_item": 1, "already_seen": 1}
    assert (split.valid_mask != split.train.train).nnz == 0
    assert split.test_mask.toarray().tolist() == [[1, 1, 1, 1], [1, 1, 0, 1], [1, 0, 0, 0]]
    assert split.histories("test")[0].tolist() == [idx["a"], idx["c"], idx["b"], idx["d"]]
    assert split.histories("test")[1].tolist() == [idx["b"], idx["d"], idx["a"]]
    with pytest.raises(ValueError, match="valid"):
        split.targets("train")


def test_load_split_rejects_bad_tables(tmp_path):
    with pytest.raises(FileNotFoundError, match="meta.json"):
        load_split(_write(tmp_path / "nometa", meta=False))
    with pytest.raises(ValueError, match="holdout"):
        load_split(_write(tmp_path / "badsplit", rows=ROWS + [("u1", "b", 9, "holdout")]))
    bad = tmp_path / "nocol"
    bad.mkdir()
    pd.DataFrame({"user_id": ["u"], "item_id": ["i"]}).to_parquet(bad / "p.parquet")
    (bad / "meta.json").write_text("{}")
    with pytest.raises(ValueError, match="lacks columns"):
        load_split(bad)


def _random_train(tmp_path, n_users=40, n_items=60, seed=0):
    rng = np.random.default_rng(seed)
    rows = [(f"u{u}", f"i{i}", int(t), "train") for u in range(n_users)
            for t, i in enumerate(rng.choice(n_items, 15, replace=False))]
    return load_split(_write(tmp_path / "rand", rows=rows)).train


def test_pairwise_batches_cover_epoch_and_avoid_positives(tmp_path):
    train = _random_train(tmp_path)
    batches = list(iter_batches(train, kind="pairwise", batch_size=64, n_negatives=5, seed=3))
    users = np.concatenate([b["user"].numpy() for b in batches])
    pos = np.concatenate([b["pos_item"].numpy() for b in batches])
    neg = np.concatenate([b["neg_item"].numpy() for b in batches])
    assert neg.shape == (train.train.nnz, 5)
    assert sorted(zip(users, pos, strict=False)) == sorted(zip(*train.train.nonzero(), strict=False))  # every pair once
    dense = train.train.toarray()
    assert dense[users[:, None], neg].sum() == 0  # no negative is a training positive
    again = next(iter_batches(train, kind="pairwise", batch_size=64, n_negatives=5, seed=3))
    assert np.array_equal(again["neg_item"].numpy(), batches[0]["neg_item"].numpy())
    other = next(iter_batches(train, kind="pairwise", batch_size=64, n_negatives=5, seed=3, epoch=1))
    assert not np.array_equal(other["user"].numpy(), batches[0]["user"].numpy())
    assert NegativeSampler(train.train).contains(users[:3], pos[:3]).all()


def test_sequence_batches_are_windows_with_every_next_item_a_target_once(tmp_path):
    train = _random_train(tmp_path)
    seen = {u: [] for u in range(train.n_users)}
    for batch in iter_batches(train, kind="sequence", batch_size=7, max_len=4, seed=0):
        for user, hist, length, target, last in zip(batch["user"], batch["history"], batch["history_len"],
                                                    batch["target"], batch["pos_item"], strict=True):
            seq, inputs = train.sequences[int(user)].tolist(), [x - 1 for x in hist.tolist() if x]
            targets = [t for t in target.tolist() if t >= 0]
            assert int(length) == len(inputs) == len(targets) <= 4 and hist.tolist()[-1] != 0
            start = next(i for i in range(len(seq)) if seq[i:i + len(inputs)] == inputs
                         and seq[i + 1:i + 1 + len(targets)] == targets)  # inputs shifted by one = targets
            assert targets[-1] == int(last) and start >= 0
            seen[int(user)].append((start + 1, targets))
    for user, windows in seen.items():  # windows tile each sequence's positions 1..n-1 exactly once
        covered = sorted(p for begin, targets in windows for p in range(begin, begin + len(targets)))
        assert covered == list(range(1, len(train.sequences[user])))
    assert batch["neg_item"].shape == batch["target"].shape
    history, lengths = pad_histories(train.sequences, np.array([0, 1]), max_len=20)
    assert history.shape == (2, 20) and lengths.tolist() == [15, 15]
    assert (history[0, -15:] - 1).tolist() == train.sequences[0].tolist()


def test_user_rows_and_bad_kind(tmp_path):
    train = _random_train(tmp_path)
    users = np.concatenate([b["user"].numpy() for b in iter_batches(train, kind="user_rows", batch_size=16)])
    assert sorted(users.tolist()) == list(range(train.n_users))
    with pytest.raises(ValueError, match="pairwise"):
        next(iter_batches(train, kind="triplets", batch_size=8))


def test_the_loader_reads_only_columns_the_split_contract_has():
    from jobs.core.lake import SPLIT_COLUMNS
    from models.data import READ_COLUMNS

    assert set(READ_COLUMNS) <= set(SPLIT_COLUMNS)
