"""SASRec: a causal self-attention encoder over the user's recent items predicts the next item.

Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018. Trained on every (prefix -> next
item) of the train sequences (batch kind "sequence") with cross-entropy over all items (``loss="ce"``,
as in RecBole) or BPR against sampled negatives (``loss="bpr"``). The user is represented only by the
history: ``batch['history']`` [B, L] (item + 1, 0 = padding, most recent last); ``user`` is ignored.

Hook points (module name -> output in ``calculate_loss``):
``item_embedding`` -> history item vectors [B, L, d] (item side, position-aligned with ``history``);
``encoder`` -> per-position hidden states [B, L, d];
``seq_out`` -> the final sequence representation [B, d] at the most recent position (user side);
``user_out`` -> the same vector (the zoo-wide user-side name).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from models.cf.base import Batch, Recommender, bpr_loss, make_config, require_positive, require_range

LOSSES = ("ce", "bpr")


@dataclass
class SASRecConfig:
    embedding_dim: int = 64
    max_len: int = 50  # most recent items read
    n_layers: int = 2
    n_heads: int = 2
    inner_dim: int = 256  # feed-forward width
    dropout: float = 0.2
    loss: str = "ce"
    n_negatives: int = 1  # only used by loss="bpr"

    def __post_init__(self) -> None:
        require_positive(self, "embedding_dim", "max_len", "n_layers", "n_heads", "inner_dim", "n_negatives")
        require_range(self, "dropout", 0.0, 0.99)
        if self.embedding_dim % self.n_heads:
            raise ValueError(f"SASRecConfig.embedding_dim ({self.embedding_dim}) must be divisible by n_heads ({self.n_heads})")
        if self.loss not in LOSSES:
            raise ValueError(f"SASRecConfig.loss must be one of {list(LOSSES)}, got {self.loss!r}")


class SASRec(Recommender):
    config_class = SASRecConfig
    sequential = True
    batch_kind = "sequence"

    def __init__(self, n_users: int, n_items: int, **config) -> None:
        super().__init__(n_users, n_items)
        self.config = make_config(SASRecConfig, config)
        cfg = self.config
        self.n_negatives = cfg.n_negatives
        self.max_len = cfg.max_len
        self.item_embedding = nn.Embedding(n_items + 1, cfg.embedding_dim, padding_idx=0)
        self.position_embedding = nn.Embedding(cfg.max_len, cfg.embedding_dim)
        self.input_norm = nn.LayerNorm(cfg.embedding_dim)
        layer = nn.TransformerEncoderLayer(
            cfg.embedding_dim, cfg.n_heads, cfg.inner_dim, cfg.dropout, activation="gelu", batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.seq_out = nn.Identity()
        self.user_out = nn.Identity()
        nn.init.normal_(self.item_embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding.weight, std=0.02)

    def sequence_vector(self, history: torch.Tensor) -> torch.Tensor:
        """[B, d] representation of histories [B, L'] (L' <= max_len; longer ones keep the last max_len)."""
        history = history[:, -self.max_len:]
        length = history.shape[1]
        # Positions count back from the most recent item, so left padding does not shift them.
        positions = torch.arange(length - 1, -1, -1, device=history.device)
        x = self.item_embedding(history) + self.position_embedding(positions)
        x = F.dropout(self.input_norm(x), self.config.dropout, training=self.training)
        # Additive mask: causal, padded keys hidden. Every position may see itself, so no row is fully
        # masked (a padded query would otherwise give NaN in the fused eval path, which then spreads).
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=history.device), diagonal=1)
        own = torch.eye(length, dtype=torch.bool, device=history.device)
        blocked = (causal.unsqueeze(0) | (history == 0).unsqueeze(1)) & ~own
        mask = torch.zeros(blocked.shape, device=history.device).masked_fill(blocked, float("-inf"))
        mask = mask.repeat_interleave(self.config.n_heads, dim=0)
        hidden = self.encoder(x, mask=mask)
        return self.user_out(self.seq_out(hidden[:, -1]))

    def _item_table(self) -> torch.Tensor:
        return self.item_embedding.weight[1:]

    def calculate_loss(self, batch: Batch) -> torch.Tensor:
        """CE over all items for the next item ``pos_item`` [B], or BPR against ``neg_item``."""
        seq = self.sequence_vector(batch["history"])
        if self.config.loss == "ce":
            return F.cross_entropy(seq @ self._item_table().T, batch["pos_item"])
        pos = self.item_embedding(batch["pos_item"] + 1)
        neg = self.item_embedding(batch["neg_item"] + 1)
        neg_scores = (seq.unsqueeze(1) * neg).sum(-1) if neg.dim() == 3 else (seq * neg).sum(-1)
        return bpr_loss((seq * pos).sum(-1), neg_scores)

    def predict(self, batch: Batch) -> torch.Tensor:
        """Scores [B] of ``pos_item`` after ``history``."""
        seq = self.sequence_vector(batch["history"])
        return (seq * self._item_table()[batch["pos_item"]]).sum(-1)

    def full_sort_predict(self, batch: Batch) -> torch.Tensor:
        """Scores [B, n_items] after ``history``."""
        return self.sequence_vector(batch["history"]) @ self._item_table().T
