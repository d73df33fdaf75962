"""The alignment systems on one loaded LLM: the frozen LLM zero-shot, then one LoRA adapter per task mixture.

:class:`Aligner` keeps the LLM and its prompt codec; :meth:`Aligner.tune` adds a fresh LoRA adapter (same seed,
rank and targets for every mixture: only the training samples differ) and tunes it on the answers'
likelihood (``loss="lm"``, the shared loop of models/llmrec/tuning.py); :meth:`Aligner.evaluate` runs the
three recommendation tasks with whichever adapter is active (or none, zero-shot): retrieval over the whole
catalogue (models/align/retrieve.py), ranking the candidates by title likelihood, rating as the expected
digit under the softmax of the digits' scores. Timings are wall-clock on the machine that runs them.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from models.align.catalogue import Catalogue
from models.align.retrieve import beam_retrieve, score_retrieve
from models.llmrec.layout import Codec
from models.llmrec.lora import DEFAULT_TARGETS, add_lora, trainable_parameters, with_lora
from models.llmrec.tuning import Examples, FitConfig, score, tune

DIGITS = ("1", "2", "3", "4", "5")


@dataclass
class AlignConfig:
    rank: int = 8
    alpha: float = 16.0
    targets: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))
    fit: FitConfig = field(default_factory=lambda: FitConfig(lr=1e-3, loss="lm"))
    retrieval: str = "beam"  # beam | score (models/align/retrieve.py)
    beams: int = 10
    k: int = 10
    score_batch: int = 4
    seed: int = 2024

    def __post_init__(self) -> None:
        if self.retrieval not in ("beam", "score") or self.rank < 1 or self.k < 1:
            raise ValueError(f"retrieval must be beam or score, rank and k >= 1: {self}")

    def to_dict(self) -> dict:
        return asdict(self)


def generative(prompts: list[str], answers: list[str], users: list[str]) -> Examples:
    """Examples whose only candidate is the answer: the "lm" loss is its negative mean token log-likelihood."""
    return Examples(prompts=list(prompts), candidates=[[a] for a in answers], targets=np.zeros(len(prompts)),
                    users=list(users))


def expected_rating(scores: np.ndarray) -> np.ndarray:
    """[N, 5] digit scores -> the expected rating under their softmax."""
    z = np.exp(scores - scores.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)) @ np.arange(1, 6, dtype=np.float64)


class Aligner:
    def __init__(self, llm: nn.Module, codec: Codec, config: AlignConfig) -> None:
        self.llm, self.codec, self.config = llm, codec, config
        self.model: nn.Module | None = None  # the PEFT model once an adapter exists

    def tune(self, name: str, examples: Examples) -> dict:
        """A fresh adapter ``name``, tuned on ``examples``; returns seconds, losses and the parameter count."""
        cfg = self.config
        torch.manual_seed(cfg.seed)  # every mixture starts from the same LoRA init
        lora = dict(rank=cfg.rank, alpha=cfg.alpha, targets=cfg.targets)
        if self.model is None:
            self.model = with_lora(self.llm, name=name, **lora)
        else:
            add_lora(self.model, name=name, **lora)
        params = trainable_parameters(self.model)
        started = time.perf_counter()
        losses = tune(self.model, self.codec, params, examples, cfg.fit)
        k = max(1, len(losses) // 10)
        return {"train_seconds": round(time.perf_counter() - started, 2), "steps": len(losses),
                "loss_first_tenth": round(float(np.mean(losses[:k])), 5),
                "loss_last_tenth": round(float(np.mean(losses[-k:])), 5),
                "trainable_params": sum(p.numel() for p in params), "examples": len(examples)}

    @contextlib.contextmanager
    def active(self, adapter: str | None):
        """The model to evaluate: the LLM with ``adapter`` active, or the frozen LLM (``None``)."""
        if adapter is None:
            if self.model is None:
                yield self.llm
            else:
                with self.model.disable_adapter():
                    yield self.model
            return
        self.model.set_adapter(adapter)
        yield self.model

    def retrieve(self, model: nn.Module, catalogue: Catalogue, prompts: list[str], masked: list[set[int]]):
        cfg = self.config
        if cfg.retrieval == "beam":
            return beam_retrieve(model, self.codec, catalogue, prompts, masked, k=cfg.k, beams=cfg.beams)
        return score_retrieve(model, self.codec, catalogue, prompts, masked, k=cfg.k)

    def evaluate(self, adapter: str | None, catalogue: Catalogue, tasks: dict) -> dict:
        """``tasks``: ``retrieval`` (prompts, masked sets), ``ranking`` (Examples), ``rating`` (prompts) -- any
        may be missing. Returns top lists, candidate scores, predicted ratings and seconds per task."""
        out: dict = {}
        with self.active(adapter) as model:
            if tasks.get("retrieval"):
                prompts, masked = tasks["retrieval"]
                started = time.perf_counter()
                out["top"] = self.retrieve(model, catalogue, prompts, masked)
                out["retrieval_seconds_per_user"] = round((time.perf_counter() - started) / max(1, len(prompts)), 3)
            if tasks.get("ranking") is not None and len(tasks["ranking"]):
                started = time.perf_counter()
                out["ranking_scores"] = score(model, self.codec, tasks["ranking"], batch_size=self.config.score_batch)
                out["ranking_seconds_per_user"] = round((time.perf_counter() - started) / len(tasks["ranking"]), 3)
            if tasks.get("rating"):
                prompts = tasks["rating"]
                digits = Examples(prompts=list(prompts), candidates=[list(DIGITS)] * len(prompts),
                                  targets=np.zeros(len(prompts)), users=[""] * len(prompts))
                out["rating_pred"] = expected_rating(score(model, self.codec, digits, batch_size=8))
        return out
