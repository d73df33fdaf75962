"""``ktrec align data|train|retrieve``: recommendation-knowledge alignment as a typer sub-app (``align``).

Each command imports its job lazily, calls its ``run`` and prints the summary through the CLI's one output
and error path (``jobs.cli.common.emit`` / ``fail``); ``--json`` prints one JSON line last.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Alignment (Cao et al.): tune an LLM on recommendation and auxiliary language tasks.",
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
def data(
    split: str = typer.Option(..., help="A leave-one-out split (ktrec split --strategy loo)."),
    name: str | None = typer.Option(None, help="Tables align/<name> and align_catalogue/<name>; default: the split."),
    n_candidates: int = typer.Option(20, min=2, help="Candidates per ranking sample (the true item + sampled)."),
    max_history: int = typer.Option(10, min=2, help="Latest titles shown per prompt."),
    max_title_chars: int = typer.Option(80, min=8, help="Longer titles are cut at a word boundary + '...'."),
    mim_rate: float = typer.Option(0.2, help="Share of a history's titles masked (masked item modelling)."),
    mlm_rate: float = typer.Option(0.15, help="Share of an item text's words masked (masked language modelling)."),
    seed: int = typer.Option(2024), as_json: bool = JsonOpt,
) -> None:
    """Build the task samples (retrieval, ranking, rating, MIM, MLM, BPR) and the catalogue with Spark."""
    from jobs.align import data as job
    from jobs.core.settings import get_settings

    result = _run(lambda: job.run(get_settings(), split=split, name=name, seed=seed, n_candidates=n_candidates,
                                  max_history=max_history, max_title_chars=max_title_chars, mim_rate=mim_rate,
                                  mlm_rate=mlm_rate))
    meta = result["meta"]
    _emit({key: result[key] for key in ("table", "path", "seconds")}
          | {"kept": meta["kept"], "skipped": meta["skipped"], "bad_input": meta["bad_input"]}, as_json)


@app.command()
def train(
    data_name: str = typer.Option("default", "--data", help="Sample table align/<data>."),
    llm: str = typer.Option("smollm2", help="smollm2, gemma3 (prepared under KTREC_HOME/models) or a local HF folder."),
    budget: int = typer.Option(128, min=1, help="Training samples per system (the same for every mixture)."),
    max_test: int = typer.Option(50, min=0, help="Test users drawn (0 = all)."),
    aux_weight: float = typer.Option(1.0, min=0.0, help="Weight of each auxiliary task in the aligned mixture."),
    rank: int = typer.Option(8, min=1), alpha: float = typer.Option(16.0),
    targets: str = typer.Option("q_proj,v_proj", help="Comma-separated module-name suffixes LoRA adapts."),
    epochs: int = typer.Option(1, min=1), batch_size: int = typer.Option(4, min=1), lr: float = typer.Option(1e-3),
    retrieval: str = typer.Option("beam", help="beam (trie-constrained beam search) or score (every title)."),
    beams: int = typer.Option(10, min=1, help="Beams of the constrained search (>= k = 10)."),
    max_length: int = typer.Option(512, min=16, help="Training samples longer than this (tokens) are left out."),
    device: str | None = typer.Option(None, help="cpu, cuda, ...; default: CUDA when present."),
    seed: int = typer.Option(2024), output_dir: Path | None = typer.Option(None),
    register: bool = typer.Option(False, help="Log to MLflow as ktrec-align and gate it."),
    as_json: bool = JsonOpt,
) -> None:
    """Zero-shot, then LoRA on rec tasks only and on rec + auxiliary tasks; retrieval, ranking, rating."""
    from jobs.align import train as job
    from jobs.core.settings import get_settings
    from models.align.mixture import REC_AND_AUX, REC_ONLY

    settings = get_settings()
    aligned = {t: (aux_weight if t in ("mim", "mlm", "bpr") else w) for t, w in REC_AND_AUX.items()}
    summary = _run(lambda: job.run(
        settings, data=data_name, llm=llm, budget=budget, max_test=max_test or None, rank=rank, alpha=alpha,
        mixtures={job.ALIGNED: aligned, job.REC_ONLY: REC_ONLY}, targets=[t for t in targets.split(",") if t],
        epochs=epochs, batch_size=batch_size, lr=lr, retrieval=retrieval, beams=beams, max_length=max_length,
        seed=seed, device=device, output_dir=output_dir))
    out = {k: summary[k] for k in ("metrics", "training", "model_dir", "run_dir", "llm", "device", "catalogue")}
    if register:
        from jobs.align.register import register_align

        out["registry"] = register_align(settings, summary=summary, run_key=f"manual/{Path(summary['run_dir']).name}")
    _emit(out, as_json)


@app.command()
def retrieve(
    model: Path = typer.Option(..., exists=True, file_okay=False, help="An alignment model folder (run_dir/model)."),
    data_name: str = typer.Option(..., "--data", help="Sample table whose catalogue (align_catalogue/<data>) is used."),
    user: list[str] = typer.Option(..., help="User id(s) to retrieve for (repeat the option)."),
    k: int = typer.Option(10, min=1, help="Items returned per user."),
    adapter: str | None = typer.Option(None, help="rec_aux (default, the aligned model) or rec_only."),
    device: str | None = typer.Option(None), as_json: bool = JsonOpt,
) -> None:
    """Top-k catalogue item ids (and titles) for each user after everything the split holds for them."""
    from jobs.align import retrieve as job
    from jobs.core.settings import get_settings

    _emit(_run(lambda: job.run(get_settings(), model_dir=model, data=data_name, users=list(user), k=k,
                               device=device, adapter=adapter)), as_json)
