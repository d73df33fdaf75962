"""The served form of a trained CF model: an MLflow pyfunc that maps user ids to their top-k item ids.

Why a pyfunc and not the raw pytorch flavour: downstream services ask "what should user u see?", not
"what are the scores of this index tensor?". The pyfunc keeps the lake's string ids, masks each user's
training items (the same full-ranking protocol the evaluator uses) and answers with item ids, so a
consumer needs no knowledge of the dense indices or the model class.

Artifacts (written by :func:`save_artifacts`): ``model.pt`` (the whole ``Recommender`` module, loadable
because the ``models`` package travels with the logged model as code), ``ids.npz`` (user and item ids,
position = dense index) and ``seen.npz`` (the training matrix, used to mask seen items).
This module imports nothing from ``jobs``: it must load wherever the logged model is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

DEFAULT_K = 10
BATCH_USERS = 512


def save_artifacts(model: Any, data: Any, folder: Path) -> dict[str, str]:
    """Write the artifacts of ``model`` (a Recommender) trained on ``data`` (a TrainData) into ``folder``."""
    import scipy.sparse as sp
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.cpu().eval(), folder / "model.pt")
    sequences = list(getattr(data, "sequences", None) or [])
    # Ragged per-user sequences as one flat array plus offsets (npz without pickle).
    offsets = np.cumsum([0] + [len(s) for s in sequences]).astype(np.int64)
    flat = np.concatenate(sequences).astype(np.int64) if sequences else np.zeros(0, dtype=np.int64)
    np.savez(
        folder / "ids.npz",
        user_ids=np.asarray(data.user_ids, dtype=str),
        item_ids=np.asarray(data.item_ids, dtype=str),
        seq_flat=flat,
        seq_offsets=offsets,
    )
    sp.save_npz(folder / "seen.npz", sp.csr_matrix(data.train))
    return {
        name: str(folder / f"{name}.{ext}")
        for name, ext in (("model", "pt"), ("ids", "npz"), ("seen", "npz"))
    }


class TopKRecommender(mlflow.pyfunc.PythonModel):
    """``predict(DataFrame[user_id], params={"k": 10, "exclude_seen": True})``
    -> ``DataFrame[user_id, item_ids]``.

    Unknown users get an empty list (a cold user is not an error for a batch caller).
    """

    def load_context(self, context: Any) -> None:
        import scipy.sparse as sp
        import torch

        self.model = torch.load(context.artifacts["model"], weights_only=False).eval()
        ids = np.load(context.artifacts["ids"], allow_pickle=False)
        self.user_ids = ids["user_ids"]
        self.item_ids = ids["item_ids"]
        self.user_index = {u: i for i, u in enumerate(self.user_ids.tolist())}
        self.seq_flat, self.seq_offsets = ids["seq_flat"], ids["seq_offsets"]
        self.seen = sp.load_npz(context.artifacts["seen"]).tocsr()

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None):
        k = int((params or {}).get("k", DEFAULT_K))
        # exclude_seen=False lets an evaluator on a newer split apply that split's own training mask.
        exclude_seen = bool((params or {}).get("exclude_seen", True))
        users = model_input["user_id"].astype(str).tolist()
        known = [(row, self.user_index[u]) for row, u in enumerate(users) if u in self.user_index]
        out: list[list[str]] = [[] for _ in users]
        for start in range(0, len(known), BATCH_USERS):
            chunk = known[start : start + BATCH_USERS]
            top = self._top_k([index for _, index in chunk], k, exclude_seen)
            for (row, _), items in zip(chunk, top, strict=True):
                out[row] = items
        return pd.DataFrame({"user_id": users, "item_ids": out})

    def _top_k(self, indices: list[int], k: int, exclude_seen: bool) -> list[list[str]]:
        import torch

        batch = {"user": torch.as_tensor(indices, dtype=torch.long)}
        if getattr(self.model, "sequential", False):
            batch |= self._histories(indices)
        with torch.no_grad():
            scores = self.model.full_sort_predict(batch).float()
        if exclude_seen:
            seen = torch.as_tensor(self.seen[indices].toarray(), dtype=torch.bool)
            scores = scores.masked_fill(seen, float("-inf"))
        k = min(k, scores.shape[1])
        values, top = torch.topk(scores, k, dim=1)
        return [
            [self.item_ids[j] for j, v in zip(row, vals, strict=True) if v != float("-inf")]
            for row, vals in zip(top.tolist(), values.tolist(), strict=True)
        ]

    def _histories(self, indices: list[int]) -> dict[str, Any]:
        """Sequential models read the last ``max_len`` training items in time order (index + 1, 0 = pad)."""
        import torch

        max_len = int(getattr(self.model, "max_len", 50))
        history = torch.zeros(len(indices), max_len, dtype=torch.long)
        lengths = torch.zeros(len(indices), dtype=torch.long)
        for row, user in enumerate(indices):
            if len(self.seq_offsets) > user + 1:
                items = self.seq_flat[self.seq_offsets[user] : self.seq_offsets[user + 1]][-max_len:] + 1
            else:  # no sequences saved: fall back to index order
                items = self.seen[user].indices[-max_len:] + 1
            history[row, max_len - len(items) :] = torch.as_tensor(items)
            lengths[row] = len(items)
        return {"history": history, "history_len": lengths}
