"""Where a gain should show: user-activity and item-popularity slices of an evaluation, and a sparse regime.

- :func:`user_bins`: each user's bin by training-interaction count (≤ 20, 21–100, > 100);
- :func:`long_tail_items`: the least popular share of the catalogue (80 % by default) by training count,
  ties broken by item index so the cut is deterministic; :func:`tail_targets` keeps only those targets (a
  long-tail evaluation ranks the whole catalogue but counts hits on tail items only);
- :func:`subsample_train`: each user's training rows cut to a fraction (at least one), chosen by a seeded
  hash of (user, item), so the same seed always keeps the same rows; valid and test rows are kept.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import scipy.sparse as sp

USER_BINS = (("<=20", 0, 20), ("21-100", 21, 100), (">100", 101, None))


def user_bins(train: sp.csr_matrix) -> np.ndarray:
    """Bin label per user index from the user's number of training interactions."""
    counts = np.diff(train.indptr)
    labels = np.empty(len(counts), dtype=object)
    for label, low, high in USER_BINS:
        labels[(counts >= low) & ((counts <= high) if high is not None else True)] = label
    return labels


def long_tail_items(train: sp.csr_matrix, *, tail_share: float = 0.8) -> np.ndarray:
    """Boolean mask over item indices: the ``tail_share`` least popular items (by training interactions)."""
    if not 0.0 < tail_share < 1.0:
        raise ValueError(f"tail_share must be in (0, 1), got {tail_share}")
    popularity = np.asarray((train > 0).sum(axis=0)).ravel()
    order = np.lexsort((np.arange(len(popularity)), popularity))  # least popular first, then by index
    mask = np.zeros(len(popularity), dtype=bool)
    mask[order[: int(round(tail_share * len(popularity)))]] = True
    return mask


def tail_targets(targets: dict[int, np.ndarray], tail: np.ndarray) -> dict[int, np.ndarray]:
    """Targets restricted to tail items; users left without any are dropped."""
    kept = {u: items[tail[items]] for u, items in targets.items()}
    return {u: items for u, items in kept.items() if len(items)}


def subsample_train(frame: pd.DataFrame, *, fraction: float, seed: int) -> pd.DataFrame:
    """``frame`` (user_id, item_id, split, ...) with each user's train rows cut to ``ceil(fraction · n)``
    (at least 1), the rows with the smallest seeded hash of (user, item) kept; other splits untouched."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    train = frame[frame["split"] == "train"]
    keys = [hashlib.sha1(f"{seed}|{u}|{i}".encode()).hexdigest() for u, i in zip(train["user_id"], train["item_id"],
                                                                                 strict=True)]
    ranked = train.assign(_key=keys).sort_values(["user_id", "_key"], kind="stable")
    position = ranked.groupby("user_id").cumcount()
    keep = np.ceil(fraction * ranked.groupby("user_id")["_key"].transform("size")).clip(lower=1)
    chosen = ranked[position < keep].drop(columns="_key")
    return pd.concat([chosen, frame[frame["split"] != "train"]]).sort_index(kind="stable")
