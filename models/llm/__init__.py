"""Profile generator backends behind one interface (see :mod:`models.llm.base`).

``get_backend(name, model_path=..., options=...)`` builds ``template``, ``transformers``, ``vllm`` or
``openai`` from plain values (the jobs pass their LLM settings as ``options``), importing the heavy
libraries only for the backend asked for. The local backends need a Hugging Face model folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from models.llm.base import Backend, Generation, Prompt

BACKENDS = ("template", "transformers", "vllm", "openai")
__all__ = ["BACKENDS", "Backend", "Generation", "Prompt", "get_backend"]


def get_backend(
    name: str, *, model_path: Path | None = None, seed: int = 0, options: Mapping[str, Any] | None = None
) -> Backend:
    """The backend ``name``; ``options`` holds its settings by name (``max_new_tokens``, ``batch_size``...)."""
    llm = _Options(options or {})
    if name in ("transformers", "vllm") and (model_path is None or not (Path(model_path) / "config.json").is_file()):
        raise FileNotFoundError(f"the {name} backend needs a Hugging Face model folder; {model_path} lacks config.json")
    if name == "template":
        from models.llm.template_backend import TemplateBackend

        return TemplateBackend()
    if name == "transformers":
        from models.llm.hf_backend import HFBackend

        return HFBackend(
            model_path=Path(model_path),
            max_new_tokens=llm.max_new_tokens,
            batch_size=llm.batch_size,
            max_model_len=llm.max_model_len,
        )
    if name == "vllm":
        from models.llm.vllm_backend import VLLMBackend

        return VLLMBackend(
            model_path=Path(model_path),
            max_new_tokens=llm.max_new_tokens,
            max_model_len=llm.max_model_len,
            max_num_seqs=llm.max_num_seqs,
            tensor_parallel_size=llm.tensor_parallel_size,
            gpu_memory_utilization=llm.gpu_memory_utilization,
            cpu_kvcache_space_gb=llm.cpu_kvcache_space_gb,
            enforce_eager=llm.enforce_eager,
            seed=seed,
            dtype=llm.dtype,
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


class _Options:
    """Attribute access over the options mapping; a missing option is a clear error, not a silent default."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise KeyError(f"LLM backend option {name!r} not given") from None
