"""NeuMF: generalised matrix factorisation fused with an MLP over user ‖ item embeddings.

He et al., "Neural Collaborative Filtering", WWW 2017. Trained pointwise: binary cross-entropy with the
positive labelled 1 and each sampled negative labelled 0 (batch kind "pairwise", ``n_negatives`` per positive).

Hook points (module name -> output in ``calculate_loss``):
``user_gmf_embedding`` / ``user_mlp_embedding`` -> user vectors [B, d] (user side), called once per batch;
``item_gmf_embedding`` / ``item_mlp_embedding`` -> item vectors (item side), called once on
pos ‖ neg items [B * (1 + N), d]; ``mlp.0`` (first Linear) ... ``mlp.<2n>`` -> pair representations;
``user_out`` -> the user's [gmf ‖ mlp] vector [B, 2d]; ``item_out`` -> the positive items' [gmf ‖ mlp] [B, 2d].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from models.cf.base import Batch, Recommender, make_config, require_positive, require_range


@dataclass
class NeuMFConfig:
    embedding_dim: int = 64  # per path (GMF and MLP each get their own user/item vectors)
    mlp_hidden: list[int] = field(default_factory=lambda: [128, 64, 32])  # MLP widths after the 2d input
    dropout: float = 0.1
    n_negatives: int = 4  # negatives per positive, as in the paper

    def __post_init__(self) -> None:
        require_positive(self, "embedding_dim", "n_negatives")
        require_range(self, "dropout", 0.0, 0.99)
        if not self.mlp_hidden or any(int(h) < 1 for h in self.mlp_hidden):
            raise ValueError(
                f"NeuMFConfig.mlp_hidden must be a non-empty list of positive widths, got {self.mlp_hidden}"
            )


class NeuMF(Recommender):
    config_class = NeuMFConfig
    batch_kind = "pairwise"

    def __init__(self, n_users: int, n_items: int, **config) -> None:
        super().__init__(n_users, n_items)
        self.config = make_config(NeuMFConfig, config)
        self.n_negatives = self.config.n_negatives
        dim = self.config.embedding_dim
        self.user_gmf_embedding = nn.Embedding(n_users, dim)
        self.item_gmf_embedding = nn.Embedding(n_items, dim)
        self.user_mlp_embedding = nn.Embedding(n_users, dim)
        self.item_mlp_embedding = nn.Embedding(n_items, dim)
        layers: list[nn.Module] = []
        width = 2 * dim
        for hidden in self.config.mlp_hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(self.config.dropout)]
            width = hidden
        self.mlp = nn.Sequential(*layers)
        self.predict_layer = nn.Linear(dim + width, 1)
        self.user_out = nn.Identity()
        self.item_out = nn.Identity()
        for emb in (self.user_gmf_embedding, self.item_gmf_embedding, self.user_mlp_embedding, self.item_mlp_embedding):
            nn.init.normal_(emb.weight, std=0.01)

    def calculate_loss(self, batch: Batch) -> torch.Tensor:
        """BCE over positives (label 1) and negatives (label 0); neg_item [B] or [B, N]."""
        user, pos, neg = batch["user"], batch["pos_item"], batch["neg_item"]
        neg = neg.reshape(len(user), -1)
        # User vectors once per batch so user-side hooks see [B, d]; then expanded to every pair.
        u = self.user_out(torch.cat([self.user_gmf_embedding(user), self.user_mlp_embedding(user)], dim=-1))
        items = torch.cat([pos, neg.reshape(-1)])
        users_rep = torch.cat([u, u.repeat_interleave(neg.shape[1], dim=0)])
        i_all = torch.cat([self.item_gmf_embedding(items), self.item_mlp_embedding(items)], dim=-1)
        i_all = torch.cat([self.item_out(i_all[: len(pos)]), i_all[len(pos):]])
        logits = self._score(users_rep, i_all)
        labels = torch.cat([torch.ones(len(pos)), torch.zeros(neg.numel())]).to(logits)
        return F.binary_cross_entropy_with_logits(logits, labels)

    def _score(self, user_vec: torch.Tensor, item_vec: torch.Tensor) -> torch.Tensor:
        """Logits [P] from [gmf ‖ mlp] user and item vectors [P, 2d]."""
        dim = self.config.embedding_dim
        pair = self.mlp(torch.cat([user_vec[:, dim:], item_vec[:, dim:]], dim=-1))
        return self.predict_layer(torch.cat([user_vec[:, :dim] * item_vec[:, :dim], pair], dim=-1)).squeeze(-1)

    def predict(self, batch: Batch) -> torch.Tensor:
        """Logits [B] for (user, pos_item) pairs."""
        user, item = batch["user"], batch["pos_item"]
        u = self.user_out(torch.cat([self.user_gmf_embedding(user), self.user_mlp_embedding(user)], dim=-1))
        i = self.item_out(torch.cat([self.item_gmf_embedding(item), self.item_mlp_embedding(item)], dim=-1))
        return self._score(u, i)

    def full_sort_predict(self, batch: Batch) -> torch.Tensor:
        """Logits [B, n_items] (the MLP runs on all B * n_items pairs, in row chunks)."""
        user = batch["user"]
        u = self.user_out(torch.cat([self.user_gmf_embedding(user), self.user_mlp_embedding(user)], dim=-1))
        items = torch.cat([self.item_gmf_embedding.weight, self.item_mlp_embedding.weight], dim=-1)
        rows = []
        for start in range(0, len(u), 64):
            chunk = u[start:start + 64]
            pairs_u = chunk.repeat_interleave(self.n_items, dim=0)
            pairs_i = items.repeat(len(chunk), 1)
            rows.append(self._score(pairs_u, pairs_i).view(len(chunk), self.n_items))
        return torch.cat(rows)
