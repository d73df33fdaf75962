"""BPR-MF: matrix factorisation trained with Bayesian Personalised Ranking.

Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback", UAI 2009.

Hook points (module name -> what its output carries in ``calculate_loss``):
``user_embedding`` -> user vectors [B, d] for ``batch['user']`` (user side);
``item_embedding`` -> item vectors (called once for pos_item [B, d] and once for neg_item) (item side);
``user_out`` / ``item_out`` (identities) -> the user vector [B, d] and the positive items' vectors [B, d].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.cf.base import Batch, Recommender, bpr_loss, make_config, require_positive, require_range


@dataclass
class BPRConfig:
    embedding_dim: int = 64  # size of user and item vectors
    reg_weight: float = 0.0  # L2 on the batch's embeddings (prefer the optimiser's weight decay)
    n_negatives: int = 1  # negatives per positive; the loss averages over them

    def __post_init__(self) -> None:
        require_positive(self, "embedding_dim", "n_negatives")
        require_range(self, "reg_weight", 0.0, float("inf"))


class BPRMF(Recommender):
    config_class = BPRConfig
    batch_kind = "pairwise"

    def __init__(self, n_users: int, n_items: int, **config) -> None:
        super().__init__(n_users, n_items)
        self.config = make_config(BPRConfig, config)
        self.n_negatives = self.config.n_negatives
        dim = self.config.embedding_dim
        self.user_embedding = nn.Embedding(n_users, dim)
        self.item_embedding = nn.Embedding(n_items, dim)
        self.user_out = nn.Identity()
        self.item_out = nn.Identity()
        nn.init.normal_(self.user_embedding.weight, std=0.1)
        nn.init.normal_(self.item_embedding.weight, std=0.1)

    def calculate_loss(self, batch: Batch) -> torch.Tensor:
        """Scalar BPR loss over (user [B], pos_item [B], neg_item [B] or [B, N])."""
        user = self.user_out(self.user_embedding(batch["user"]))
        pos = self.item_out(self.item_embedding(batch["pos_item"]))
        neg = self.item_embedding(batch["neg_item"])
        pos_scores = (user * pos).sum(-1)
        neg_scores = (user.unsqueeze(1) * neg).sum(-1) if neg.dim() == 3 else (user * neg).sum(-1)
        loss = bpr_loss(pos_scores, neg_scores)
        if self.config.reg_weight:
            loss = loss + self.config.reg_weight * (user.pow(2).sum() + pos.pow(2).sum() + neg.pow(2).sum()) / len(user)
        return loss

    def predict(self, batch: Batch) -> torch.Tensor:
        """Scores [B] for (user, pos_item) pairs."""
        user = self.user_out(self.user_embedding(batch["user"]))
        return (user * self.item_out(self.item_embedding(batch["pos_item"]))).sum(-1)

    def full_sort_predict(self, batch: Batch) -> torch.Tensor:
        """Scores [B, n_items]."""
        user = self.user_out(self.user_embedding(batch["user"]))
        return user @ self.item_embedding.weight.T
