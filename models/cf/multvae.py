"""Mult-VAE: a variational autoencoder over each user's whole interaction row, multinomial likelihood.

Liang et al., "Variational Autoencoders for Collaborative Filtering", WWW 2018. KL weight β is annealed
linearly from 0 to ``anneal_cap`` over ``total_anneal_steps`` training steps. Input rows come from the
train matrix given to :meth:`setup` (required before use; evaluation therefore reads train rows only,
as in the paper and RecBole). Batch kind "user_rows": a batch is just ``user`` [B].

Hook points (module name -> output in ``calculate_loss``):
``encoder`` -> hidden user representation [B, hidden] (user side; ``encoder.0`` is its Linear);
``user_out`` -> the posterior mean μ [B, latent] (user side);
``decoder`` -> item logits [B, n_items]. There is no per-item module to hook (items are decoder rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F

from models.cf.base import Batch, Recommender, TrainData, make_config, require_positive, require_range, require_shape


@dataclass
class MultVAEConfig:
    hidden_dim: int = 600
    latent_dim: int = 64
    dropout: float = 0.5  # on the normalised input row
    anneal_cap: float = 0.2
    total_anneal_steps: int = 20000

    def __post_init__(self) -> None:
        require_positive(self, "hidden_dim", "latent_dim", "total_anneal_steps")
        require_range(self, "dropout", 0.0, 0.99)
        require_range(self, "anneal_cap", 0.0, 1.0)


class MultVAE(Recommender):
    config_class = MultVAEConfig
    batch_kind = "user_rows"

    def __init__(self, n_users: int, n_items: int, **config) -> None:
        super().__init__(n_users, n_items)
        self.config = make_config(MultVAEConfig, config)
        cfg = self.config
        self.encoder = nn.Sequential(nn.Linear(n_items, cfg.hidden_dim), nn.Tanh())
        self.mu = nn.Linear(cfg.hidden_dim, cfg.latent_dim)
        self.logvar = nn.Linear(cfg.hidden_dim, cfg.latent_dim)
        self.user_out = nn.Identity()
        self.decoder = nn.Sequential(
            nn.Linear(cfg.latent_dim, cfg.hidden_dim), nn.Tanh(), nn.Linear(cfg.hidden_dim, n_items)
        )
        self.register_buffer("anneal_step", torch.zeros((), dtype=torch.long))
        self.rows: sp.csr_matrix | None = None

    def setup(self, data: TrainData) -> None:
        require_shape(self, data)
        self.rows = sp.csr_matrix(data.train, dtype=np.float32)

    def _input(self, user: torch.Tensor) -> torch.Tensor:
        if self.rows is None:
            raise RuntimeError("MultVAE needs setup(train_data) before training or scoring")
        return torch.from_numpy(self.rows[user.cpu().numpy()].toarray()).to(self.mu.weight)

    def forward(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Item logits [B, n_items], μ and log σ² [B, latent] for input rows [B, n_items]."""
        x = F.dropout(F.normalize(rows, dim=1), self.config.dropout, training=self.training)
        hidden = self.encoder(x)
        mu, logvar = self.user_out(self.mu(hidden)), self.logvar(hidden)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decoder(z), mu, logvar

    def calculate_loss(self, batch: Batch) -> torch.Tensor:
        """Multinomial negative log-likelihood plus β·KL, averaged over the batch's users."""
        rows = self._input(batch["user"])
        logits, mu, logvar = self(rows)
        nll = -(F.log_softmax(logits, dim=1) * rows).sum(1).mean()
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1).mean()
        beta = min(self.config.anneal_cap, float(self.anneal_step) / self.config.total_anneal_steps)
        if self.training:
            self.anneal_step += 1
        return nll + beta * kl

    def predict(self, batch: Batch) -> torch.Tensor:
        """Logits [B] of (user, pos_item)."""
        logits = self.full_sort_predict(batch)
        return logits.gather(1, batch["pos_item"].view(-1, 1)).squeeze(1)

    def full_sort_predict(self, batch: Batch) -> torch.Tensor:
        """Logits [B, n_items] from the users' train rows (μ, no sampling, in eval mode)."""
        logits, _, _ = self(self._input(batch["user"]))
        return logits
