"""Hugging Face transformers backend: batched greedy ``generate`` with left padding, CPU or GPU.

Decoder-only models must be left-padded so that every row's new tokens start at the same position.
bf16 is used on GPUs that support it; CPUs run float32 (bf16 matmuls are slow there without AMX).
A batch that raises is re-run row by row, so one bad row never loses the others.
"""

from __future__ import annotations

import logging
from pathlib import Path

from models.llm.base import COMPLETION_STOP, Generation, Prompt, as_profile_text, failed

log = logging.getLogger(__name__)


class HFBackend:
    name = "transformers"

    def __init__(
        self,
        *,
        model_path: Path,
        max_new_tokens: int,
        batch_size: int,
        max_model_len: int,
        device: str | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model = str(model_path)
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.max_model_len = max_model_len
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        use_bf16 = self.device.startswith("cuda") and torch.cuda.is_bf16_supported()
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.lm = (
            AutoModelForCausalLM.from_pretrained(
                model_path, dtype=torch.bfloat16 if use_bf16 else torch.float32
            )
            .to(self.device)
            .eval()
        )
        self.chat = bool(getattr(self.tokenizer, "chat_template", None))
        eos = self.lm.generation_config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        self.eos_ids.add(self.tokenizer.eos_token_id)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def render(self, prompt: Prompt) -> str:
        if self.chat:
            return self.tokenizer.apply_chat_template(
                list(prompt.messages), tokenize=False, add_generation_prompt=True
            )
        return (self.tokenizer.bos_token or "") + prompt.completion

    def generate(self, prompts: list[Prompt]) -> list[Generation]:
        results: list[Generation | None] = [None] * len(prompts)
        groups: dict[int, list[int]] = {}
        texts = [self.render(p) for p in prompts]
        for i, (prompt, text) in enumerate(zip(prompts, texts, strict=False)):
            budget = prompt.max_new_tokens or self.max_new_tokens
            n_prompt = self.count_tokens(text)
            if n_prompt + budget > self.max_model_len:
                results[i] = failed(f"prompt_too_long: {n_prompt}+{budget} tokens > {self.max_model_len}")
            else:
                groups.setdefault(budget, []).append(i)
        for budget, rows in groups.items():
            for start in range(0, len(rows), self.batch_size):
                chunk = rows[start : start + self.batch_size]
                for i, gen in zip(
                    chunk,
                    self._safe_batch([prompts[i] for i in chunk], [texts[i] for i in chunk], budget),
                    strict=True,
                ):
                    results[i] = gen
        return [r if r is not None else failed("not generated") for r in results]

    def _safe_batch(self, prompts: list[Prompt], texts: list[str], budget: int) -> list[Generation]:
        try:
            return self._batch(prompts, texts, budget)
        except Exception as exc:  # noqa: BLE001 - isolate the bad row, keep the batch
            if len(prompts) == 1:
                return [failed(f"generate error: {type(exc).__name__}: {exc}")]
            log.warning("batch of %d failed (%s); retrying row by row", len(prompts), exc)
            pairs = zip(prompts, texts, strict=True)
            return [g for p, t in pairs for g in self._safe_batch([p], [t], budget)]

    def _batch(self, prompts: list[Prompt], texts: list[str], budget: int) -> list[Generation]:
        import torch

        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(
            self.device
        )
        extra = {} if self.chat else {"stop_strings": [COMPLETION_STOP], "tokenizer": self.tokenizer}
        with torch.inference_mode():
            out = self.lm.generate(
                **enc,
                max_new_tokens=budget,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
                **extra,
            )
        width = enc["input_ids"].shape[1]
        gens = []
        for row, prompt in enumerate(prompts):
            new = out[row, width:].tolist()
            stop = next((k for k, t in enumerate(new) if t in self.eos_ids), None)
            tokens = new if stop is None else new[:stop]
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            finished = stop is not None or (not self.chat and COMPLETION_STOP in text)
            gens.append(
                Generation(
                    text=as_profile_text(prompt, text, chat=self.chat),
                    finish_reason="stop" if finished else "length",
                    prompt_tokens=int(enc["attention_mask"][row].sum()),
                    generated_tokens=len(tokens),
                )
            )
        return gens
