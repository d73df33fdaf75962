"""DELRec and its LLM baselines on one loaded LLM, trained and scored on the same examples in turn.

Order (each step reuses the LLM the previous one left): ``zero_shot`` (the frozen LLM, no soft prompt) ->
stage 1 (:meth:`Systems.distill`: the soft prompt on TA + RPS, LLM frozen) -> ``stage1_only`` (frozen LLM +
soft prompt) -> ``delrec`` (stage 2: LoRA adapter ``default`` tuned with the soft prompt frozen) -> ``lora``
(the "without stage 1" ablation: a second adapter, same seed, rank, targets, data and budget, no soft
prompt). Every scorer returns ``{"scores": [N, C], "infer_seconds", "users_per_s"}``; trainers add
``train_seconds`` and a loss summary. Timings are wall-clock on whatever machine runs them.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from models.delrec.stages import Examples, FitConfig, distill, score, tune
from models.llmrec.layout import Codec
from models.llmrec.lora import DEFAULT_TARGETS, add_lora, trainable_parameters, with_lora
from models.llmrec.soft_prompt import SoftPrompt

DELREC_ADAPTER, ABLATION_ADAPTER = "default", "no_soft_prompt"


@dataclass
class DelRecConfig:
    n_soft: int = 100  # K soft-prompt vectors
    rank: int = 8
    alpha: float = 16.0
    targets: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))
    stage1: FitConfig = field(default_factory=lambda: FitConfig(lr=1e-2))
    stage2: FitConfig = field(default_factory=lambda: FitConfig(lr=1e-3))
    score_batch: int = 4
    seed: int = 2024

    def __post_init__(self) -> None:
        if self.n_soft < 1 or self.rank < 1:
            raise ValueError(f"n_soft and rank must be >= 1, got {self.n_soft}, {self.rank}")

    def to_dict(self) -> dict:
        return asdict(self)


def summarise(losses: list[float]) -> dict:
    k = max(1, len(losses) // 10)
    return {"steps": len(losses), "first_tenth": round(float(np.mean(losses[:k])), 5) if losses else None,
            "last_tenth": round(float(np.mean(losses[-k:])), 5) if losses else None}


class Systems:
    def __init__(self, llm: nn.Module, codec: Codec, config: DelRecConfig) -> None:
        self.llm, self.codec, self.config = llm, codec, config
        self.soft: SoftPrompt | None = None
        self.model: nn.Module | None = None  # the PEFT model once stage 2 starts

    def _score(self, model: nn.Module, test: Examples, soft: torch.Tensor | None) -> dict:
        started = time.perf_counter()
        scores = score(model, self.codec, test, soft=soft, batch_size=self.config.score_batch)
        seconds = time.perf_counter() - started
        return {"scores": scores, "infer_seconds": round(seconds, 2), "users_per_s": round(len(test) / seconds, 4)}

    def zero_shot(self, test: Examples) -> dict:
        return self._score(self.llm, test, None) | {"train_seconds": 0.0}

    def distill(self, tasks: dict[str, Examples]) -> dict:
        """Stage 1; returns losses and weights per task and the seconds taken."""
        self.soft = SoftPrompt.from_vocabulary(self.llm, self.config.n_soft, seed=self.config.seed)
        self.soft.to(next(self.llm.parameters()).device)
        started = time.perf_counter()
        log = distill(self.llm, self.codec, self.soft, tasks, self.config.stage1)
        self.soft.requires_grad_(False)
        summary = {name: summarise(values) for name, values in log.items() if name.endswith("_loss")}
        weights = {name: values[-1] for name, values in log.items() if name.endswith("_weight") and values}
        return {"train_seconds": round(time.perf_counter() - started, 2), "losses": summary, "final_weights": weights,
                "examples": {name: len(ex) for name, ex in tasks.items()}}

    def stage1_only(self, test: Examples) -> dict:
        return self._score(self.llm, test, self._vectors()) | {"train_seconds": 0.0}

    def _lora(self, train: Examples, test: Examples, *, adapter: str, soft: torch.Tensor | None) -> dict:
        cfg = self.config
        torch.manual_seed(cfg.seed)  # the same LoRA start for DELRec and its ablation
        lora = dict(rank=cfg.rank, alpha=cfg.alpha, targets=cfg.targets)
        if self.model is None:
            self.model = with_lora(self.llm, name=adapter, **lora)
        else:
            add_lora(self.model, name=adapter, **lora)
        params = trainable_parameters(self.model)
        started = time.perf_counter()
        losses = tune(self.model, self.codec, params, train, cfg.stage2, soft=soft)
        seconds = time.perf_counter() - started
        return self._score(self.model, test, soft) | {
            "train_seconds": round(seconds, 2), "loss": summarise(losses),
            "trainable_params": sum(p.numel() for p in params)}

    def delrec(self, train: Examples, test: Examples) -> dict:
        return self._lora(train, test, adapter=DELREC_ADAPTER, soft=self._vectors())

    def lora(self, train: Examples, test: Examples) -> dict:
        return self._lora(train, test, adapter=ABLATION_ADAPTER, soft=None)

    def _vectors(self) -> torch.Tensor:
        if self.soft is None:
            raise RuntimeError("run stage 1 (distill) first: there is no soft prompt yet")
        return self.soft.vectors
