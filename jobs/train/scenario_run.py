"""Train one CF model by a scenario on a lake split: ``ktrec train --scenario FILE --split NAME``.

Reads ``splits/<name>`` (models.data), the profile embeddings the scenario transfers from (Feast historical
retrieval at the split's ``train_end``: jobs.train.profile_targets), runs the scenario (models.trainer) and
writes one run folder, published by a single rename so a crash leaves no half-written run
(:mod:`jobs.train.run_folder`; ``scenario.yaml`` is the scenario as run, with ``--epochs`` applied).
:func:`run` is :func:`prepare` (driver-side reads), the trainer, :func:`outcome` (evaluation, metrics) and
:func:`publish` (the write); jobs.train.distributed runs the same pieces around a data-parallel trainer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from jobs.core.lake import exists, split_table, table_path
from jobs.core.settings import Settings
from jobs.train import run_folder

log = logging.getLogger(__name__)


@dataclass
class Inputs:
    """Everything a training run needs, read on the driver: the scenario, the split, the profile targets."""

    plan: Any  # models.scenario.Scenario
    data: Any  # models.data.SplitData
    profiles: dict
    version: dict
    split: str
    seed: int
    output_dir: Path | None = None


@dataclass
class Outcome:
    """A trained run ready to publish: its inputs, folder, metrics and per-split evaluations."""

    inputs: Inputs
    result: Any  # models.trainer.RunResult
    run_dir: Path
    metrics: dict
    evals: dict

    @property
    def summary(self) -> dict:
        """What :func:`publish` returns, known before anything is written."""
        return run_folder.summary(self.run_dir, self.metrics)


def run(
    settings: Settings, *, scenario: Path, split: str, seed: int, output_dir: Path | None = None,
    epochs: int | None = None, generator: str | None = None, models: dict[str, type] | None = None,
    progress: bool = True, twin: bool = False,
) -> dict:
    """Run ``scenario`` on split ``split``; returns the summary (paths, test metrics, profile version).

    ``generator`` restricts the profiles to one generator prefix (e.g. ``template:``); ``models`` replaces
    the model registry (models.cf.MODELS) for tests of the mechanism on toy models; ``twin`` runs the KT
    scenario's no-KT twin (models.scenario.Scenario.twin).
    """
    from models.trainer import Trainer

    inputs = prepare(settings, scenario=scenario, split=split, seed=seed, output_dir=output_dir, epochs=epochs,
                     generator=generator, models=models, twin=twin)
    result = Trainer(data=inputs.data, profiles=inputs.profiles, seed=seed, models=models,
                     progress=progress).run(inputs.plan)
    return publish(outcome(settings, inputs, result))


def prepare(
    settings: Settings, *, scenario: Path, split: str, seed: int, output_dir: Path | None = None,
    epochs: int | None = None, generator: str | None = None, models: dict[str, type] | None = None,
    twin: bool = False,
) -> Inputs:
    """Load the scenario (its twin with ``twin``; ``epochs`` applied), the split and the profiles it transfers
    from."""
    from models.data import load_split
    from models.scenario import SetKT, load_scenario

    if models is None:
        from models.cf import MODELS as models
    plan = load_scenario(Path(scenario), models=models)
    if twin and not plan.is_twin:
        plan = plan.twin()
    if epochs is not None:
        plan = plan.with_epochs(epochs)
    if not exists(settings, split_table(split)):
        raise FileNotFoundError(f"split {split!r} does not exist in {settings.lake / 'splits'}: "
                                "run `ktrec split` first")
    data = load_split(table_path(settings, split_table(split)))
    sides = sorted({c.side for c in plan.commands if isinstance(c, SetKT)})
    profiles, version = load_targets(settings, data=data, sides=sides, generator=generator)
    return Inputs(plan, data, profiles, version, split, seed, Path(output_dir) if output_dir else None)


def outcome(settings: Settings, inputs: Inputs, result) -> Outcome:
    """Evaluate the trained model on valid and test and assemble metrics.json (nothing written yet)."""
    from models.trainer import evaluate_split

    plan, data, split, seed = inputs.plan, inputs.data, inputs.split, inputs.seed
    evals = {name: evaluate_split(result.model, data, name) for name in ("valid", "test")}
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    run_dir = inputs.output_dir or settings.runs_dir / f"{plan.model.name}-{plan.variant}-{split}-s{seed}-{stamp}"
    metrics = {
        "model": plan.model.name, "variant": plan.variant, "scenario": plan.name, "split": split, "seed": seed,
        "protocol": evals["test"].protocol, "valid": evals["valid"].to_dict(), "test": evals["test"].to_dict(),
        "best_epochs": result.best_epochs, "seconds_per_epoch": result.seconds_per_epoch,
        "history": [vars(e) for e in result.history], "profile_version": inputs.version,
        "dropped": data.dropped,
    }
    return Outcome(inputs, result, Path(run_dir), metrics, evals)


def publish(out: Outcome) -> dict:
    """Write the run folder (one rename: jobs.train.run_folder) and return the training summary."""
    plan, data, result = out.inputs.plan, out.inputs.data, out.result
    run_folder.write(
        out.run_dir, metrics=out.metrics, model=result.model, snapshots=result.saved,
        per_user={name: pd.DataFrame({"user_id": data.train.user_ids[ev.users], **ev.per_user})
                  for name, ev in out.evals.items()},
        spec={"name": plan.model.name, "config": plan.model.config, "n_users": data.n_users,
              "n_items": data.n_items, "user_ids": data.train.user_ids.tolist(),
              "item_ids": data.train.item_ids.tolist()},
        scenario_yaml=yaml.safe_dump(scenario_dict(plan), sort_keys=False),
    )
    log.info("trained %s (%s) on %s: test %s", plan.model.name, plan.variant, out.inputs.split,
             out.evals["test"].metrics)
    return out.summary


def load_targets(settings: Settings, *, data, sides: list[str], generator: str | None = None) -> tuple[dict, dict]:
    """Profile targets per side, aligned with the split's indices, as of the split's ``train_end`` (Feast
    point-in-time retrieval; the lake's history for one ``generator``: jobs.train.profile_targets)."""
    from jobs.train.profile_targets import read_profiles
    from models.kt import align_profiles

    if not sides:
        return {}, {}
    if not data.meta.get("train_end"):
        raise ValueError("the split's meta.json has no train_end: cannot read profiles point-in-time")
    as_of = datetime.fromisoformat(str(data.meta["train_end"]).replace("Z", "+00:00"))
    profiles, version = {}, {}
    for side in sides:
        ids = data.train.user_ids if side == "user" else data.train.item_ids
        vectors, version[side] = read_profiles(settings, entity=side, as_of=as_of, ids=ids.astype(str).tolist(),
                                               generator=generator)
        profiles[side] = align_profiles(ids, vectors)
        version[side]["coverage"] = float(profiles[side].mask.float().mean())
    return profiles, version


def scenario_dict(plan) -> dict:
    """A parsed scenario back as YAML-ready data (every option spelled out)."""
    from dataclasses import asdict

    from models.scenario import COMMANDS

    names = {cls: name for name, cls in COMMANDS.items()}
    commands = [{names[type(c)]: {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(c).items()}}
                for c in plan.commands]
    return {"name": plan.name, "commands": commands}
