"""``ktrec delrec teacher|data|train|score``: DELRec's steps as a typer sub-app (registered as ``delrec``).

Each command imports its job lazily, calls its ``run`` and prints the summary through the CLI's one output
and error path (``jobs.cli.common.emit`` / ``fail``); ``--json`` prints one JSON line last.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="DELRec: distil a sequential teacher into a soft prompt, then tune the LLM with LoRA.",
                  no_args_is_help=True, pretty_exceptions_enable=False)

JsonOpt = typer.Option(False, "--json", help="Print one JSON summary line last.")


def _emit(summary: dict, as_json: bool) -> None:
    from jobs.cli.common import emit

    emit(summary, as_json)


def _run(call):
    """Run a job; a bad request (missing table, wrong split, bad value) is one red line and exit 2."""
    from jobs.cli.common import fail

    try:
        return call()
    except (FileNotFoundError, ValueError) as err:
        fail(str(err))


@app.command()
def teacher(
    split: str = typer.Option(..., help="A leave-one-out split (ktrec split --strategy loo)."),
    name: str | None = typer.Option(None, help="Table delrec_teacher/<name>; default: the split's name."),
    run_dir: Path | None = typer.Option(None, help="A `ktrec train` run on this split; default: train SASRec now."),
    k: int = typer.Option(10, min=1, help="Predictions kept per user and cut-off."),
    epochs: int | None = typer.Option(None, min=1, help="Override the teacher scenario's epochs."),
    seed: int = typer.Option(2024), as_json: bool = JsonOpt,
) -> None:
    """Train the teacher on training prefixes and write its top-k per user and cut-off (Spark)."""
    from jobs.core.settings import get_settings
    from jobs.delrec import teacher as job

    result = _run(lambda: job.run(get_settings(), split=split, name=name, run_dir=run_dir, k=k, seed=seed,
                                  epochs=epochs))
    _emit({key: result[key] for key in ("table", "path", "seconds")} | {"counts": result["meta"]["counts"],
                                                                   "run_dir": result["meta"]["run_dir"]}, as_json)


@app.command()
def data(
    split: str = typer.Option(..., help="The leave-one-out split the teacher was trained on."),
    teacher_name: str | None = typer.Option(None, "--teacher", help="Teacher table; default: the split's name."),
    name: str | None = typer.Option(None, help="Table delrec/<name>; default: the split's name."),
    max_history: int = typer.Option(10, min=2, help="Latest titles shown per prompt."),
    n_candidates: int = typer.Option(20, min=2, help="Candidates per recommendation prompt (true + sampled)."),
    ta_window: int = typer.Option(3, min=1, help="Temporal analysis hides one of this many latest items."),
    rps_steps: int = typer.Option(3, min=1, help="Pattern-simulating prompts per user (teacher ranks 1..N)."),
    max_title_chars: int = typer.Option(80, min=8, help="Longer titles are cut at a word boundary + '...'."),
    seed: int = typer.Option(2024), as_json: bool = JsonOpt,
) -> None:
    """Build DELRec's prompt table (temporal analysis, pattern simulating, recommendation) with Spark."""
    from jobs.core.settings import get_settings
    from jobs.delrec import data as job

    result = _run(lambda: job.run(get_settings(), split=split, teacher=teacher_name, name=name, seed=seed,
                                  max_history=max_history, n_candidates=n_candidates, ta_window=ta_window,
                                  rps_steps=rps_steps, max_title_chars=max_title_chars))
    meta = result["meta"]
    _emit({key: result[key] for key in ("table", "path", "seconds")}
          | {"kept": meta["kept"], "skipped": meta["skipped"]}, as_json)


@app.command()
def train(
    data_name: str = typer.Option("default", "--data", help="Prompt table delrec/<data>."),
    llm: str = typer.Option("smollm2", help="smollm2, gemma3 (prepared under KTREC_HOME/models) or a local HF folder."),
    max_distill: int = typer.Option(64, min=0, help="Users drawn for each stage-1 task (0 = all)."),
    max_train: int = typer.Option(128, min=0, help="Users drawn for stage 2 (0 = all)."),
    max_test: int = typer.Option(200, min=0, help="Test users drawn (0 = all)."),
    n_soft: int = typer.Option(100, min=1, help="Soft-prompt vectors K."),
    rank: int = typer.Option(8, min=1), alpha: float = typer.Option(16.0),
    targets: str = typer.Option("q_proj,v_proj", help="Comma-separated module-name suffixes LoRA adapts."),
    epochs1: int = typer.Option(1, min=1), epochs2: int = typer.Option(1, min=1),
    lr1: float = typer.Option(1e-2), lr2: float = typer.Option(1e-3), batch_size: int = typer.Option(4, min=1),
    loss: str = typer.Option("choice", help="choice (cross-entropy over the candidates) or lm (answer likelihood)."),
    max_length: int = typer.Option(512, min=16, help="Context limit in tokens (truncation rule beyond it)."),
    device: str | None = typer.Option(None, help="cpu, cuda, ...; default: CUDA when present."),
    seed: int = typer.Option(2024), output_dir: Path | None = typer.Option(None),
    register: bool = typer.Option(False, help="Log to MLflow as ktrec-delrec and gate it."),
    as_json: bool = JsonOpt,
) -> None:
    """Stage 1 (soft prompt), stage 2 (LoRA) and every baseline on the same test candidates."""
    from jobs.core.settings import get_settings
    from jobs.delrec import train as job

    settings = get_settings()
    summary = _run(lambda: job.run(
        settings, data=data_name, llm=llm, max_distill=max_distill or None, max_train=max_train or None,
        max_test=max_test or None, n_soft=n_soft, rank=rank, alpha=alpha, epochs=(epochs1, epochs2),
        lr=(lr1, lr2), batch_size=batch_size, loss=loss, max_length=max_length, seed=seed, device=device,
        targets=[t for t in targets.split(",") if t], output_dir=output_dir))
    out = {k: summary[k] for k in ("metrics", "significance", "model_dir", "run_dir", "llm", "device", "counts")}
    if register:
        from jobs.delrec.register import register_delrec

        out["registry"] = register_delrec(settings, summary=summary, run_key=f"manual/{Path(summary['run_dir']).name}")
    _emit(out, as_json)


@app.command()
def score(
    model: Path = typer.Option(..., exists=True, file_okay=False, help="A DELRec model folder (run_dir/model)."),
    data_name: str = typer.Option(..., "--data", help="Prompt table delrec/<data> whose examples are ranked."),
    cutoff: str = typer.Option("test", help="test, valid or train."),
    user: list[str] = typer.Option([], help="Only these users (repeat the option); default: all."),
    limit: int | None = typer.Option(None, min=1, help="At most this many users (seeded)."),
    output: Path | None = typer.Option(None, help="Write user_id, ranked_ids, target_id, rank_of_target (Parquet)."),
    device: str | None = typer.Option(None), as_json: bool = JsonOpt,
) -> None:
    """Rank each user's candidates with a saved DELRec model; HR@1/HR@5/NDCG@5 against the table's answers."""
    from jobs.core.settings import get_settings
    from jobs.delrec import score as job

    _emit(_run(lambda: job.run(get_settings(), model_dir=model, data=data_name, cutoff=cutoff, users=user or None,
                               limit=limit, device=device, output=output)), as_json)
