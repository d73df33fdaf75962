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


DateOpt = typer.Option(None, "--batch-date", formats=["%Y-%m-%d"], help="Batch date (YYYY-MM-DD).")


def working(message: str) -> Any:
    """A spinner on stderr while a long job runs (stdout stays clean for --json)."""
    from rich.console import Console

    return Console(stderr=True).status(message)


@app.command()
def validate(
    batch_date: Optional[datetime] = DateOpt,
    profiles: Optional[str] = typer.Option(None, "--profiles", help="Validate profiles_user|profiles_item instead: user|item."),
    as_json: bool = JsonOpt,
) -> None:
    """Great Expectations gate on the lake (default: the latest ingested batch) or a profile table.

    Builds Data Docs under KTREC_HOME/gx/data_docs; exits 1 listing every failed expectation.
    """
    from jobs import validate as job
    from jobs.settings import get_settings

    s = get_settings()
    try:
        with working("validating with Great Expectations"):
            if profiles:
                summary = job.validate_profiles(s, entity=profiles)
            else:
                summary = job.run(s, batch_date=batch_date.date() if batch_date else None)
    except (job.ValidationFailed, ValueError) as err:
        if as_json:
            failures = [vars(f) for f in getattr(err, "failures", [])]
            emit({"success": False, "error": str(err), "failures": failures}, True)
        fail(str(err))
    emit(summary, as_json)


@app.command()
def split(
    strategy: str = typer.Option("loo", "--strategy", help="loo (leave-last-out per user) | temporal (global time cut) | random."),
    name: Optional[str] = typer.Option(None, "--name", help="Table name under lake/splits/ (default: the strategy)."),
    seed: int = typer.Option(2024, "--seed", help="Seed of the random split's hash."),
    k_core: int = typer.Option(0, "--k-core", min=0, help="Keep only users and items with >= K interactions (0: off)."),
    min_rating: Optional[float] = typer.Option(None, "--min-rating", help="Implicit positives: keep rating >= R."),
    as_json: bool = JsonOpt,
) -> None:
    """Split the lake's interactions into train/valid/test (lake table splits/NAME with meta.json).

    Duplicate (user, item) pairs are collapsed to their latest event, then --min-rating and --k-core are
    applied, then the split; valid/test rows whose user or item is absent from train are dropped.
    """
    from jobs import split as job
    from jobs.settings import get_settings

    try:
        with working(f"splitting interactions ({strategy})"):
            result = job.run(get_settings(), strategy=strategy, name=name, seed=seed, k_core=k_core,
                             min_rating=min_rating)
    except (ValueError, FileNotFoundError) as err:
        fail(str(err))
    meta = result["meta"]
    emit({"table": result["table"], **meta["counts"], "density": meta["density"],
          "dropped_cold": meta["dropped_cold"], "train_end": meta["train_end"], "seconds": result["seconds"]}
         | ({"meta": meta} if as_json else {}), as_json)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
