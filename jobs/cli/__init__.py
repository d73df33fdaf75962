"""The ``ktrec`` command line: one command per pipeline step, exactly as Airflow runs them.

Each command imports its job lazily (``ktrec --help`` stays fast), calls the job's ``run`` and prints a
summary; with ``--json`` the last line printed is one JSON object (counts, paths, timings).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


def parse_time(value: str, option: str) -> datetime:
    """An ISO-8601 time from the command line (naive = UTC), or a clear error."""
    from jobs.core.lake import as_utc

    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError as err:
        raise typer.BadParameter(
            f"{value!r} is not an ISO-8601 time (e.g. 1998-04-22T00:00:00 or 1998-04-22)", param_hint=option
        ) from err


def _utcnow() -> datetime:
    return datetime.now(UTC)


@app.command()
def settings(as_json: bool = JsonOpt) -> None:
    """Show the resolved settings (profile, KTREC_HOME and every derived location)."""
    from jobs.core.settings import get_settings

    s = get_settings()
    summary = s.model_dump(mode="json") | {
        "root": str(s.root), "lake": str(s.lake), "mlflow_uri": s.mlflow_uri, "data_docs": str(s.data_docs),
    }
    emit(summary, as_json)


@app.command()
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


@app.command()
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
        fail("give --version or --rollback-to, not both")
    if rollback_to:
        emit(promotion.rollback(get_settings(), model=model, to_version=rollback_to), as_json)
        return
    result = promotion.promote(get_settings(), model=model, version=version)
    emit(result, as_json)
    if not result["promoted"]:
        raise typer.Exit(2)


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
    fmt: str | None = typer.Option(None, "--format", help="ml100k|ml1m|mlcsv|recbole|csv|jsonl|parquet (default: detected)."),
    batch_date: str | None = typer.Option(None, "--batch-date", help="Logical date of the batch, YYYY-MM-DD (default: today, UTC)."),
    column_map: str | None = typer.Option(None, "--map", help="Column mapping for generic logs: user_id=uid,item_id=iid,timestamp=ts,rating=r."),
    as_json: bool = JsonOpt,
) -> None:
    """Ingest interaction logs into the lake with Spark (partitioned by event_date, bad rows quarantined)."""
    from datetime import date, datetime

    from jobs.core.settings import get_settings
    from jobs.ingest.batch import run
    from jobs.ingest.text import MissingColumnsError

    try:
        day = date.fromisoformat(batch_date) if batch_date else datetime.now(UTC).date()
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
    url: str | None = typer.Option(None, "--url", help="Mirror URL of the zip archive."),
    as_json: bool = JsonOpt,
) -> None:
    """Download a public dataset, check its MD5 and unpack it (fails clearly without network)."""
    from jobs.ingest.datasets import DownloadError, download

    try:
        path = download(name, dest=dest, url=url)
    except (DownloadError, KeyError) as exc:
        fail(str(exc))
    emit({"dataset": name, "path": str(path)}, as_json)


@app.command()
def profiles(
    entity: str = typer.Option(..., "--entity", help="user or item."),
    backend: str | None = typer.Option(None, "--backend", help="template | transformers | vllm | openai "
                                          "(default: settings.llm.backend)."),
    as_of: str | None = typer.Option(None, "--as-of", help="Use interactions up to this UTC time (default now)."),
    full: bool = typer.Option(False, "--full", help="Regenerate every profile, changed or not."),
    as_json: bool = JsonOpt,
) -> None:
    """Generate user or item profiles (only those whose inputs changed) and append them to the lake."""
    from jobs.core.settings import get_settings
    from jobs.profiles import generate as job

    if entity not in ("user", "item"):
        fail(f"--entity must be user or item, not {entity!r}", code=2)
    try:
        summary = job.run(get_settings(), entity=entity, backend=backend, as_of=parse_time(as_of, "--as-of") if as_of else _utcnow(), full=full,
                          progress=not as_json)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    emit(summary, as_json)


@app.command()
def train(
    scenario: Path = typer.Option(..., "--scenario", exists=True, dir_okay=False, help="Scenario YAML (see conf/)."),
    split: str = typer.Option(..., "--split", help="Split table name (lake splits/<name>)."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (default: settings.seed)."),
    epochs: int | None = typer.Option(None, "--epochs", help="Total epochs, shared among the train commands."),
    generator: str | None = typer.Option(None, "--generator", help="Use only profiles of this generator prefix (read from the lake's profile history; default: Feast)."),
    output_dir: Path | None = typer.Option(None, "--output-dir", help="Run folder (default under runs/)."),
    as_json: bool = JsonOpt,
) -> None:
    """Train a CF model by a scenario (baseline or LLM-KT) on a split; writes metrics, model and scenario."""
    from jobs.core.settings import get_settings
    from jobs.train.scenario_run import run
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

    from jobs.core.settings import get_settings
    from models.llm.prepare import MODELS, prepare

    if name not in MODELS:
        fail(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}", code=2)
    started = time.perf_counter()
    path = prepare(get_settings().models_dir, name, force=force)
    emit({"model": name, "path": str(path), "seconds": round(time.perf_counter() - started, 2)}, as_json)


@app.command()
def stats(
    as_of: str = typer.Option(..., "--as-of", help="As-of time (ISO-8601, UTC if naive): count events up to it."),
    as_json: bool = JsonOpt,
) -> None:
    """Compute per-user and per-item interaction stats as of a time into the lake (user_stats, item_stats)."""
    from jobs.core.settings import get_settings
    from jobs.publish.stats import run

    moment = parse_time(as_of, "--as-of")
    try:
        summary = run(get_settings(), as_of=moment)
    except FileNotFoundError as err:
        fail(str(err))
    emit(summary, as_json)


@app.command()
def validate(
    batch_date: str | None = typer.Option(None, "--batch-date", help="Batch to validate, YYYY-MM-DD (default: the latest ingested)."),
    profiles: str | None = typer.Option(None, "--profiles", help="Validate a profile table instead: user or item."),
    as_json: bool = JsonOpt,
) -> None:
    """Great Expectations gate on the lake (interactions, items, users, batch facts) or a profile table.

    Builds Data Docs under KTREC_HOME/gx/data_docs; exits 1 listing every failed expectation.
    """
    from datetime import date

    from rich.console import Console

    from jobs.core.settings import get_settings
    from jobs.validate import gate as job

    try:
        day = date.fromisoformat(batch_date) if batch_date else None
    except ValueError:
        fail(f"--batch-date must be YYYY-MM-DD, got {batch_date!r}", code=2)
    try:
        with Console(stderr=True).status("validating with Great Expectations", spinner="dots"):
            if profiles:
                summary = job.validate_profiles(get_settings(), entity=profiles)
            else:
                summary = job.run(get_settings(), batch_date=day)
    except (job.ValidationFailed, ValueError) as err:
        if as_json:
            failures = [vars(f) for f in getattr(err, "failures", [])]
            emit({"success": False, "error": str(err), "failures": failures}, True)
        fail(str(err))
    emit(summary, as_json)


@app.command()
def materialize(
    end: str = typer.Option(..., "--end", help="Materialize features up to this time (the run's logical date)."),
    as_json: bool = JsonOpt,
) -> None:
    """Register the features/ definitions in Feast and load the online store up to --end."""
    from jobs.core.settings import get_settings
    from jobs.publish.materialize import run

    emit(run(get_settings(), end=parse_time(end, "--end")), as_json)


@app.command()
def split(
    strategy: str = typer.Option("loo", "--strategy", help="loo (leave-last-out per user) | temporal (global time cut) | random."),
    name: str | None = typer.Option(None, "--name", help="Table name under lake/splits/ (default: the strategy)."),
    seed: int = typer.Option(2024, "--seed", help="Seed of the random split's hash."),
    k_core: int = typer.Option(0, "--k-core", min=0, help="Keep only users and items with >= K interactions (0: off)."),
    min_rating: float | None = typer.Option(None, "--min-rating", help="Implicit positives: keep rating >= R."),
    as_json: bool = JsonOpt,
) -> None:
    """Split the lake's interactions into train/valid/test (lake table splits/NAME with meta.json).

    Duplicate (user, item) pairs are collapsed to their latest event, then --min-rating and --k-core are
    applied, then the split; valid/test rows whose user or item is absent from train are dropped.
    """
    from rich.console import Console

    from jobs.core.settings import get_settings
    from jobs.split import table as job

    try:
        with Console(stderr=True).status(f"splitting interactions ({strategy})", spinner="dots"):
            result = job.run(get_settings(), strategy=strategy, name=name, seed=seed, k_core=k_core,
                             min_rating=min_rating)
    except (ValueError, FileNotFoundError) as err:
        fail(str(err))
    meta = result["meta"]
    emit({"table": result["table"], **meta["counts"], "density": meta["density"],
          "dropped_cold": meta["dropped_cold"], "train_end": meta["train_end"], "seconds": result["seconds"]}
         | ({"meta": meta} if as_json else {}), as_json)


@app.command("cora-data")
def cora_data(
    name: str = typer.Option("default", help="Table name: lake/cora/<name>."),
    split: str | None = typer.Option(None, help="Take train/valid/test from splits/<split> instead of time quantiles."),
    threshold: float = typer.Option(4.0, help="Ratings at or above this are positive (and count as liked history)."),
    max_history: int = typer.Option(10, help="Liked titles listed in each prompt (the latest ones)."),
    min_history: int = typer.Option(0, help="Drop examples with fewer liked titles before the target."),
    valid_frac: float = typer.Option(0.1, help="Share of the newest events (before test) used for validation."),
    test_frac: float = typer.Option(0.1, help="Share of the newest events used for test."),
    as_json: bool = JsonOpt,
) -> None:
    """Build CoRA's Yes/No prompt dataset from the lake (Spark) as table cora/<name>."""
    from jobs.cora import data as job
    from jobs.core.settings import get_settings

    emit(job.run(get_settings(), name=name, split=split, threshold=threshold, max_history=max_history,
                 min_history=min_history, valid_frac=valid_frac, test_frac=test_frac), as_json)


@app.command("train-cora")
def train_cora(
    data: str = typer.Option("default", help="Prompt table cora/<data> (ktrec cora-data)."),
    llm: str = typer.Option("smollm2", help="smollm2, gemma3 (prepared under KTREC_HOME/models) or a local HF folder."),
    cf_run: Path | None = typer.Option(None, help="A `ktrec train` run folder; default: train a fallback BPR-MF."),
    max_train: int | None = typer.Option(2000, help="Training prompts drawn (seeded); 0 = all."),
    max_test: int | None = typer.Option(1000, help="Test prompts drawn (seeded); 0 = all."),
    epochs: int = typer.Option(1), batch_size: int = typer.Option(8), lr: float = typer.Option(1e-3),
    rank: int = typer.Option(16), alpha: float = typer.Option(32.0),
    targets: str = typer.Option("q_proj,k_proj,v_proj,o_proj", help="Comma-separated module-name suffixes to adapt."),
    max_length: int = typer.Option(160, help="Prompt token limit (longer prompts lose their start)."),
    baselines: str = typer.Option("zero_shot,lora,cf", help="Comma-separated baselines to run beside CoRA ('' = none)."),
    seed: int = typer.Option(2024), output_dir: Path | None = typer.Option(None),
    as_json: bool = JsonOpt,
) -> None:
    """Train a CoRA adapter (frozen LLM + frozen CF) and compare it with zero-shot, LoRA and CF baselines."""
    from jobs.cora import train as job
    from jobs.core.settings import get_settings

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
    pairs: Path | None = typer.Option(None, help="CSV/TSV/Parquet with user_id,item_id columns."),
    user: str | None = typer.Option(None, help="One user id (with --item)."),
    item: str | None = typer.Option(None, help="One item id (with --user)."),
    output: Path | None = typer.Option(None, help="Write user_id,item_id,score as CSV here."),
    as_json: bool = JsonOpt,
) -> None:
    """Score (user, item) pairs with a CoRA adapter: P(Yes) that the user enjoys the item."""
    from jobs.cora import score as job
    if (pairs is None) == (user is None or item is None):
        fail("give either --pairs FILE or both --user and --item")
    todo = job.read_pairs(pairs) if pairs else [(user, item)]
    scores = job.load_adapter(adapter).score(todo)
    rows = [{"user_id": u, "item_id": i, "score": round(float(s), 6)} for (u, i), s in zip(todo, scores)]
    if output:
        import pandas as pd

        pd.DataFrame(rows).to_csv(output, index=False)
    emit({"pairs": len(rows), "scores": rows[:20], "output": str(output) if output else None}, as_json)


@app.command()
def demo(
    models: str = typer.Option("bpr", "--models", help="Comma-separated CF models (bpr,neumf,lightgcn,multvae,simplex,sasrec)."),
    run_date: str = typer.Option("2026-06-01", "--date", help="Logical date of the nightly run (YYYY-MM-DD, after the DAG's start_date)."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Override every training stage's epochs."),
    as_json: bool = JsonOpt,
) -> None:
    """Run the nightly DAG end to end on the embedded defaults (ml-100k) and summarise what it decided."""
    from datetime import date

    from rich.console import Console
    from rich.table import Table

    from jobs.core.settings import get_settings
    from jobs.nightly import demo as job

    settings = get_settings()
    summary = job.run(settings, run_date=date.fromisoformat(run_date), models=models.split(","), epochs=epochs)
    if as_json:
        emit(summary, True)
        return
    table = Table(title=f"ktrec nightly {summary['run_date']} ({summary['seconds']} s)")
    for column in ("model", "baseline NDCG@10", "KT NDCG@10", "version", "promoted", "why"):
        table.add_column(column)
    for m in summary["models"]:
        table.add_row(m["model"], f"{m['baseline_ndcg_at_10']:.4f}", f"{m['kt_ndcg_at_10']:.4f}",
                      str(m["version"]), "yes" if m["promoted"] else "no", m["reason"])
    console = Console()
    console.print(table)
    console.print(f"MLflow UI:  {summary['mlflow_ui']}")
    console.print(f"Airflow UI: {summary['airflow_ui']}")
    console.print(f"Data Docs:  file://{summary['data_docs']}")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
