"""The one interface every CF model implements, and the training data it consumes.

Users and items are dense indices (``0..n_users-1``, ``0..n_items-1``) assigned by :class:`TrainData`;
the lake's string ids map to them through ``user_ids`` / ``item_ids``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

Batch = dict[str, torch.Tensor]
"""Keys: ``user`` [B], ``pos_item`` [B], ``neg_item`` [B] (or [B, N]); sequential models also get
``history`` [B, L] (item index + 1, 0 = padding, most recent last) and ``history_len`` [B].
Which keys a model's training batches carry is named by its ``batch_kind`` (see models.data.BATCH_KINDS)."""


@dataclass
class TrainData:
    """Everything a model needs to know about the training interactions."""

    user_ids: np.ndarray  # [n_users] lake ids, position = index
    item_ids: np.ndarray  # [n_items]
    train: sp.csr_matrix  # [n_users, n_items] implicit 0/1 training interactions
    sequences: list[np.ndarray] = field(default_factory=list)  # per user, item indices in time order

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


class Recommender(nn.Module, ABC):
    """Base class: a scoring model over ``n_users`` × ``n_items``."""

    #: True for models that read ``history`` instead of the user index (SASRec).
    sequential: bool = False
    #: Training batches the model consumes (models.data.iter_batches): "pairwise" (user, pos_item,
    #: neg_item [B] or [B, N]), "user_rows" (user only; the model reads rows of its training matrix),
    #: "sequence" (history prefix, next item as pos_item, neg_item).
    batch_kind: str = "pairwise"
    #: Negatives per positive in "pairwise"/"sequence" batches (1 gives neg_item [B], N > 1 gives [B, N]).
    n_negatives: int = 1
    #: Longest history a sequential model reads (it sets this from its config).
    max_len: int = 50

    def __init__(self, n_users: int, n_items: int) -> None:
        super().__init__()
        self.n_users = n_users
        self.n_items = n_items

    def setup(self, data: TrainData) -> None:
        """Hook for models that need the training graph or matrix (LightGCN, MultVAE). Default: nothing."""

    @abstractmethod
    def calculate_loss(self, batch: Batch) -> torch.Tensor:
        """Scalar recommendation loss for one batch."""

    @abstractmethod
    def predict(self, batch: Batch) -> torch.Tensor:
        """Scores [B] for the pairs (``batch['user']``, ``batch['pos_item']``)."""

    @abstractmethod
    def full_sort_predict(self, batch: Batch) -> torch.Tensor:
        """Scores [B, n_items] for every item, for the users in ``batch['user']``."""
