"""Runs a scenario (models.scenario) on a split: seeded, validated before training, with histories.

The trainer builds the model named by ``init_model``, checks the whole scenario against it
(models.scenario.check_model) and only then interprets the commands in order. Every epoch records the
total loss, its recommendation and transfer parts, the validation metric and the seconds taken (the
MLflow plots read ``RunResult.history``). ``train`` with ``patience`` stops early and restores the weights
(model and projection) of the best validation epoch. A transfer still attached when the run ends or fails
is removed in a ``finally``.

Reproducible: ``seed`` seeds Python, NumPy and torch, and every epoch's batches come from
``iter_batches(seed, epoch)``; the same seed on the same data gives the same metrics. Given ``ranks`` (a
models.distributed.Ranks: world size > 1 in an initialised process group) the trainer is one rank of a
data-parallel run: train stages run under DDP on this rank's share of every step, rank 0 alone evaluates and
broadcasts the validation score, and only rank 0 runs ``eval`` and ``save``. Without ``ranks`` it is the
single-process loop, unchanged.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

import numpy as np
import torch
from tqdm.auto import tqdm

from models import distributed
from models.cf.base import Recommender
from models.data import SplitData, iter_batches
from models.kt import KnowledgeTransfer, ProfileTargets, layer_width, reduce_profiles, standardize_profiles
from models.metrics import EvalResult, evaluate
from models.scenario import (
    Eval,
    Freeze,
    InitModel,
    ReduceDim,
    RemoveKT,
    Save,
    Scenario,
    SetKT,
    Train,
    Unfreeze,
    check_model,
)

log = logging.getLogger(__name__)
KS = (5, 10, 20)


@dataclass
class EpochLog:
    stage: int  # index of the train command (0-based) this epoch belongs to
    epoch: int  # epoch counter over the whole run (1-based)
    kt: bool  # whether the transfer loss was active
    loss: float
    rec_loss: float
    kt_loss: float | None
    valid_metric: float | None
    seconds: float


@dataclass
class RunResult:
    model: Recommender
    model_name: str
    model_config: dict
    history: list[EpochLog] = field(default_factory=list)
    evals: dict[str, EvalResult] = field(default_factory=dict)
    saved: dict[str, dict] = field(default_factory=dict)  # save name -> state_dict copy
    best_epochs: list[int] = field(default_factory=list)  # per train command, the epoch kept

    @property
    def seconds_per_epoch(self) -> float:
        return float(np.mean([e.seconds for e in self.history])) if self.history else 0.0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def evaluate_split(model: Recommender, data: SplitData, split: str, ks=KS) -> EvalResult:
    """Full-ranking metrics on ``split`` (valid masks train; test masks train + valid)."""
    return evaluate(model, data.train, data.targets(split), data.mask(split), ks=ks,
                    histories=data.histories(split))


class Trainer:
    """Interprets scenarios on one split with fixed profile targets (``side -> ProfileTargets``)."""

    def __init__(
        self, *, data: SplitData, profiles: dict[str, ProfileTargets], seed: int,
        models: dict[str, type] | None = None, progress: bool = True, ranks: distributed.Ranks | None = None,
    ) -> None:
        if models is None:
            from models.cf import MODELS as models
        self.data, self.profiles, self.seed = data, profiles, seed
        self.models, self.progress, self.ranks = models, progress, ranks
        self.leads = ranks is None or ranks.leader  # evaluates, saves, shows progress

    def build(self, spec: InitModel) -> Recommender:
        model = self.models[spec.name](self.data.n_users, self.data.n_items, **spec.config)
        model.setup(self.data.train)
        return model

    def check(self, scenario: Scenario, model: Recommender) -> None:
        """Every model-dependent check of the scenario, on a real batch, before any training."""
        probe = next(self._batches(model, batch_size=64, epoch=0))
        check_model(scenario, model, profile_sides=set(self.profiles),
                    width_of=lambda layer, output: layer_width(model, layer, probe, output=output))

    def run(self, scenario: Scenario) -> RunResult:
        seed_everything(self.seed)
        model = self.build(scenario.model)
        self.check(scenario, model)
        seed_everything(self.seed)  # the probe may have drawn random numbers (dropout)
        result = RunResult(model, scenario.model.name, dict(scenario.model.config))
        reduced: dict[str, ProfileTargets] = {}
        kt: KnowledgeTransfer | None = None
        stage = 0
        try:
            for command in scenario.commands[1:]:
                if isinstance(command, ReduceDim):
                    reduced[command.side] = reduce_profiles(
                        self.profiles[command.side], dim=command.dim, whiten=command.whiten)
                elif isinstance(command, SetKT):
                    kt = self._attach(model, command, reduced)
                elif isinstance(command, RemoveKT):
                    kt.remove()
                    kt = None
                elif isinstance(command, (Freeze, Unfreeze)):
                    set_trainable(model, command.modules, trainable=isinstance(command, Unfreeze))
                elif isinstance(command, Train):
                    self._train(model, kt, command, stage, result)
                    stage += 1
                elif isinstance(command, Eval) and self.leads:
                    result.evals[command.split] = evaluate_split(model, self.data, command.split)
                elif isinstance(command, Save) and self.leads:
                    result.saved[command.name] = copy.deepcopy(model.state_dict())
        finally:
            if kt is not None:
                kt.remove()
        return result

    # --- commands -------------------------------------------------------------------------------------
    def _attach(self, model: Recommender, cmd: SetKT, reduced: dict[str, ProfileTargets]) -> KnowledgeTransfer:
        targets = reduced.get(cmd.side, self.profiles[cmd.side])
        if cmd.standardize:
            targets = standardize_profiles(targets)
        probe = next(self._batches(model, batch_size=64, epoch=0))
        width = layer_width(model, cmd.layer, probe, output=cmd.output)
        return KnowledgeTransfer(model, layer=cmd.layer, side=cmd.side, targets=targets, width=width,
                                 loss=cmd.loss, alpha=cmd.alpha, project=cmd.side not in reduced,
                                 index=cmd.index, output=cmd.output)

    def _train(self, model: Recommender, kt: KnowledgeTransfer | None, cmd: Train, stage: int,
               result: RunResult) -> None:
        if self.ranks is None:
            self._stage(model, kt, cmd, stage, result, None)
            return
        with distributed.stage(model, kt, self.ranks) as loss_step:  # rebuilt per stage: what trains changes
            self._stage(model, kt, cmd, stage, result, loss_step)

    def _stage(self, model: Recommender, kt: KnowledgeTransfer | None, cmd: Train, stage: int,
               result: RunResult, loss_step: torch.nn.Module | None) -> None:
        params = [p for p in model.parameters() if p.requires_grad]
        params += list(kt.parameters()) if kt is not None else []
        optimizer = torch.optim.Adam(params, lr=cmd.lr, weight_decay=cmd.weight_decay)
        metric = "{}_at_{}".format(*cmd.metric.split("@"))
        best, best_epoch, best_state, waited = -np.inf, 0, None, 0
        bar = tqdm(range(cmd.epochs), desc=f"stage {stage} ({'kt' if kt else 'rec'})",
                   disable=not (self.progress and self.leads), leave=False)
        for _ in bar:
            epoch = len(result.history) + 1
            started = time.perf_counter()
            losses = self._epoch(model, kt, optimizer, cmd.batch_size, epoch, loss_step)
            seconds = time.perf_counter() - started
            score = self._valid_score(model, metric)
            result.history.append(EpochLog(stage, epoch, kt is not None, *losses, score, seconds))
            bar.set_postfix(loss=f"{losses[0]:.4f}", **{metric: f"{score:.4f}"})
            if score > best:
                best, best_epoch, waited = score, epoch, 0
                if cmd.patience is not None:
                    best_state = _snapshot(model, kt)
            elif cmd.patience is not None:
                waited += 1
                if waited >= cmd.patience:
                    log.info("stage %d: early stop at epoch %d (best %s %.4f at %d)", stage, epoch, metric, best,
                             best_epoch)
                    break
        if best_state is not None:
            _restore(model, kt, best_state)
        result.best_epochs.append(best_epoch if cmd.patience is not None else len(result.history))

    def _valid_score(self, model: Recommender, metric: str) -> float:
        """The validation metric; under DDP rank 0's, broadcast so every rank decides alike."""
        if self.ranks is None:
            return evaluate_split(model, self.data, "valid").metrics[metric]
        score = evaluate_split(model, self.data, "valid").metrics[metric] if self.leads else None
        return distributed.broadcast_score(score, self.ranks)

    def _epoch(self, model, kt, optimizer, batch_size: int, epoch: int,
               loss_step: torch.nn.Module | None = None) -> tuple[float, float, float | None]:
        model.train()
        if loss_step is not None:  # DDP: this rank's share of each step (models.distributed)
            return distributed.epoch(loss_step, self._batches(model, batch_size=batch_size, epoch=epoch), optimizer,
                                     self.ranks)
        totals = np.zeros(3)
        n = 0
        for batch in self._batches(model, batch_size=batch_size, epoch=epoch):
            optimizer.zero_grad()
            if kt is None:
                loss = rec = model.calculate_loss(batch)
                aux = None
            else:
                loss, rec, aux = kt.loss(batch)
            loss.backward()
            optimizer.step()
            totals += [loss.item(), rec.item(), aux.item() if aux is not None else 0.0]
            n += 1
        means = totals / max(n, 1)
        return float(means[0]), float(means[1]), (float(means[2]) if kt is not None else None)

    def _batches(self, model: Recommender, *, batch_size: int, epoch: int):
        return iter_batches(self.data.train, kind=model.batch_kind, batch_size=batch_size,
                            n_negatives=model.n_negatives, max_len=model.max_len, seed=self.seed, epoch=epoch)


def set_trainable(model: torch.nn.Module, patterns: tuple[str, ...], *, trainable: bool) -> list[str]:
    """(Un)freeze the parameters of every module whose name matches a glob, walking named_modules."""
    hit = [name for name, _ in model.named_modules() if name and any(fnmatchcase(name, p) for p in patterns)]
    for name in hit:
        for param in model.get_submodule(name).parameters():
            param.requires_grad_(trainable)
    return hit


def _snapshot(model: Recommender, kt: KnowledgeTransfer | None) -> tuple[dict, dict | None]:
    return copy.deepcopy(model.state_dict()), copy.deepcopy(kt.state_dict()) if kt is not None else None


def _restore(model: Recommender, kt: KnowledgeTransfer | None, state: tuple[dict, dict | None]) -> None:
    model.load_state_dict(state[0])
    if kt is not None and state[1] is not None:
        kt.load_state_dict(state[1])
