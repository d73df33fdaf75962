"""``ktrec tune``: Optuna (TPE, seeded) hyper-parameter search over a scenario's ``search:`` block on a split,
selected on valid NDCG@10 only (the test split is never read), for the KT scenario or its no-KT twin with the
same trials and epochs (jobs.train.tune); the study is logged as one MLflow run (experiment ``ktrec-tune``).
"""

from __future__ import annotations

from pathlib import Path

import typer

from jobs.cli.common import JsonOpt, emit, known_errors


@known_errors(LookupError, code=1)
def tune(
    scenario: Path = typer.Option(..., "--scenario", exists=True, dir_okay=False,
                                  help="Scenario YAML with a `search:` block (see conf/)."),
    split: str = typer.Option(..., "--split", help="Split table name (lake splits/<name>)."),
    twin: bool = typer.Option(False, "--twin", help="Tune the no-KT twin (the space without the transfer keys)."),
    trials: int | None = typer.Option(None, "--trials", min=1, help="Trials (default: the block's `trials`)."),
    epochs: int | None = typer.Option(None, "--epochs", min=1,
                                      help="Total epochs per trial (default: the block's `epochs`, else the conf's)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the sampler and of every trial (default: settings)."),
    generator: str | None = typer.Option(None, "--generator", help="Use only profiles of this generator prefix."),
    output_dir: Path | None = typer.Option(None, "--output-dir", help="Study folder (default runs/tune/...)."),
    mlflow: bool = typer.Option(True, "--mlflow/--no-mlflow", help="Log the study as an MLflow run."),
    as_json: bool = JsonOpt,
) -> None:
    """Tune a scenario (or its twin) with Optuna on valid NDCG@10; writes best.yaml, trials.csv, study.json."""
    from jobs.core.settings import get_settings
    from jobs.train.tune import run

    s = get_settings()
    summary = run(s, scenario=scenario, split=split, seed=s.seed if seed is None else seed, twin=twin,
                  trials=trials, epochs=epochs, generator=generator, output_dir=output_dir, progress=not as_json)
    if mlflow:
        from jobs.registry.tracking import log_study

        summary["mlflow_run_id"] = log_study(s, summary=summary)
    emit({k: v for k, v in summary.items() if k not in ("space", "values")}, as_json)
