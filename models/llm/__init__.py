"""Profile generator backends behind one interface (see :mod:`models.llm.base`).

``get_backend(settings, name)`` builds ``template``, ``transformers``, ``vllm`` or ``openai`` from
settings, importing the heavy libraries only for the backend asked for. The local backends default to
the prepared SmolLM2 folder (``ktrec models prepare smollm2``), which is prepared on first use.
"""

from __future__ import annotations

from pathlib import Path

from jobs.settings import Settings
from models.llm.base import Backend, Generation, Prompt

BACKENDS = ("template", "transformers", "vllm", "openai")
__all__ = ["BACKENDS", "Backend", "Generation", "Prompt", "get_backend", "local_model_path"]


def local_model_path(settings: Settings) -> Path:
    """settings.llm.model, or the prepared SmolLM2 folder (prepared now if missing: offline, idempotent)."""
    if settings.llm.model:
        path = Path(settings.llm.model)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"llm.model={path} is not a Hugging Face model folder (no config.json)")
        return path
    from models.llm.prepare import prepare

    return prepare(settings, "smollm2")


def get_backend(settings: Settings, name: str | None = None) -> Backend:
    name = name or settings.llm.backend
    llm = settings.llm
    if name == "template":
        from models.llm.template_backend import TemplateBackend

        return TemplateBackend()
    if name == "transformers":
        from models.llm.hf_backend import HFBackend

        return HFBackend(
            model_path=local_model_path(settings),
            max_new_tokens=llm.max_new_tokens,
            batch_size=llm.batch_size,
            max_model_len=llm.max_model_len,
        )
    if name == "vllm":
        from models.llm.vllm_backend import VLLMBackend

        return VLLMBackend(
            model_path=local_model_path(settings),
            max_new_tokens=llm.max_new_tokens,
            max_model_len=llm.max_model_len,
            max_num_seqs=llm.max_num_seqs,
            tensor_parallel_size=llm.tensor_parallel_size,
            gpu_memory_utilization=llm.gpu_memory_utilization,
            cpu_kvcache_space_gb=llm.cpu_kvcache_space_gb,
            enforce_eager=llm.enforce_eager,
            seed=settings.seed,
        )
    if name == "openai":
        from models.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(
            base_url=llm.openai_base_url,
            api_key=llm.openai_api_key,
            model=llm.openai_model,
            max_new_tokens=llm.max_new_tokens,
            concurrency=llm.openai_concurrency,
            timeout_s=llm.openai_timeout_s,
            max_retries=llm.openai_max_retries,
            chat=llm.openai_chat,
        )
    raise ValueError(f"unknown LLM backend {name!r}; choose one of {', '.join(BACKENDS)}")
