"""Training and inference loops shared by CoRA and the plain-LoRA baseline.

A *scorer* maps a batch (``input_ids``, ``attention_mask``, ``user_emb``, ``item_emb``) to the Yes-minus-No
logit [B]; the loss is binary cross-entropy on it. Only the parameters handed to :func:`fit` are
optimised (AdamW, linear warm-up then cosine decay, gradient clipping), so frozen parts stay bitwise
unchanged. Batches group prompts of similar length to keep left-padding (and CPU time) small.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from models.cora.frozen_cf import FrozenCF
from models.cora.prompt import PromptCodec

log = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]
Scorer = Callable[[Batch], torch.Tensor]


@dataclass
class Examples:
    """Prompt examples in a fixed order: lake user/item ids, prompt text and 0/1 labels."""

    users: list[str]
    items: list[str]
    prompts: list[str]
    labels: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.prompts)
        if not (len(self.users) == len(self.items) == len(self.labels) == n):
            raise ValueError("users, items, prompts and labels must have the same length")
        self.labels = np.asarray(self.labels, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.prompts)


@dataclass
class FitConfig:
    epochs: int = 1
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_ratio: float = 0.05
    max_grad_norm: float = 1.0
    seed: int = 2024

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError(f"epochs and batch_size must be >= 1 and lr > 0: {self}")


def batches(
    examples: Examples, *, codec: PromptCodec, cf: FrozenCF | None, batch_size: int,
    shuffle: bool, seed: int = 0,
) -> Iterator[tuple[np.ndarray, Batch]]:
    """``(row indices, batch)`` pairs; rows of similar token length share a batch."""
    lengths = np.asarray(codec.lengths(examples.prompts))
    if shuffle:
        order = np.random.default_rng(seed).permutation(len(examples))
        window = batch_size * 32  # sort within windows: random batches, little padding
        order = np.concatenate([w[np.argsort(lengths[w], kind="stable")]
                                for w in np.array_split(order, max(1, math.ceil(len(order) / window)))])
        chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        chunks = [chunks[i] for i in np.random.default_rng(seed + 1).permutation(len(chunks))]
    else:
        order = np.argsort(lengths, kind="stable")
        chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    for rows in chunks:
        batch = codec.encode([examples.prompts[r] for r in rows])
        if cf is not None:
            batch["user_emb"], batch["item_emb"] = cf.lookup([examples.users[r] for r in rows],
                                                             [examples.items[r] for r in rows])
        batch["labels"] = torch.from_numpy(examples.labels[rows])
        yield rows, batch


def fit(
    scorer: Scorer, params: Sequence[nn.Parameter], examples: Examples, *, codec: PromptCodec,
    cf: FrozenCF | None, config: FitConfig, desc: str = "train",
) -> list[float]:
    """Train ``params`` to minimise BCE of ``scorer`` on ``examples``; returns the per-step losses."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: no parameter requires grad")
    torch.manual_seed(config.seed)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * math.ceil(len(examples) / config.batch_size)
    warmup = max(1, int(config.warmup_ratio * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _cosine(s, warmup, steps))
    losses: list[float] = []
    bar = tqdm(total=steps, desc=desc, disable=None)
    for epoch in range(config.epochs):
        for _, batch in batches(examples, codec=codec, cf=cf, batch_size=config.batch_size,
                                shuffle=True, seed=config.seed + epoch):
            loss = nn.functional.binary_cross_entropy_with_logits(scorer(batch), batch["labels"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
    bar.close()
    return losses


def _cosine(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


@torch.no_grad()
def predict(
    scorer: Scorer, examples: Examples, *, codec: PromptCodec, cf: FrozenCF | None, batch_size: int,
    desc: str = "score",
) -> np.ndarray:
    """The Yes-minus-No logit for every example, in the examples' order."""
    out = np.zeros(len(examples), dtype=np.float64)
    bar = tqdm(total=len(examples), desc=desc, disable=None)
    for rows, batch in batches(examples, codec=codec, cf=cf, batch_size=batch_size, shuffle=False):
        out[rows] = scorer(batch).double().numpy()
        bar.update(len(rows))
    bar.close()
    return out
