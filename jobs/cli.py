"""The ``ktrec`` command line: one command per pipeline step, exactly as Airflow runs them.

Each command imports its job lazily (``ktrec --help`` stays fast), calls the job's ``run`` and prints a
summary; with ``--json`` the last line printed is one JSON object (counts, paths, timings).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
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


def parse_time(value: str, option: str) -> datetime:
    """An ISO-8601 time from the command line (naive = UTC), or a clear error."""
    from jobs.lake import as_utc

    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError as err:
        raise typer.BadParameter(
            f"{value!r} is not an ISO-8601 time (e.g. 1998-04-22T00:00:00 or 1998-04-22)", param_hint=option
        ) from err


@app.command()
def stats(
    as_of: str = typer.Option(..., "--as-of", help="As-of time (ISO-8601, UTC if naive): count events up to it."),
    as_json: bool = JsonOpt,
) -> None:
    """Compute per-user and per-item interaction stats as of a time into the lake (user_stats, item_stats)."""
    from jobs.settings import get_settings
    from jobs.stats import run

    moment = parse_time(as_of, "--as-of")
    try:
        summary = run(get_settings(), as_of=moment)
    except FileNotFoundError as err:
        fail(str(err))
    emit(summary, as_json)


@app.command()
def materialize(
    end: str = typer.Option(..., "--end", help="Materialize features up to this time (the run's logical date)."),
    as_json: bool = JsonOpt,
) -> None:
    """Register the features/ definitions in Feast and load the online store up to --end."""
    from jobs.materialize import run
    from jobs.settings import get_settings

    emit(run(get_settings(), end=parse_time(end, "--end")), as_json)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
