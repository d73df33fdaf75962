"""The registry stage on the command line: ``ktrec register`` logs a training run to MLflow and registers
its model as the `challenger`, and ``ktrec promote`` moves a version to `champion` through the gate (or
rolls the champion back). A version the gate refuses exits 2 after printing why.
"""

from __future__ import annotations

from pathlib import Path

import typer

from jobs.cli.common import JsonOpt, emit, known_errors


@known_errors()
def register(
    run_dir: Path = typer.Option(..., "--run-dir", exists=True, file_okay=False, help="A training run folder."),
    baseline_dir: Path | None = typer.Option(
        None, "--baseline-dir", exists=True, file_okay=False, help="The no-KT baseline run of the same split."),
    as_json: bool = JsonOpt,
) -> None:
    """Log a training run to MLflow and register its model as the `challenger` of ktrec-<model>."""
    from jobs.core.settings import get_settings
    from jobs.registry.tracking import register_run_dir

    emit(register_run_dir(get_settings(), run_dir=run_dir, baseline_dir=baseline_dir), as_json)


@known_errors(LookupError)  # LookupError: the model has no such version
def promote(
    model: str = typer.Option(..., "--model", help="CF model name, e.g. bpr (registered as ktrec-bpr)."),
    version: str | None = typer.Option(None, "--version", help="Version to gate; default the challenger."),
    rollback_to: str | None = typer.Option(None, "--rollback-to", help="Move champion back to this version."),
    as_json: bool = JsonOpt,
) -> None:
    """Promote a version to `champion` through the gate, or roll the champion back to a named version."""
    from jobs.core.settings import get_settings
    from jobs.registry import gate as promotion

    if version and rollback_to:
        raise ValueError("give --version or --rollback-to, not both")
    if rollback_to:
        emit(promotion.rollback(get_settings(), model=model, to_version=rollback_to), as_json)
        return
    result = promotion.promote(get_settings(), model=model, version=version)
    emit(result, as_json)
    if not result["promoted"]:
        raise typer.Exit(2)
