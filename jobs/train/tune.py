"""``ktrec tune``: Optuna (TPE, seeded) search over a scenario's ``search:`` block, selected on valid NDCG@10.

One study per (scenario, variant): the KT scenario as written, or its no-KT twin (``twin=True``: the same
commands without the transfer, and the space without the transfer parameters; jobs.train.search_space).
Both get the block's number of trials and epochs per trial, so the twin is tuned exactly as hard as the KT
variant. Every trial trains the scenario (its ``eval: test`` and ``save`` commands dropped) and scores the
final model on the valid split; the test split is blanked out of the data the trials see (no targets, no
mask, no histories), so a trial that tried to read it would fail instead of peeking.

Writes under ``output_dir``: ``best.yaml`` (the scenario with the best values written in, ``twin: true`` for the
twin: ``ktrec train --scenario best.yaml`` reruns it), ``trials.csv`` (Optuna's trials table) and
``study.json`` (space, best values, valid NDCG@10 per trial). The CLI logs them as one MLflow run
(jobs.registry.tracking.log_study).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import yaml

from jobs.core.lake import exists, split_table, table_path
from jobs.core.settings import Settings

log = logging.getLogger(__name__)
OBJECTIVE = "ndcg_at_10"
BEST, TRIALS, STUDY = "best.yaml", "trials.csv", "study.json"


def blind_to_test(data):
    """The split with its test part removed: what a search may see (train and valid only)."""
    return dataclasses.replace(data, test={}, test_mask=None, test_sequences=None)


def search_plan(raw: dict, space, values: dict[str, Any], *, twin: bool, epochs: int | None, models: dict):
    """The scenario one trial trains: ``values`` applied, the twin taken, test evaluation and saves left out."""
    from models.scenario import Eval, Save, parse_scenario

    plan = parse_scenario(space.apply(raw, values), models=models)
    if twin and not plan.is_twin:
        plan = plan.twin()
    plan = dataclasses.replace(plan, commands=tuple(
        c for c in plan.commands if not isinstance(c, Save) and not (isinstance(c, Eval) and c.split == "test")))
    return plan.with_epochs(epochs) if epochs else plan


def transfer_sides(base, space) -> list[str]:
    """Every side a trial may transfer from: the scenario's own and any a mapping choice (``side:``) picks."""
    from models.scenario import SetKT

    sides = {c.side for c in base.commands if isinstance(c, SetKT)}
    sides |= {c["side"] for p in space.params if p.command == "set_kt" and p.choices
              for c in p.choices if isinstance(c, dict) and "side" in c}
    return sorted(sides)


def run(
    settings: Settings, *, scenario: Path, split: str, seed: int, twin: bool = False, trials: int | None = None,
    epochs: int | None = None, generator: str | None = None, output_dir: Path | None = None,
    models: dict[str, type] | None = None, progress: bool = True,
) -> dict:
    """Search ``scenario``'s space on ``split``; returns the best values, best valid NDCG@10 and written paths."""
    import optuna

    from jobs.train.scenario_run import load_targets
    from jobs.train.search_space import parse_search
    from models.data import load_split
    from models.scenario import parse_scenario
    from models.trainer import Trainer, evaluate_split

    if models is None:
        from models.cf import MODELS as models
    raw = yaml.safe_load(Path(scenario).read_text())
    space = parse_search(raw, source=str(scenario))
    if twin:
        space = space.for_twin()
    base = parse_scenario({k: v for k, v in raw.items() if k != "search"}, source=str(scenario), models=models)
    n_trials, budget = trials or space.trials, epochs or space.epochs
    variant = "twin" if twin or base.is_twin else base.variant
    if not exists(settings, split_table(split)):
        raise FileNotFoundError(f"split {split!r} does not exist in {settings.lake / 'splits'}: "
                                "run `ktrec split` first")
    data = blind_to_test(load_split(table_path(settings, split_table(split))))
    sides = [] if variant == "twin" else transfer_sides(base, space)
    profiles, version = load_targets(settings, data=data, sides=sides, generator=generator)

    def objective(trial) -> float:
        values = space.suggest(trial)
        plan = search_plan(raw, space, values, twin=variant == "twin", epochs=budget, models=models)
        started = time.perf_counter()
        result = Trainer(data=data, profiles=profiles, seed=seed, models=models, progress=False).run(plan)
        score = evaluate_split(result.model, data, "valid").metrics[OBJECTIVE]
        trial.set_user_attr("best_epochs", result.best_epochs)
        trial.set_user_attr("seconds", round(time.perf_counter() - started, 2))
        log.info("%s %s trial %d: valid %s %.4f %s", base.model.name, variant, trial.number, OBJECTIVE, score, values)
        return score

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # TPE after a few random trials (Optuna's default of 10 would leave a small budget purely random).
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, n_trials // 3))
    study = optuna.create_study(direction="maximize", sampler=sampler,
                                study_name=f"{base.model.name}-{variant}-{split}")
    started = time.perf_counter()
    study.optimize(objective, n_trials=n_trials, show_progress_bar=progress)
    best_values = _values(space, study.best_trial.params)
    out = Path(output_dir) if output_dir else settings.runs_dir / "tune" / f"{base.model.name}-{variant}-{split}"
    out.mkdir(parents=True, exist_ok=True)
    best = space.apply(raw, best_values)
    if variant == "twin":
        best = {"twin": True, **best}
    best["name"] = f"{base.model.name}-{variant}-tuned"
    (out / BEST).write_text(yaml.safe_dump(best, sort_keys=False))
    study.trials_dataframe().to_csv(out / TRIALS, index=False)
    summary = {
        "model": base.model.name, "variant": variant, "split": split, "seed": seed, "trials": n_trials,
        "epochs": budget, "objective": f"valid_{OBJECTIVE}", "best_value": float(study.best_value),
        "best_params": best_values, "best_trial": study.best_trial.number,
        "values": [t.value for t in study.trials], "seconds": round(time.perf_counter() - started, 1),
        "space": [dataclasses.asdict(p) for p in space.params], "profile_version": version,
        "scenario": str(scenario), "output_dir": str(out),
        "paths": {name: str(out / name) for name in (BEST, TRIALS, STUDY)},
    }
    (out / STUDY).write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _values(space, params: dict[str, Any]) -> dict[str, Any]:
    """Optuna's best params back to scenario values (mapping choices were suggested as their JSON text)."""
    by_name = {p.name: p for p in space.params}
    return {name: by_name[name].choices[by_name[name].labels().index(v)] if by_name[name].choices else v
            for name, v in params.items()}
