"""The frozen CF model's contribution to CoRA: one user and one item embedding table, looked up by lake id.

The CF model is frozen, so its embeddings are computed once (under ``no_grad``) and kept as plain
tensors; CoRA and the CF baseline read rows from them. Users or items the CF model never saw in training
(the cold ones) get a zero vector: the generator then receives no collaborative signal for that side,
and the CF baseline's dot product is 0 (probability one half).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)


@dataclass
class FrozenCF:
    user_ids: list[str]
    item_ids: list[str]
    user_table: torch.Tensor  # [n_users, d]
    item_table: torch.Tensor  # [n_items, d]
    source: str = ""  # where the embeddings came from (model name, run folder), for the record

    def __post_init__(self) -> None:
        if self.user_table.shape[1] != self.item_table.shape[1]:
            raise ValueError(f"user and item embeddings differ in size: {tuple(self.user_table.shape)} vs "
                             f"{tuple(self.item_table.shape)}")
        if len(self.user_ids) != len(self.user_table) or len(self.item_ids) != len(self.item_table):
            raise ValueError("id lists and embedding tables differ in length")
        self.user_table = self.user_table.detach().float()
        self.item_table = self.item_table.detach().float()
        self._user_pos = {str(u): i for i, u in enumerate(self.user_ids)}
        self._item_pos = {str(i): k for k, i in enumerate(self.item_ids)}

    @property
    def dim(self) -> int:
        return int(self.user_table.shape[1])

    def known_users(self, users: Sequence[str]) -> np.ndarray:
        return np.array([str(u) in self._user_pos for u in users], dtype=bool)

    def known_items(self, items: Sequence[str]) -> np.ndarray:
        return np.array([str(i) in self._item_pos for i in items], dtype=bool)

    def lookup(self, users: Sequence[str], items: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """User and item embeddings [B, d]; zeros for ids the CF model has never seen."""
        return _rows(self.user_table, self._user_pos, users), _rows(self.item_table, self._item_pos, items)

    def dot(self, users: Sequence[str], items: Sequence[str]) -> np.ndarray:
        """The CF model's own score for each pair (0 where either side is unknown)."""
        u, i = self.lookup(users, items)
        return (u * i).sum(-1).numpy()

    def save(self, path: Path) -> Path:
        torch.save({"user_ids": list(self.user_ids), "item_ids": list(self.item_ids),
                    "user_table": self.user_table, "item_table": self.item_table, "source": self.source}, path)
        return path

    @classmethod
    def load(cls, path: Path) -> FrozenCF:
        state = torch.load(path, map_location="cpu", weights_only=True)
        return cls(**state)


def _rows(table: torch.Tensor, positions: dict[str, int], ids: Sequence[str]) -> torch.Tensor:
    index = torch.tensor([positions.get(str(x), -1) for x in ids], dtype=torch.long)
    out = torch.zeros(len(ids), table.shape[1], dtype=table.dtype)
    known = index >= 0
    out[known] = table[index[known]]
    return out


@torch.no_grad()
def embeddings_of(model: nn.Module, data=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The final user [n_users, d] and item [n_items, d] vectors a dot-product CF model scores with.

    BPR-MF: its embedding tables; LightGCN: the propagated vectors; SASRec: the encoding of each user's
    training sequence (``data.sequences``) against its item table (row 0 is padding). Models whose score
    is not a plain dot product (NeuMF, MultVAE, SimpleX) are rejected rather than approximated.
    """
    was_training = model.training
    model.eval()
    try:
        if hasattr(model, "propagate"):
            users, items = model.propagate()
        elif hasattr(model, "sequence_vector"):
            users, items = _sequence_users(model, data), model.item_embedding.weight[1:]
        elif type(model).__name__ == "BPRMF":
            users, items = model.user_embedding.weight, model.item_embedding.weight
        else:
            raise TypeError(f"CoRA needs a dot-product CF model (bpr, lightgcn, sasrec), got {type(model).__name__}")
    finally:
        model.train(was_training)
    return users.detach().clone().float(), items.detach().clone().float()


def _sequence_users(model: nn.Module, data, chunk: int = 256) -> torch.Tensor:
    from models.sequences import pad_histories

    if data is None or not data.sequences:
        raise ValueError("a sequential CF model needs the training sequences to encode its users")
    users = np.arange(len(data.sequences))
    parts = []
    for start in range(0, len(users), chunk):
        history, _ = pad_histories(data.sequences, users[start:start + chunk], model.max_len)
        parts.append(model.sequence_vector(history))
    return torch.cat(parts)
