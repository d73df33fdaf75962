"""CoRA and its three baselines, trained and scored on the same examples with the same budget.

- ``cora``: frozen LLM + collaborative query generator (only the generator trains);
- ``zero_shot``: the frozen LLM alone, no training;
- ``lora``: a plain PEFT LoRA (same rank, alpha, target modules, optimiser, epochs) fine-tuned on the
  same prompts; it sees no collaborative signal, only text;
- ``cf``: the frozen CF model's dot product through a 1-d logistic fit on the training examples.

Each method returns ``{"scores": test probabilities, "train_seconds", "infer_seconds",
"examples_per_s", ...}``; timings are wall-clock on whatever machine runs them.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from models.cora.evaluate import calibrate, sigmoid
from models.cora.frozen_cf import FrozenCF
from models.cora.io import save_adapter
from models.cora.model import CoRA, CoRAConfig, answer_logits
from models.cora.prompt import PromptCodec
from models.cora.train import Examples, FitConfig, fit, predict


def _losses(losses: list[float]) -> dict:
    k = max(1, len(losses) // 10)
    return {"steps": len(losses), "first_tenth": round(float(np.mean(losses[:k])), 5),
            "last_tenth": round(float(np.mean(losses[-k:])), 5)}


class Systems:
    def __init__(self, *, llm_dir: Path, cf: FrozenCF, config: CoRAConfig, fit: FitConfig,
                 max_length: int) -> None:
        from transformers import AutoTokenizer

        self.llm_dir, self.frozen_cf, self.config, self.fit_config = Path(llm_dir), cf, config, fit
        self.max_length = max_length
        self.codec = PromptCodec(AutoTokenizer.from_pretrained(self.llm_dir), max_length=max_length)
        self._cora: CoRA | None = None

    def _llm(self) -> torch.nn.Module:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(self.llm_dir, dtype=torch.float32).eval()

    def _score(self, scorer, examples: Examples, cf: FrozenCF | None, name: str) -> dict:
        started = time.perf_counter()
        logits = predict(scorer, examples, codec=self.codec, cf=cf, batch_size=2 * self.fit_config.batch_size,
                         desc=f"{name} score")
        seconds = time.perf_counter() - started
        return {"scores": sigmoid(logits), "infer_seconds": round(seconds, 2),
                "examples_per_s": round(len(examples) / max(seconds, 1e-9), 3)}

    def cora(self, train: Examples, test: Examples) -> dict:
        torch.manual_seed(self.fit_config.seed)
        model = CoRA(self._llm(), cf_dim=self.frozen_cf.dim, yes_id=self.codec.yes_id, no_id=self.codec.no_id,
                     config=self.config)
        scorer = lambda b: model(b["input_ids"], b["attention_mask"], b["user_emb"], b["item_emb"])  # noqa: E731
        model.train()
        started = time.perf_counter()
        losses = fit(scorer, model.trainable_parameters(), train, codec=self.codec, cf=self.frozen_cf,
                     config=self.fit_config, desc="cora train")
        train_seconds = time.perf_counter() - started
        model.eval()
        self._cora = model
        return {**self._score(scorer, test, self.frozen_cf, "cora"), "train_seconds": round(train_seconds, 2),
                "trainable_params": sum(p.numel() for p in model.trainable_parameters()), "loss": _losses(losses)}

    def zero_shot(self, train: Examples, test: Examples) -> dict:
        llm = self._cora.llm if self._cora is not None else self._llm()
        scorer = lambda b: answer_logits(llm, b["input_ids"], b["attention_mask"],  # noqa: E731
                                         yes_id=self.codec.yes_id, no_id=self.codec.no_id)
        return {**self._score(scorer, test, None, "zero-shot"), "train_seconds": 0.0}

    def lora(self, train: Examples, test: Examples) -> dict:
        from peft import LoraConfig, get_peft_model

        torch.manual_seed(self.fit_config.seed)
        peft_config = LoraConfig(r=self.config.rank, lora_alpha=self.config.alpha, lora_dropout=0.0, bias="none",
                                 target_modules=list(self.config.target_suffixes))
        model = get_peft_model(self._llm(), peft_config)
        scorer = lambda b: answer_logits(model, b["input_ids"], b["attention_mask"],  # noqa: E731
                                         yes_id=self.codec.yes_id, no_id=self.codec.no_id)
        model.train()
        started = time.perf_counter()
        params = [p for p in model.parameters() if p.requires_grad]
        losses = fit(scorer, params, train, codec=self.codec, cf=None, config=self.fit_config, desc="lora train")
        train_seconds = time.perf_counter() - started
        model.eval()
        return {**self._score(scorer, test, None, "lora"), "train_seconds": round(train_seconds, 2),
                "trainable_params": sum(p.numel() for p in params), "loss": _losses(losses)}

    def cf(self, train: Examples, test: Examples) -> dict:
        started = time.perf_counter()
        to_prob = calibrate(self.frozen_cf.dot(train.users, train.items), train.labels)
        train_seconds = time.perf_counter() - started
        started = time.perf_counter()
        scores = to_prob(self.frozen_cf.dot(test.users, test.items))
        seconds = time.perf_counter() - started
        return {"scores": scores, "train_seconds": round(train_seconds, 3), "infer_seconds": round(seconds, 3),
                "examples_per_s": round(len(test) / max(seconds, 1e-9), 1)}

    def save(self, folder: Path, *, extra: dict) -> Path:
        if self._cora is None:
            raise RuntimeError("train CoRA before saving its adapter")
        return save_adapter(folder, cora=self._cora, cf=self.frozen_cf, llm_path=self.llm_dir,
                            max_length=self.max_length, extra=extra)
