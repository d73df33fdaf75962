"""The LLM and encoder the settings name, built for the profile job (and the LLM methods that need a
local model): the settings stay in jobs, models/ receives paths and values.
"""

from __future__ import annotations

from pathlib import Path

from jobs.core.settings import Settings


def prepared(settings: Settings, name: str) -> Path:
    """The prepared folder of a shipped model (``smollm2``, ``gemma3``), prepared now if missing (offline)."""
    from models.llm.prepare import is_prepared, model_path, prepare

    path = model_path(settings.models_dir, name)
    return path if is_prepared(path) else prepare(settings.models_dir, name)


PREPARED = ("smollm2", "gemma3")


def resolve(settings: Settings, llm: str) -> Path:
    """``smollm2`` / ``gemma3`` (prepared under models_dir, preparing them if needed) or a local HF folder."""
    if llm in PREPARED:
        return prepared(settings, llm)
    path = Path(llm)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} is not a Hugging Face model folder (no config.json); "
                                f"use one of {list(PREPARED)} or a local folder")
    return path


def local_model(settings: Settings) -> Path:
    """``llm.model``, or the prepared SmolLM2 folder."""
    if settings.llm.model:
        path = Path(settings.llm.model)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"llm.model={path} is not a Hugging Face model folder (no config.json)")
        return path
    return prepared(settings, "smollm2")


def backend(settings: Settings, name: str | None = None):
    """The profile backend ``name`` (default ``llm.backend``) configured from the settings."""
    from models.llm import get_backend

    name = name or settings.llm.backend
    path = local_model(settings) if name in ("transformers", "vllm") else None
    return get_backend(name, model_path=path, seed=settings.seed, options=settings.llm.model_dump())


def encoder(settings: Settings):
    from models.embed import encoder_for

    return encoder_for(settings.embed.model, settings.embed.batch_size)
