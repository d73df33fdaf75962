"""What every LLM method's training loop shares: its budget and optimiser settings, and the LR schedule.

:class:`FitConfig` (epochs, batch size, AdamW learning rate and weight decay, warm-up share, gradient clipping,
seed; checked on creation) and :func:`warmup_cosine`: linear warm-up over ``warmup_ratio`` of the steps, then
cosine decay to zero. Methods extend the config with their own fields (DELRec adds its loss).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class FitConfig:
    epochs: int = 1
    batch_size: int = 4
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 2024

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, lr > 0 and 0 <= warmup_ratio < 1: {self}")


def warmup_cosine(optimizer: torch.optim.Optimizer, steps: int, warmup_ratio: float):
    """A LambdaLR: linear warm-up over ``warmup_ratio`` of ``steps``, then cosine decay to zero."""
    warmup = max(1, int(warmup_ratio * steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, steps - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
