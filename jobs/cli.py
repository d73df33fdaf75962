"""The ``ktrec`` command line: one command per pipeline step, exactly as Airflow runs them.

Each command imports its job lazily (``ktrec --help`` stays fast), calls the job's ``run`` and prints a
summary; with ``--json`` the last line printed is one JSON object (counts, paths, timings).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

app = typer.Typer(
    help="ktrec: keep LLM-enhanced recommenders fresh (lake, profiles, features, training, registry).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

@app.callback()
def _root() -> None:
    """ktrec: keep LLM-enhanced recommenders fresh (lake, profiles, features, training, registry)."""


JsonOpt = typer.Option(False, "--json", help="Print one JSON summary line last.")


def emit(summary: dict[str, Any], as_json: bool) -> None:
    """Print a job summary: a readable table, or one JSON line (always the last line printed)."""
    if as_json:
        sys.stdout.write(json.dumps(summary, default=str, sort_keys=True) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, box=None)
    for key, value in summary.items():
        table.add_row(f"[bold]{key}[/bold]", json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value))
    Console().print(table)


def fail(message: str, code: int = 1) -> None:
    typer.secho(message, err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


@app.command()
def settings(as_json: bool = JsonOpt) -> None:
    """Show the resolved settings (profile, KTREC_HOME and every derived location)."""
    from jobs.settings import get_settings

    s = get_settings()
    summary = s.model_dump(mode="json") | {
        "root": str(s.root), "lake": str(s.lake), "mlflow_uri": s.mlflow_uri, "data_docs": str(s.data_docs),
    }
    emit(summary, as_json)


@app.command()
def register(
    run_dir: Path = typer.Option(..., "--run-dir", exists=True, file_okay=False, help="A training run folder."),
    baseline_dir: Optional[Path] = typer.Option(
        None, "--baseline-dir", exists=True, file_okay=False, help="The no-KT baseline run of the same split."),
    as_json: bool = JsonOpt,
) -> None:
    """Log a training run to MLflow and register its model as the `challenger` of ktrec-<model>."""
    from jobs.registry import register_run_dir
    from jobs.settings import get_settings

    emit(register_run_dir(get_settings(), run_dir=run_dir, baseline_dir=baseline_dir), as_json)


@app.command()
def promote(
    model: str = typer.Option(..., "--model", help="CF model name, e.g. bpr (registered as ktrec-bpr)."),
    version: Optional[str] = typer.Option(None, "--version", help="Version to gate; default the challenger."),
    rollback_to: Optional[str] = typer.Option(None, "--rollback-to", help="Move champion back to this version."),
    as_json: bool = JsonOpt,
) -> None:
    """Promote a version to `champion` through the gate, or roll the champion back to a named version."""
    from jobs import promotion
    from jobs.settings import get_settings

    if version and rollback_to:
        fail("give --version or --rollback-to, not both")
    if rollback_to:
        emit(promotion.rollback(get_settings(), model=model, to_version=rollback_to), as_json)
        return
    result = promotion.promote(get_settings(), model=model, version=version)
    emit(result, as_json)
    if not result["promoted"]:
        raise typer.Exit(2)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
