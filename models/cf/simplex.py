"""SimpleX: a user vector fused with the mean of its history, trained with a cosine contrastive loss.

Mao et al., "SimpleX: A Simple and Strong Baseline for Collaborative Filtering", CIKM 2021.
User vector = γ·e_u + (1-γ)·W·mean(e_i for i in the user's train history); scores are cosines.
Cosine contrastive loss (CCL) with many negatives: relu(1 - cos(u, i⁺)) + w · mean_j relu(cos(u, i⁻_j) - m).
Histories (the last ``history_len`` train items) are built in :meth:`setup` (required before use).

Hook points (module name -> output in ``calculate_loss``):
``user_embedding`` -> e_u [B, d] (user side); ``aggregate`` -> W·mean(history) [B, d] (user side);
``user_out`` -> the fused user vector [B, d] before dropout (user side);
``item_out`` -> positive items' vectors [B, d] (item side). ``item_embedding`` is called twice
(history [B, L, d] with row 0 = padding, then positives; negatives read its weight), so hook
``item_out`` for item-side transfer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.cf.base import Batch, Recommender, TrainData, make_config, require_positive, require_range, require_shape
from models.sequences import pad_histories


@dataclass
class SimpleXConfig:
    embedding_dim: int = 64
    history_len: int = 50  # train items averaged into the user vector
    gamma: float = 0.5  # weight of the user's own embedding against its history
    margin: float = 0.9  # negatives are only penalised above this cosine
    negative_weight: float = 10.0
    dropout: float = 0.1  # on the fused user vector
    n_negatives: int = 100

    def __post_init__(self) -> None:
        require_positive(self, "embedding_dim", "history_len", "n_negatives", "negative_weight")
        require_range(self, "gamma", 0.0, 1.0)
        require_range(self, "margin", -1.0, 1.0)
        require_range(self, "dropout", 0.0, 0.99)


class SimpleX(Recommender):
    config_class = SimpleXConfig
    batch_kind = "pairwise"

    def __init__(self, n_users: int, n_items: int, **config) -> None:
        super().__init__(n_users, n_items)
        self.config = make_config(SimpleXConfig, config)
        self.n_negatives = self.config.n_negatives
        dim = self.config.embedding_dim
        self.user_embedding = nn.Embedding(n_users, dim)
        self.item_embedding = nn.Embedding(n_items + 1, dim, padding_idx=0)  # row 0 pads histories
        self.aggregate = nn.Linear(dim, dim, bias=False)
        self.user_out = nn.Identity()
        self.item_out = nn.Identity()
        nn.init.normal_(self.user_embedding.weight, std=0.1)
        nn.init.normal_(self.item_embedding.weight, std=0.1)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()
        self.history: torch.Tensor | None = None
        self.history_len: torch.Tensor | None = None

    def setup(self, data: TrainData) -> None:
        require_shape(self, data)
        sequences = data.sequences or [row.indices.astype(np.int64) for row in data.train]
        self.history, self.history_len = pad_histories(sequences, np.arange(self.n_users), self.config.history_len)

    def _items(self, items: torch.Tensor) -> torch.Tensor:
        return self.item_embedding(items + 1)

    def user_vector(self, user: torch.Tensor) -> torch.Tensor:
        """Fused user vectors [B, d]."""
        if self.history is None:
            raise RuntimeError("SimpleX needs setup(train_data) before training or scoring")
        history, length = self.history[user], self.history_len[user].clamp(min=1)
        pooled = self.item_embedding(history).sum(1) / length.unsqueeze(1).to(self.aggregate.weight)
        gamma = self.config.gamma
        fused = self.user_out(gamma * self.user_embedding(user) + (1 - gamma) * self.aggregate(pooled))
        return F.dropout(fused, self.config.dropout, training=self.training)

    def calculate_loss(self, batch: Batch) -> torch.Tensor:
        """Cosine contrastive loss over (user [B], pos_item [B], neg_item [B] or [B, N])."""
        user = F.normalize(self.user_vector(batch["user"]), dim=-1)
        pos = F.normalize(self.item_out(self._items(batch["pos_item"])), dim=-1)
        pos_loss = F.relu(1 - (user * pos).sum(-1))
        # Cosines with every item in one matmul, then the negatives' columns: far cheaper than
        # normalising a [B, N, d] gather when N is large.
        table = F.normalize(self.item_embedding.weight[1:], dim=-1)
        neg_cos = (user @ table.T).gather(1, batch["neg_item"].reshape(len(user), -1))
        neg_loss = F.relu(neg_cos - self.config.margin).mean(1) * self.config.negative_weight
        return (pos_loss + neg_loss).mean()

    def predict(self, batch: Batch) -> torch.Tensor:
        """Cosines [B] of (user, pos_item)."""
        user = F.normalize(self.user_vector(batch["user"]), dim=-1)
        return (user * F.normalize(self.item_out(self._items(batch["pos_item"])), dim=-1)).sum(-1)

    def full_sort_predict(self, batch: Batch) -> torch.Tensor:
        """Cosines [B, n_items]."""
        user = F.normalize(self.user_vector(batch["user"]), dim=-1)
        return user @ F.normalize(self.item_embedding.weight[1:], dim=-1).T
