"""Holm correction, minimum detectable effect and the benchmark slices (models.metrics, models.slices) on
hand-made cases whose answers were worked out by hand."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from models.metrics import holm, min_detectable_effect
from models.slices import long_tail_items, subsample_train, tail_targets, user_bins


def test_holm_on_a_hand_computed_family():
    # sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 -> raised to 0.06 (monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = holm([0.2, float("nan"), 0.6])  # NaN is not a test: m = 2
    assert adjusted[0] == pytest.approx(0.4) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.6)
    assert holm([0.5, 0.9]) == [1.0, 1.0]  # capped at 1, and never below an earlier step


def test_minimum_detectable_effect_by_hand():
    # (z_0.975 + z_0.8) = 1.959964 + 0.841621 = 2.801585; · 0.1 / √100
    assert min_detectable_effect(0.1, 100) == pytest.approx(0.02801585, rel=1e-5)
    assert math.isnan(min_detectable_effect(0.1, 1))


def _rows(counts: list[int], n_items: int) -> sp.csr_matrix:
    rows = [u for u, c in enumerate(counts) for _ in range(c)]
    cols = [i for c in counts for i in range(c)]
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(counts), n_items))


def test_user_bins_cut_at_20_and_100():
    assert list(user_bins(_rows([20, 21, 100, 101, 1], 101))) == ["<=20", "21-100", "21-100", ">100", "<=20"]


def test_long_tail_is_the_least_popular_80_percent_with_ties_by_index():
    # item popularity 3, 1, 0, 2, 1: the four least popular are items 2, 1, 4, 3
    train = sp.csr_matrix(np.array([[1, 1, 0, 1, 0], [1, 0, 0, 1, 1], [1, 0, 0, 0, 0]]))
    assert list(long_tail_items(train)) == [False, True, True, True, True]
    assert list(long_tail_items(sp.csr_matrix(np.ones((1, 5))))) == [True, True, True, True, False]
    assert tail_targets({0: np.array([0, 1]), 1: np.array([0])}, np.array([False, True])).keys() == {0}
    with pytest.raises(ValueError, match="tail_share"):
        long_tail_items(train, tail_share=1.0)


def test_subsample_train_keeps_a_quarter_per_user_by_seeded_hash():
    train = [("a", f"i{k}", "train") for k in range(8)] + [("b", f"i{k}", "train") for k in range(3)]
    other = [("a", "v", "valid"), ("a", "t", "test"), ("c", "i0", "train"), ("c", "t", "test")]
    frame = pd.DataFrame(train + other, columns=["user_id", "item_id", "split"])
    out = subsample_train(frame, fraction=0.25, seed=7)
    kept = out[out["split"] == "train"].groupby("user_id")["item_id"].apply(set).to_dict()
    digest = {k: hashlib.sha1(f"7|a|i{k}".encode()).hexdigest() for k in range(8)}
    assert kept["a"] == {f"i{k}" for k in sorted(digest, key=digest.get)[:2]}  # ceil(8/4) smallest hashes
    assert len(kept["b"]) == 1 and kept["c"] == {"i0"}  # ceil(3/4) = 1; a single row stays
    assert len(out[out["split"] != "train"]) == 3  # valid and test untouched
    assert out.equals(subsample_train(frame, fraction=0.25, seed=7))
