"""A trained DELRec model on disk: its soft prompt and LoRA adapter, never the LLM's own weights.

Folder: ``config.json`` (the LLM folder it was tuned on, teacher, soft-prompt size, LoRA settings, prompt
format, context limit, data provenance), ``soft_prompt.pt`` and ``lora/`` (PEFT's ``save_pretrained`` of the
DELRec adapter). Callers write it inside a staged folder (jobs/core/files.staged_dir), so it appears whole.
:func:`load` puts it back on the LLM (CPU or CUDA) and returns a scorer for new prompts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from models.delrec.stages import Examples, score
from models.llmrec.layout import Codec
from models.llmrec.soft_prompt import SoftPrompt

CONFIG, SOFT, LORA = "config.json", "soft_prompt.pt", "lora"


def save(folder: Path, *, model: nn.Module, soft: SoftPrompt, adapter: str, config: dict) -> Path:
    """Write the soft prompt, adapter ``adapter`` of the PEFT ``model`` and ``config`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    soft.save(folder / SOFT)
    model.save_pretrained(folder / LORA, selected_adapters=[adapter])
    saved = folder / LORA if adapter == "default" else folder / LORA / adapter
    (folder / CONFIG).write_text(json.dumps({**config, "adapter_dir": str(saved.relative_to(folder))},
                                            indent=2, default=str))
    return folder


@dataclass
class DelRecModel:
    """A loaded DELRec model: the LLM with its LoRA adapter, the frozen soft prompt and the prompt codec."""

    model: nn.Module
    soft: SoftPrompt
    codec: Codec
    config: dict

    def score(self, prompts: list[str], candidates: list[list[str]], *, batch_size: int = 4) -> np.ndarray:
        """[N, C] length-normalised title log-likelihoods of each prompt's candidates."""
        examples = Examples(prompts=list(prompts), candidates=[list(c) for c in candidates],
                            targets=np.zeros(len(prompts)), users=[""] * len(prompts))
        return score(self.model, self.codec, examples, soft=self.soft.vectors, batch_size=batch_size)


def load(folder: Path, *, llm_path: Path | None = None, device: str | None = None) -> DelRecModel:
    """Load a saved DELRec folder onto its LLM (or ``llm_path``, which must share its tokenizer)."""
    from peft import PeftModel

    from models.llmrec.loading import load_causal_lm

    folder = Path(folder)
    if not all((folder / name).exists() for name in (CONFIG, SOFT, LORA)):
        raise FileNotFoundError(f"{folder} is not a DELRec model folder ({CONFIG}, {SOFT}, {LORA}/)")
    config = json.loads((folder / CONFIG).read_text())
    llm_dir = Path(llm_path or config["llm"])
    llm, tokenizer = load_causal_lm(llm_dir, device=device)
    model = PeftModel.from_pretrained(llm, folder / config.get("adapter_dir", LORA)).eval()
    soft = SoftPrompt.load(folder / SOFT).to(next(model.parameters()).device)
    soft.requires_grad_(False)
    return DelRecModel(model=model, soft=soft, codec=Codec(tokenizer, chat=config.get("chat"),
                                                           system=config.get("system")), config=config)
