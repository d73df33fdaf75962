"""DELRec's two training stages and its scoring, on examples of (prompt, candidate titles, right index).

Every example is a choice among candidates: the LLM scores each candidate title by its length-normalised
log-likelihood (models.llmrec.scoring) and the loss is the cross-entropy of the right candidate over those
scores (``loss="choice"``), or the negative normalised log-likelihood of the right title alone (``"lm"``, the
generative objective). Stage 1 (:func:`distill`): LLM frozen, only the soft prompt trains, on temporal
analysis and pattern-simulating batches in turn, their gradients combined by :class:`GradNormWeights`.
Stage 2 (:func:`tune`, shared with the alignment method from models/llmrec/tuning.py): the given parameters
(the LoRA adapter) train on recommendation examples with the soft prompt frozen (or absent, for the
ablation). AdamW, linear warm-up then cosine decay (models.llmrec.fitting), clipping; seeded.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from models.delrec.weighting import GradNormWeights
from models.llmrec.fitting import warmup_cosine
from models.llmrec.layout import Codec
from models.llmrec.tuning import LOSSES, Examples, FitConfig, _scores, batches, example_loss, score, tune

__all__ = ["LOSSES", "Examples", "FitConfig", "batches", "distill", "example_loss", "score", "tune"]


def distill(llm: nn.Module, codec: Codec, soft: nn.Module, tasks: dict[str, Examples], config: FitConfig) -> dict:
    """Stage 1: train ``soft`` (a SoftPrompt) on every task in ``tasks`` (e.g. ``{"ta": ..., "rps": ...}``)
    with the LLM frozen; returns per-step losses and weights per task."""
    tasks = {name: ex for name, ex in tasks.items() if len(ex)}
    if not tasks:
        raise ValueError("stage 1 needs examples of at least one distilling task")
    llm.requires_grad_(False)
    torch.manual_seed(config.seed)
    vectors = soft.vectors
    optimizer = torch.optim.AdamW([vectors], lr=config.lr, weight_decay=config.weight_decay)
    per_epoch = max(math.ceil(len(ex) / config.batch_size) for ex in tasks.values())
    schedule = warmup_cosine(optimizer, config.epochs * per_epoch, config.warmup_ratio)
    weighting = GradNormWeights(list(tasks))
    log: dict[str, list] = {f"{t}_loss": [] for t in tasks} | {f"{t}_weight": [] for t in tasks}
    for epoch in range(config.epochs):
        streams = {t: _cycle(ex, config.batch_size, seed=config.seed + epoch) for t, ex in tasks.items()}
        for _ in range(per_epoch):
            grads = {}
            for name, stream in streams.items():
                rows = next(stream)
                loss = example_loss(_scores(llm, codec, tasks[name], rows, vectors),
                                    torch.from_numpy(tasks[name].targets[rows]).to(vectors.device), config.loss)
                grads[name] = torch.autograd.grad(loss, vectors)[0]
                log[f"{name}_loss"].append(round(float(loss.detach()), 5))
            combined, weights = weighting.combine(grads)
            vectors.grad = combined
            torch.nn.utils.clip_grad_norm_([vectors], config.max_grad_norm)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            for name, w in weights.items():
                log[f"{name}_weight"].append(round(w, 5))
    return log


def _cycle(examples: Examples, batch_size: int, *, seed: int) -> Iterator[np.ndarray]:
    """Batches of one task without end: a shorter task repeats (reshuffled) while the longer one runs."""
    round_ = 0
    while True:
        yield from batches(examples, batch_size, seed=seed * 1000 + round_)
        round_ += 1
