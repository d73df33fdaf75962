"""LightGCN: embeddings smoothed over the user-item graph, no transforms or non-linearities.

He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for Recommendation", SIGIR 2020.
The symmetric normalised adjacency D^-1/2 A D^-1/2 of the bipartite train graph is a torch sparse
matrix built in :meth:`setup` (required before training or scoring; it is data, not a parameter, so it
is not in the state dict). Final vectors are the mean of the layer-0..K embeddings. Loss: BPR plus
``reg_weight`` × L2 of the batch's layer-0 embeddings.

Hook points (module name -> output in ``calculate_loss``):
``user_embedding`` / ``item_embedding`` -> layer-0 tables are read by weight, not called: no hook output;
``user_out`` -> propagated user vectors [B, d] for ``batch['user']`` (user side);
``item_out`` -> propagated vectors [B, d] of ``batch['pos_item']`` (item side). The paper's authors
transfer into graph models with a cosine loss; these are the representations to hook.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from models.cf.base import (
    Batch,
    Recommender,
    TrainData,
    bpr_loss,
    make_config,
    require_positive,
    require_range,
    require_shape,
)


@dataclass
class LightGCNConfig:
    embedding_dim: int = 64
    n_layers: int = 2  # propagation steps K
    reg_weight: float = 1e-5  # L2 on layer-0 embeddings of the batch
    n_negatives: int = 1

    def __post_init__(self) -> None:
        require_positive(self, "embedding_dim", "n_layers", "n_negatives")
        require_range(self, "reg_weight", 0.0, float("inf"))


def normalized_adjacency(train: sp.csr_matrix) -> torch.Tensor:
    """D^-1/2 A D^-1/2 for A = [[0, R], [R^T, 0]] as a torch sparse CSR tensor [(U+I), (U+I)]."""
    r = sp.csr_matrix(train, dtype=np.float32)
    r.data[:] = 1.0
    adj = sp.bmat([[None, r], [r.T, None]], format="csr", dtype=np.float32)
    degree = np.asarray(adj.sum(axis=1)).ravel()
    inv_sqrt = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1e-12)), 0.0).astype(np.float32)
    norm = (sp.diags(inv_sqrt) @ adj @ sp.diags(inv_sqrt)).tocsr()
    norm.sort_indices()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": we use only CSR @ dense
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(norm.indptr.astype(np.int64)), torch.from_numpy(norm.indices.astype(np.int64)),
            torch.from_numpy(norm.data), size=norm.shape, check_invariants=True,
        )


class _SymmetricSparseMM(torch.autograd.Function):
    """``adj @ x`` for a symmetric sparse ``adj``: the gradient is ``adj @ grad``, which avoids the
    slow sparse transpose torch does for a general sparse product (about 5x faster per step on ml-100k)."""

    @staticmethod
    def forward(ctx, adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.adj = adj
        return adj @ x

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, ctx.adj @ grad


class LightGCN(Recommender):
    config_class = LightGCNConfig
    batch_kind = "pairwise"

    def __init__(self, n_users: int, n_items: int, **config) -> None:
        super().__init__(n_users, n_items)
        self.config = make_config(LightGCNConfig, config)
        self.n_negatives = self.config.n_negatives
        dim = self.config.embedding_dim
        self.user_embedding = nn.Embedding(n_users, dim)
        self.item_embedding = nn.Embedding(n_items, dim)
        self.user_out = nn.Identity()
        self.item_out = nn.Identity()
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_embedding.weight)
        self.adjacency: torch.Tensor | None = None

    def setup(self, data: TrainData) -> None:
        require_shape(self, data)
        self.adjacency = normalized_adjacency(data.train)

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean of layer-0..K embeddings: users [U, d], items [I, d]."""
        if self.adjacency is None:
            raise RuntimeError("LightGCN needs setup(train_data) before training or scoring")
        layer = torch.cat([self.user_embedding.weight, self.item_embedding.weight])
        total = layer
        for _ in range(self.config.n_layers):
            layer = _SymmetricSparseMM.apply(self.adjacency, layer)
            total = total + layer
        final = total / (self.config.n_layers + 1)
        return final[: self.n_users], final[self.n_users:]

    def calculate_loss(self, batch: Batch) -> torch.Tensor:
        """BPR over (user [B], pos_item [B], neg_item [B] or [B, N]) plus L2 on layer-0 vectors."""
        users, items = self.propagate()
        user = self.user_out(users[batch["user"]])
        pos = self.item_out(items[batch["pos_item"]])
        neg = items[batch["neg_item"]]
        neg_scores = (user.unsqueeze(1) * neg).sum(-1) if neg.dim() == 3 else (user * neg).sum(-1)
        loss = bpr_loss((user * pos).sum(-1), neg_scores)
        if self.config.reg_weight:
            ego = (
                self.user_embedding.weight[batch["user"]].pow(2).sum()
                + self.item_embedding.weight[batch["pos_item"]].pow(2).sum()
                + self.item_embedding.weight[batch["neg_item"]].pow(2).sum()
            )
            loss = loss + self.config.reg_weight * ego / len(user)
        return loss

    def predict(self, batch: Batch) -> torch.Tensor:
        """Scores [B] for (user, pos_item) pairs."""
        users, items = self.propagate()
        return (self.user_out(users[batch["user"]]) * self.item_out(items[batch["pos_item"]])).sum(-1)

    def full_sort_predict(self, batch: Batch) -> torch.Tensor:
        """Scores [B, n_items]."""
        users, items = self.propagate()
        return self.user_out(users[batch["user"]]) @ items.T
