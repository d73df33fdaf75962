"""The teacher's side of DELRec, on any trained CF-zoo model: its top-k next items and its candidate scores.

A cut-off names the history the teacher reads on a leave-one-out split (models.data.SplitData):
``valid`` = the training sequence (predicting the item after it), ``test`` = training + valid items.
Items the user already has at that cut-off (its evaluation mask) are never predicted. Sequential models
(SASRec) read the history; the others score by user index, masked the same way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from models.cf.base import Recommender
from models.data import SplitData
from models.sequences import pad_histories

CUTOFFS = ("valid", "test")
DISPLAY = {"sasrec": "SASRec", "bpr": "BPR-MF", "lightgcn": "LightGCN", "neumf": "NeuMF", "multvae": "Mult-VAE",
           "simplex": "SimpleX"}


@torch.no_grad()
def _scores(model: Recommender, data: SplitData, users: np.ndarray, cutoff: str) -> np.ndarray:
    """[U, n_items] scores after each user's ``cutoff`` history, its masked items at ``-inf``."""
    batch = {"user": torch.from_numpy(users)}
    if model.sequential:
        batch["history"], batch["history_len"] = pad_histories(data.histories(cutoff), users, model.max_len)
    scores = model.full_sort_predict(batch).float().numpy().astype(np.float64)
    scores[data.mask(cutoff)[users].toarray() > 0] = -np.inf
    return scores


def top_k(model: Recommender, data: SplitData, *, cutoff: str, k: int = 10, batch_size: int = 256) -> pd.DataFrame:
    """One row per (user, rank): ``user_id``, ``cutoff``, ``rank`` (1 = best), ``item_id``, ``score``."""
    if cutoff not in CUTOFFS:
        raise ValueError(f"unknown cut-off {cutoff!r}; choose one of {list(CUTOFFS)}")
    model.eval()
    histories = data.histories(cutoff)
    users = np.array([u for u in range(data.n_users) if len(histories[u])], dtype=np.int64)
    frames = []
    for start in range(0, len(users), batch_size):
        chunk = users[start:start + batch_size]
        scores = _scores(model, data, chunk, cutoff)
        kk = min(k, scores.shape[1])
        top = np.argsort(-scores, axis=1, kind="stable")[:, :kk]
        values = np.take_along_axis(scores, top, axis=1)
        frames.append(pd.DataFrame({
            "user_id": np.repeat(data.train.user_ids[chunk], kk), "cutoff": cutoff,
            "rank": np.tile(np.arange(1, kk + 1), len(chunk)), "item_id": data.train.item_ids[top.ravel()],
            "score": values.ravel()}))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["user_id", "cutoff", "rank", "item_id", "score"])
    return frame[np.isfinite(frame["score"].astype(float))].reset_index(drop=True)


def candidate_scores(model: Recommender, data: SplitData, users: list[str], candidates: list[list[str]], *,
                     cutoff: str = "test") -> np.ndarray:
    """[N, C] the teacher's scores of each row's candidate items (lake ids) for lake user ``users[n]``;
    ``-inf`` for an item the teacher never saw in training (it has no embedding) or beyond a row's list."""
    model.eval()
    user_index = pd.Index(data.train.user_ids.astype(str))
    item_index = pd.Index(data.train.item_ids.astype(str))
    rows = user_index.get_indexer([str(u) for u in users])
    if (rows < 0).any():
        raise ValueError(f"{int((rows < 0).sum())} users are unknown to the teacher (not in its training split)")
    width = max((len(c) for c in candidates), default=0)
    out = np.full((len(users), width), -np.inf)
    scores = _scores(model, data, rows.astype(np.int64), cutoff) if len(rows) else np.zeros((0, 0))
    for n, items in enumerate(candidates):
        cols = item_index.get_indexer([str(i) for i in items])
        known = cols >= 0
        out[n, np.flatnonzero(known)] = scores[n, cols[known]]
    return out
