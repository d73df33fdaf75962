"""Item sequences as padded tensors: the one piece the CF zoo's models and the batch iterators share.

A low module (it imports nothing of the project), so models.cf and models.batches both import it.
"""

from __future__ import annotations

import numpy as np
import torch


def pad_histories(sequences: list[np.ndarray], users: np.ndarray, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The last ``max_len`` items of each user's sequence: history [B, L] (item + 1, 0 = pad), lengths [B]."""
    users = np.asarray(users, dtype=np.int64)
    flat, starts = flatten([sequences[u] for u in users])
    history, lengths = gather(flat, starts[:-1], starts[1:], max_len)
    return torch.from_numpy(history), torch.from_numpy(lengths)


def flatten(sequences: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    flat = np.concatenate(sequences).astype(np.int64) if len(sequences) and starts[-1] else np.zeros(0, np.int64)
    return flat, starts


def gather(flat: np.ndarray, starts: np.ndarray, ends: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """History windows flat[max(start, end - L):end], right-aligned, as item + 1 with 0 padding."""
    positions = ends[:, None] - max_len + np.arange(max_len)[None, :]
    valid = positions >= starts[:, None]
    values = flat[np.clip(positions, 0, max(len(flat) - 1, 0))] + 1 if len(flat) else np.zeros_like(positions)
    return np.where(valid, values, 0).astype(np.int64), np.minimum(ends - starts, max_len).astype(np.int64)
