"""SASRec: a causal self-attention encoder over the user's recent items predicts the next item.

Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018. Trained as in the paper on windows
of each user's train sequence where every position predicts the item after it (batch kind "sequence":
``history`` [B, L] item + 1 with 0 = padding, most recent last; ``target`` [B, L], -1 under padding), with
cross-entropy over all items (``loss="ce"``) or BPR against sampled negatives (``loss="bpr"``). Scoring
reads the state at the most recent position; ``user`` is ignored.

Hook points (module name -> output):
``item_embedding`` -> history item vectors [B, L, d] (item side, position-aligned with ``history``);
``encoder`` -> per-position hidden states [B, L, d];
``seq_out`` / ``user_out`` (the zoo-wide user-side name) -> the same states [B, L, d]; knowledge transfer
takes the most recent position as the user's representation.
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
            raise ValueError(
                f"SASRecConfig.embedding_dim ({self.embedding_dim}) must be divisible by n_heads ({self.n_heads})"
            )
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

    def sequence_states(self, history: torch.Tensor) -> torch.Tensor:
        """[B, L', d] states of histories [B, L'] (L' <= max_len; longer ones keep the last max_len)."""
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
        return self.user_out(self.seq_out(self.encoder(x, mask=mask)))

    def sequence_vector(self, history: torch.Tensor) -> torch.Tensor:
        """[B, d]: the state at the most recent position."""
        return self.sequence_states(history)[:, -1]

    def _item_table(self) -> torch.Tensor:
        return self.item_embedding.weight[1:]

    def calculate_loss(self, batch: Batch) -> torch.Tensor:
        """Next-item loss at every non-padded position of ``history``: CE over all items, or BPR of
        ``target`` against ``neg_item``."""
        target = batch["target"][:, -self.max_len:]
        valid = target >= 0
        states = self.sequence_states(batch["history"])[valid]
        if self.config.loss == "ce":
            return F.cross_entropy(states @ self._item_table().T, target[valid])
        pos = self.item_embedding(target[valid] + 1)
        neg = self.item_embedding(batch["neg_item"][:, -self.max_len:][valid] + 1)
        neg_scores = (states.unsqueeze(1) * neg).sum(-1) if neg.dim() == 3 else (states * neg).sum(-1)
        return bpr_loss((states * pos).sum(-1), neg_scores)

    def predict(self, batch: Batch) -> torch.Tensor:
        """Scores [B] of ``pos_item`` after ``history``."""
        seq = self.sequence_vector(batch["history"])
        return (seq * self._item_table()[batch["pos_item"]]).sum(-1)

    def full_sort_predict(self, batch: Batch) -> torch.Tensor:
        """Scores [B, n_items] after ``history``."""
        return self.sequence_vector(batch["history"]) @ self._item_table().T
