"""The evaluator against hand-computed numbers, masking, the sampled protocol's label, candidate lists, AUC/UAUC,
t-test and McNemar."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.metrics import roc_auc_score

from models.cf.base import Recommender, TrainData
from models.data import SplitData
from models.metrics import auc, evaluate, evaluate_split, metric_key, paired_ttest, uauc


class FixedScores(Recommender):
    """Scores from a fixed matrix: the evaluator, not the model, is under test here."""

    def __init__(self, scores: np.ndarray) -> None:
        super().__init__(*scores.shape)
        self.scores = torch.tensor(scores, dtype=torch.float32)

    def calculate_loss(self, batch):
        raise NotImplementedError

    def predict(self, batch):
        return self.scores[batch["user"], batch["pos_item"]]

    def full_sort_predict(self, batch):
        return self.scores[batch["user"]]


def _data(n_users: int, n_items: int, train: sp.csr_matrix | None = None) -> TrainData:
    train = train if train is not None else sp.csr_matrix((n_users, n_items), dtype=np.float32)
    return TrainData(user_ids=np.arange(n_users).astype(str), item_ids=np.arange(n_items).astype(str), train=train)


def _toy():
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [0.4, 0.5, 0.6, 0.7, 0.8, 0.9]])
    mask = sp.csr_matrix(([1.0], ([0], [0])), shape=(2, 6))  # user 0 has seen item 0, its top-scored item
    targets = {0: np.array([2, 5]), 1: np.array([0])}
    return FixedScores(scores), _data(2, 6), targets, mask


def test_evaluator_matches_hand_computed_metrics():
    model, data, targets, mask = _toy()
    result = evaluate(model, data, targets, mask, ks=(2, 5))
    # user 0, after masking item 0, ranks 1,2,3,4,5: target 2 at rank 2, target 5 at rank 5.
    # user 1 ranks 5,4,3,2,1,0: its only target (item 0) is at rank 6, outside every k.
    d2, d5 = 1 / math.log2(3), 1 / math.log2(6)
    expected_user0 = {
        "recall_at_2": 0.5, "recall_at_5": 1.0, "hr_at_2": 1.0, "hr_at_5": 1.0, "mrr_at_2": 0.5, "mrr_at_5": 0.5,
        "ndcg_at_2": d2 / (1 + d2), "ndcg_at_5": (d2 + d5) / (1 + d2),
    }
    assert result.protocol == "full"
    assert list(result.users) == [0, 1]
    for key, value in expected_user0.items():
        assert result.per_user[key][0] == pytest.approx(value)
        assert result.per_user[key][1] == 0.0
        assert result.metrics[key] == pytest.approx(value / 2)
    assert result.to_dict()["protocol"] == "full" and result.to_dict()["n_users"] == 2


def test_mask_excludes_seen_items():
    model, data, targets, mask = _toy()
    targets = {0: np.array([1])}
    masked = evaluate(model, data, targets, mask, ks=(1,))
    unmasked = evaluate(model, data, targets, sp.csr_matrix((2, 6)), ks=(1,))
    assert masked.metrics["hr_at_1"] == 1.0  # item 0 (seen, scored highest) is skipped, item 1 is first
    assert unmasked.metrics["hr_at_1"] == 0.0
    assert masked.per_user["mrr_at_1"][0] == 1.0 and unmasked.per_user["mrr_at_1"][0] == 0.0


def test_sampled_protocol_is_labelled_and_seeded():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(30, 200))
    targets = {u: rng.choice(200, 3, replace=False) for u in range(30)}
    model, data, mask = FixedScores(scores), _data(30, 200), sp.csr_matrix((30, 200))
    sampled = evaluate(model, data, targets, mask, sampled_negatives=20, seed=1)
    again = evaluate(model, data, targets, mask, sampled_negatives=20, seed=1, batch_size=7)
    full = evaluate(model, data, targets, mask)
    assert sampled.protocol == "sampled-20" and sampled.to_dict()["protocol"] == "sampled-20"
    assert all(key.startswith("sampled20_") for key in sampled.metrics)
    assert metric_key("ndcg", 10, "sampled-20") in sampled.metrics
    assert sampled.metrics == again.metrics  # per-user seeding: independent of the batch size
    # 3 targets among 23 candidates are far easier to rank than among 200 items.
    assert sampled.metrics["sampled20_hr_at_5"] > full.metrics["hr_at_5"]


def test_sampled_ranks_only_targets_and_negatives():
    scores = np.arange(10, dtype=float)[None, ::-1].copy()  # item 0 best ... item 9 worst
    model = FixedScores(scores)
    result = evaluate(model, _data(1, 10), {0: np.array([9])}, sp.csr_matrix((1, 10)), ks=(1, 5), sampled_negatives=3)
    # the worst item ranks last among itself + 3 negatives: rank 4
    assert result.per_user["sampled3_mrr_at_5"][0] == pytest.approx(1 / 4)
    assert result.per_user["sampled3_hr_at_1"][0] == 0.0


class LastItemNext(FixedScores):
    """Sequential: scores item (last history item + 1) highest, so the evaluator must pass histories."""

    sequential = True
    max_len = 4

    def full_sort_predict(self, batch):
        last = batch["history"][:, -1] - 1  # item index of the most recent item
        return -((torch.arange(self.n_items)[None, :] - (last[:, None] + 1)) % self.n_items).float()


def test_sequential_models_get_the_split_histories():
    n_items = 8
    model = LastItemNext(np.zeros((2, n_items)))
    train = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 0, 1], [0, 1, 4])), shape=(2, n_items))
    data = _data(2, n_items, train)
    data.sequences = [np.array([0, 1]), np.array([4])]
    test_mask = sp.csr_matrix(([1.0] * 4, ([0, 0, 0, 1], [0, 1, 2, 4])), shape=(2, n_items))
    split = SplitData(
        train=data, valid={0: np.array([2]), 1: np.array([5])}, test={0: np.array([3])},
        valid_mask=train, test_mask=test_mask, test_sequences=[np.array([0, 1, 2]), np.array([4])],
    )
    valid = evaluate_split(model, split, "valid", ks=(1,))
    test = evaluate_split(model, split, "test", ks=(1,))
    assert valid.metrics["hr_at_1"] == 1.0  # histories end in 1 and 4: next items 2 and 5
    assert test.per_user["hr_at_1"].tolist() == [1.0]  # test history includes the valid item 2: next is 3
    # Same mask (train), different histories: the default (train sequences) predicts 2, not 3.
    default = evaluate(model, data, split.test, train, ks=(1,))
    given = evaluate(model, data, split.test, train, ks=(1,), histories=split.test_sequences)
    assert default.metrics["hr_at_1"] == 0.0 and given.metrics["hr_at_1"] == 1.0


def test_auc_and_uauc_match_sklearn():
    rng = np.random.default_rng(3)
    users = rng.integers(0, 15, size=400)
    labels = rng.integers(0, 2, size=400)
    scores = rng.normal(size=400) + labels * 0.5
    scores[:50] = np.round(scores[:50])  # some ties
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    expected = np.mean([
        roc_auc_score(labels[users == u], scores[users == u])
        for u in np.unique(users) if 0 < labels[users == u].sum() < (users == u).sum()
    ])
    single = np.append(users, 99), np.append(labels, 1), np.append(scores, 0.0)  # one-class user is skipped
    assert uauc(*single) == pytest.approx(expected)
    with pytest.raises(ValueError):
        auc(np.ones(5), np.arange(5))


def test_paired_ttest():
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    better = paired_ttest(a + 0.5, a + rng.normal(scale=0.1, size=200))
    assert better["p"] < 1e-6 and better["mean_diff"] > 0.4
    with pytest.raises(ValueError):
        paired_ttest(np.ones(3), np.ones(4))


def test_candidate_metrics_match_hand_computed_ranks():
    from models.metrics import evaluate_candidates

    scores = np.array([[0.1, 0.9, 0.5, 0.3],       # target 1 ranks 1st
                       [0.9, 0.1, 0.5, 0.3],       # target 2 ranks 2nd
                       [0.2, -np.inf, 0.1, 0.3]])  # candidate 1 absent; target 2 ranks 3rd
    result = evaluate_candidates(scores, np.array([1, 2, 2]), ks=(1, 5))
    assert result.protocol == "candidates-4"
    per_user = result.per_user
    assert per_user["candidates4_hr_at_1"].tolist() == [1.0, 0.0, 0.0]
    assert per_user["candidates4_hr_at_5"].tolist() == [1.0, 1.0, 1.0]
    assert np.allclose(per_user["candidates4_ndcg_at_5"], [1.0, 1 / np.log2(3), 1 / np.log2(4)])
    assert np.allclose(per_user["candidates4_mrr_at_5"], [1.0, 0.5, 1 / 3])
    assert result.metrics["candidates4_hr_at_1"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="no finite score"):
        evaluate_candidates(scores, np.array([1, 2, 1]))
    with pytest.raises(ValueError, match="index one of"):
        evaluate_candidates(scores, np.array([1, 2, 4]))


def test_mcnemar_exact_p_value_by_hand():
    from models.metrics import mcnemar

    a = np.array([1] * 8 + [0] * 2 + [1] * 5 + [0] * 5)  # 8 users only A hit, 2 only B, 5 both, 5 neither
    b = np.array([0] * 8 + [1] * 2 + [1] * 5 + [0] * 5)
    result = mcnemar(a, b)
    assert (result["a_only"], result["b_only"], result["n"]) == (8, 2, 20)
    # Two-sided exact: 2 * P(X <= 2), X ~ Binomial(10, 1/2) = 2 * (1 + 10 + 45) / 1024
    assert result["p"] == pytest.approx(112 / 1024)
    assert result["diff"] == pytest.approx((13 - 7) / 20)
    assert mcnemar(a, a)["p"] == 1.0
