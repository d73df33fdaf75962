"""``ktrec demo``: run the nightly Airflow DAG end to end on the embedded defaults (ml-100k) for one
logical date and print what it decided per model (baseline and KT NDCG@10, registered version, promoted or
not and why) with the addresses of the MLflow UI, the Airflow UI and the Data Docs.
"""

from __future__ import annotations

import typer

from jobs.cli.common import JsonOpt, emit, known_errors, parse_time


@known_errors()
def demo(
    models: str = typer.Option(
        "bpr", "--models", help="Comma-separated CF models (bpr,neumf,lightgcn,multvae,simplex,sasrec)."),
    run_date: str = typer.Option(
        "2026-06-01", "--date", help="Logical date of the nightly run (YYYY-MM-DD, after the DAG's start_date)."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Override every training stage's epochs."),
    as_json: bool = JsonOpt,
) -> None:
    """Run the nightly DAG end to end on the embedded defaults (ml-100k) and summarise what it decided."""
    from jobs.core.settings import get_settings
    from jobs.nightly import demo as job

    day = parse_time(run_date, "--date", day=True).date()
    summary = job.run(get_settings(), run_date=day, models=models.split(","), epochs=epochs)
    if as_json:
        emit(summary, True)
        return
    show(summary)


def show(summary: dict) -> None:
    """The demo's decisions as a table, then where to look next."""
    from rich.console import Console
    from rich.table import Table

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
