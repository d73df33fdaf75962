"""Training batches for each ``batch_kind`` of the CF zoo, with seeded, vectorised negative sampling.

Kinds (a model names its own in ``Recommender.batch_kind``):

- ``pairwise``: every training pair once per epoch, shuffled: ``user`` [B], ``pos_item`` [B],
  ``neg_item`` [B] (``n_negatives == 1``) or [B, N]. Negatives are uniform over items the user has not
  interacted with in train (rejection sampling, a few vectorised rounds).
- ``user_rows``: every user with training items once per epoch: ``user`` [B] (the model reads its rows).
- ``sequence``: each user's time-ordered train sequence cut, from its end, into windows of up to ``max_len``
  next-item targets, every position predicting the next item (SASRec's all-positions training: each
  interaction is a target once per epoch): ``user`` [B], ``history`` [B, L] (the inputs, item index + 1,
  0 = padding, most recent last), ``history_len`` [B], ``target`` [B, L] (the item after each input, -1 under
  padding), ``pos_item`` [B] (the window's last target), ``neg_item`` [B, L] (or [B, L, N]) per target.

The same ``seed`` gives the same batches; pass ``epoch`` so each epoch draws a different order.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch

from models.cf.base import Batch, TrainData
from models.sequences import flatten, gather, pad_histories  # noqa: F401 (pad_histories re-exported)

BATCH_KINDS = ("pairwise", "user_rows", "sequence")
_REJECTION_ROUNDS = 30


def iter_batches(
    data: TrainData, *, kind: str, batch_size: int, n_negatives: int = 1, max_len: int = 50,
    seed: int = 0, epoch: int = 0,
) -> Iterator[Batch]:
    """One epoch of shuffled training batches of ``kind`` (see the module docstring)."""
    if kind not in BATCH_KINDS:
        raise ValueError(f"unknown batch kind {kind!r}; choose one of {list(BATCH_KINDS)}")
    if batch_size < 1 or n_negatives < 1 or max_len < 1:
        raise ValueError("batch_size, n_negatives and max_len must be >= 1")
    rng = np.random.default_rng([seed, epoch])
    sampler = NegativeSampler(data.train)
    if kind == "user_rows":
        users = np.flatnonzero(np.diff(data.train.indptr) > 0)
        for chunk in _chunks(rng.permutation(users), batch_size):
            yield {"user": torch.from_numpy(chunk)}
        return
    if kind == "pairwise":
        coo = data.train.tocoo()
        users, items = coo.row.astype(np.int64), coo.col.astype(np.int64)
        for chunk in _chunks(rng.permutation(len(users)), batch_size):
            yield _with_negatives(
                {"user": users[chunk], "pos_item": items[chunk]}, sampler, n_negatives, rng
            )
        return
    flat, starts = flatten(data.sequences)
    owner, begins, ends = _windows(starts, max_len)
    for chunk in _chunks(rng.permutation(len(owner)), batch_size):
        users, b, e = owner[chunk], begins[chunk], ends[chunk]
        history, lengths = gather(flat, b, e - 1, max_len)
        target = gather(flat, b + 1, e, max_len)[0] - 1
        negatives = sampler.sample(np.repeat(users, max_len), n_negatives, rng).reshape(len(users), max_len, -1)
        batch = {"user": users, "history": history, "history_len": lengths, "target": target,
                 "pos_item": flat[e - 1], "neg_item": negatives[..., 0] if n_negatives == 1 else negatives}
        yield {key: torch.from_numpy(np.ascontiguousarray(value, dtype=np.int64)) for key, value in batch.items()}


def _windows(starts: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(owner, begin, end) of each window flat[begin:end] (<= max_len + 1 items: inputs then their next
    items), cut from the end of each user's sequence so that every item after the first is a target once."""
    lengths = np.diff(starts)
    per_user = -(-np.maximum(lengths - 1, 0) // max_len)
    owner = np.repeat(np.arange(len(lengths)), per_user)
    rank = np.arange(len(owner)) - np.repeat(np.cumsum(per_user) - per_user, per_user)
    ends = starts[owner + 1] - rank * max_len
    return owner, np.maximum(starts[owner], ends - max_len - 1), ends


_DENSE_LOOKUP_MAX = 64_000_000  # user x item cells up to which membership uses a dense bitmap (64 MB)


class NegativeSampler:
    """Uniform negatives that avoid each user's training items.

    Membership is a dense boolean lookup when the matrix is small enough, else a binary search over
    sorted (user * n_items + item) keys.
    """

    def __init__(self, train: sp.csr_matrix) -> None:
        train = train.tocsr()
        train.sort_indices()
        self.n_items = train.shape[1]
        rows = np.repeat(np.arange(train.shape[0], dtype=np.int64), np.diff(train.indptr))
        self._keys = rows * self.n_items + train.indices.astype(np.int64)  # sorted: row-major, sorted cols
        self._dense = None
        if train.shape[0] * train.shape[1] <= _DENSE_LOOKUP_MAX:
            self._dense = np.zeros(train.shape[0] * train.shape[1], dtype=bool)
            self._dense[self._keys] = True

    def contains(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users * self.n_items + items
        if self._dense is not None:
            return self._dense[keys]
        if not len(self._keys):
            return np.zeros(keys.shape, dtype=bool)
        pos = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        return self._keys[pos] == keys

    def sample(self, users: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """[B, n] item indices; a user who has (almost) every item may rarely keep a positive."""
        users = np.broadcast_to(np.asarray(users, dtype=np.int64)[:, None], (len(users), n))
        items = rng.integers(0, self.n_items, size=users.shape)
        for _ in range(_REJECTION_ROUNDS):
            clash = self.contains(users, items)
            if not clash.any():
                break
            items[clash] = rng.integers(0, self.n_items, size=int(clash.sum()))
        return items


def _with_negatives(batch: dict[str, np.ndarray], sampler: NegativeSampler, n: int, rng) -> Batch:
    negatives = sampler.sample(batch["user"], n, rng)
    batch["neg_item"] = negatives[:, 0] if n == 1 else negatives
    return {key: torch.from_numpy(np.ascontiguousarray(value, dtype=np.int64)) for key, value in batch.items()}


def _chunks(values: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
