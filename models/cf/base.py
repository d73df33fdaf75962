"""The one interface every CF model implements, and the training data it consumes.

Users and items are dense indices (``0..n_users-1``, ``0..n_items-1``) assigned by :class:`TrainData`;
the lake's string ids map to them through ``user_ids`` / ``item_ids``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

Batch = dict[str, torch.Tensor]
"""Keys: ``user`` [B], ``pos_item`` [B], ``neg_item`` [B] (or [B, N]); sequential models also get
``history`` [B, L] (item index + 1, 0 = padding, most recent last) and ``history_len`` [B], and in training
``target`` [B, L] (the next item at each position). Which keys a model's training batches carry is named by
its ``batch_kind`` (see models.batches.BATCH_KINDS)."""


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
    #: "sequence" (windows of the train sequence: history, the next item at every position as target).
    batch_kind: str = "pairwise"
    #: Negatives per positive (1 gives neg_item [B], N > 1 gives [B, N]; "sequence" adds the L axis).
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


def make_config(config_class: type, values: dict):
    """Build a model's config dataclass, rejecting unknown keys with the list of valid ones."""
    valid = sorted(f.name for f in fields(config_class))
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ValueError(f"unknown config keys {unknown} for {config_class.__name__}; valid keys: {valid}")
    return config_class(**values)


def require_shape(model, data: TrainData) -> None:
    """Models that keep the training graph (``setup``) need the matrix they were built for."""
    if data.train.shape != (model.n_users, model.n_items):
        raise ValueError(f"train matrix {data.train.shape} does not match the model ({model.n_users}, {model.n_items})")


def require_positive(config, *names: str) -> None:
    """``__post_init__`` helper: each named field must be > 0."""
    for name in names:
        if not getattr(config, name) > 0:
            raise ValueError(f"{type(config).__name__}.{name} must be > 0, got {getattr(config, name)!r}")


def require_range(config, name: str, low: float, high: float) -> None:
    """``__post_init__`` helper: ``low <= field <= high``."""
    value = getattr(config, name)
    if not low <= value <= high:
        raise ValueError(f"{type(config).__name__}.{name} must be in [{low}, {high}], got {value!r}")


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Mean ``-log σ(pos - neg)``; pos [B], neg [B] or [B, N] (averaged over the N negatives)."""
    if neg_scores.dim() == 2:
        pos_scores = pos_scores.unsqueeze(1)
    return -torch.nn.functional.logsigmoid(pos_scores - neg_scores).mean()
