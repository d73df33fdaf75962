"""What every LLM method's candidate-choice training shares: examples, batches, the loss, a tuning loop, scoring.

An example is a prompt, its candidate titles and the index of the right one (one candidate = a plain
generative target). The LLM scores each candidate title by its length-normalised log-likelihood
(models.llmrec.scoring) and the loss is the cross-entropy of the right candidate over those scores
(``loss="choice"``) or the negative normalised log-likelihood of the right title alone (``"lm"``, the
generative objective). :func:`tune` trains given parameters (a LoRA adapter) on examples, with an optional
frozen soft prompt; :func:`score` ranks candidates. AdamW, linear warm-up then cosine decay
(models.llmrec.fitting), clipping; seeded. Used by DELRec (stage 2) and the alignment method (multi-task LoRA).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.llmrec.fitting import FitConfig as BaseFitConfig
from models.llmrec.fitting import warmup_cosine
from models.llmrec.layout import Codec, pack
from models.llmrec.scoring import candidate_scores

LOSSES = ("choice", "lm")


@dataclass
class Examples:
    """Examples in a fixed order: prompt, candidate titles, index of the right candidate, lake user id."""

    prompts: list[str]
    candidates: list[list[str]]
    targets: np.ndarray
    users: list[str]

    def __post_init__(self) -> None:
        self.targets = np.asarray(self.targets, dtype=np.int64)
        if not (len(self.prompts) == len(self.candidates) == len(self.targets) == len(self.users)):
            raise ValueError("prompts, candidates, targets and users must have the same length")
        if any(not 0 <= t < len(c) for t, c in zip(self.targets, self.candidates, strict=True)):
            raise ValueError("every target must index its example's candidates")

    def __len__(self) -> int:
        return len(self.prompts)


@dataclass
class FitConfig(BaseFitConfig):
    loss: str = "choice"  # see the module docstring

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")


def example_loss(scores: torch.Tensor, targets: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "choice":
        return nn.functional.cross_entropy(scores, targets)
    return -scores.gather(1, targets.unsqueeze(1)).mean()


def batches(examples: Examples, batch_size: int, *, seed: int | None) -> Iterator[np.ndarray]:
    """Row indices per batch: seeded shuffled order (training) or the examples' order (``seed=None``)."""
    order = np.arange(len(examples)) if seed is None else np.random.default_rng(seed).permutation(len(examples))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def _scores(model, codec: Codec, examples: Examples, rows: np.ndarray, soft: torch.Tensor | None) -> torch.Tensor:
    packed = pack(codec, [examples.prompts[r] for r in rows], [examples.candidates[r] for r in rows],
                  n_soft=0 if soft is None else soft.shape[0])
    return candidate_scores(model, packed, soft)


def tune(model: nn.Module, codec: Codec, params: Sequence[nn.Parameter], examples: Examples, config: FitConfig,
         *, soft: torch.Tensor | None = None) -> list[float]:
    """Train ``params`` on recommendation ``examples`` (soft prompt frozen or absent); step losses."""
    params = [p for p in params if p.requires_grad]
    if not params or not len(examples):
        raise ValueError("stage 2 needs trainable parameters and at least one example")
    soft = None if soft is None else soft.detach()
    torch.manual_seed(config.seed)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    schedule = warmup_cosine(optimizer, config.epochs * math.ceil(len(examples) / config.batch_size),
                         config.warmup_ratio)
    model.train()
    losses = []
    for epoch in range(config.epochs):
        for rows in batches(examples, config.batch_size, seed=config.seed + epoch):
            targets = torch.from_numpy(examples.targets[rows]).to(params[0].device)
            loss = example_loss(_scores(model, codec, examples, rows, soft), targets, config.loss)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            schedule.step()
            losses.append(round(float(loss.detach()), 5))
    model.eval()
    return losses


@torch.no_grad()
def score(model: nn.Module, codec: Codec, examples: Examples, *, soft: torch.Tensor | None = None,
          batch_size: int = 4) -> np.ndarray:
    """[N, C] candidate scores (``-inf`` beyond an example's candidates), in the examples' order."""
    model.eval()
    width = max((len(c) for c in examples.candidates), default=0)
    out = np.full((len(examples), width), -np.inf)
    soft = None if soft is None else soft.detach()
    for rows in batches(examples, batch_size, seed=None):
        values = _scores(model, codec, examples, rows, soft).float().cpu().numpy()
        out[rows, :values.shape[1]] = values
    return out
