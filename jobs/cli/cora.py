"""The CoRA commands, grouped as ``ktrec cora data|train|score``: build the Yes/No prompt table from the
lake (Spark), train a CoRA adapter on a frozen LLM and a frozen CF model (beside zero-shot, LoRA and CF
baselines), and score (user, item) pairs with a saved adapter. ``ALIASES`` keeps the old top-level names
(``cora-data``, ``train-cora``, ``score-cora``) for scripts; they are registered hidden.
"""

from __future__ import annotations

from pathlib import Path

import typer

from jobs.cli.common import JsonOpt, emit, known_errors

cora_app = typer.Typer(help="CoRA: collaborative LoRA adapters on a frozen LLM (prompt data, training, scoring).",
                       no_args_is_help=True)


@cora_app.command("data")
@known_errors()
def data(
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


@cora_app.command("train")
@known_errors()
def train(
    data: str = typer.Option("default", help="Prompt table cora/<data> (ktrec cora data)."),
    llm: str = typer.Option("smollm2", help="smollm2, gemma3 (prepared under KTREC_HOME/models) or a local HF folder."),
    cf_run: Path | None = typer.Option(None, help="A `ktrec train` run folder; default: train a fallback BPR-MF."),
    max_train: int | None = typer.Option(2000, help="Training prompts drawn (seeded); 0 = all."),
    max_test: int | None = typer.Option(1000, help="Test prompts drawn (seeded); 0 = all."),
    epochs: int = typer.Option(1), batch_size: int = typer.Option(8), lr: float = typer.Option(1e-3),
    rank: int = typer.Option(16), alpha: float = typer.Option(32.0),
    targets: str = typer.Option("q_proj,k_proj,v_proj,o_proj", help="Comma-separated module-name suffixes to adapt."),
    max_length: int = typer.Option(160, help="Prompt token limit (longer prompts lose their start)."),
    baselines: str = typer.Option(
        "zero_shot,lora,cf", help="Comma-separated baselines to run beside CoRA ('' = none)."),
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
    keys = ("metrics", "adapter_path", "run_dir", "llm", "cf_source", "n_train", "n_test")
    emit({k: summary[k] for k in keys}, as_json)


@cora_app.command("score")
@known_errors()
def score(
    adapter: Path = typer.Option(..., help="A CoRA adapter folder (ktrec cora train's run_dir/adapter)."),
    pairs: Path | None = typer.Option(None, help="CSV/TSV/Parquet with user_id,item_id columns."),
    user: str | None = typer.Option(None, help="One user id (with --item)."),
    item: str | None = typer.Option(None, help="One item id (with --user)."),
    output: Path | None = typer.Option(None, help="Write user_id,item_id,score as CSV here."),
    as_json: bool = JsonOpt,
) -> None:
    """Score (user, item) pairs with a CoRA adapter: P(Yes) that the user enjoys the item."""
    from jobs.cora import score as job

    if (pairs is None) == (user is None or item is None):
        raise ValueError("give either --pairs FILE or both --user and --item")
    todo = job.read_pairs(pairs) if pairs else [(user, item)]
    scores = job.load_adapter(adapter).score(todo)
    rows = [{"user_id": u, "item_id": i, "score": round(float(s), 6)} for (u, i), s in zip(todo, scores, strict=True)]
    if output:
        import pandas as pd

        pd.DataFrame(rows).to_csv(output, index=False)
    emit({"pairs": len(rows), "scores": rows[:20], "output": str(output) if output else None}, as_json)


# Old top-level name → (new subcommand, command): registered hidden on the root app so scripts keep working.
ALIASES = {"cora-data": ("data", data), "train-cora": ("train", train), "score-cora": ("score", score)}
