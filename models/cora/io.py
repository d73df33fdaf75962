"""A CoRA adapter on disk: the trained generator and the frozen CF tables, never the LLM's weights.

Folder layout: ``config.json`` (CoRA config, the LLM folder it was trained on, answer token ids, prompt
length, data provenance), ``generator.pt`` (the generator's state_dict) and ``cf.pt`` (the frozen CF
user/item tables with their lake ids). Written to a temporary sibling and renamed into place, so a
crash never leaves a half-written adapter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.cora.frozen_cf import FrozenCF
from models.cora.model import CoRA, CoRAConfig
from models.cora.prompt import PromptCodec
from models.cora.train import Examples, predict


def save_adapter(folder: Path, *, cora: CoRA, cf: FrozenCF, llm_path: Path, max_length: int,
                 extra: dict | None = None) -> Path:
    """Write the adapter into ``folder`` (created); callers stage it for atomicity (jobs.cora.train)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "cora": cora.config.to_dict(), "cf_dim": cf.dim, "llm": str(llm_path), "yes_id": cora.yes_id,
        "no_id": cora.no_id, "max_length": max_length, "cf_source": cf.source, **(extra or {}),
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2, default=str))
    torch.save(cora.generator.state_dict(), folder / "generator.pt")
    cf.save(folder / "cf.pt")
    return folder


@dataclass
class Adapter:
    """A loaded adapter: CoRA (frozen LLM + trained generator), its CF tables and prompt codec."""

    cora: CoRA
    cf: FrozenCF
    codec: PromptCodec
    config: dict

    def probabilities(self, users: list[str], items: list[str], prompts: list[str], *,
                      batch_size: int = 16) -> np.ndarray:
        """P(Yes) against P(No) for each (user, item, prompt)."""
        examples = Examples(users=users, items=items, prompts=prompts, labels=np.zeros(len(prompts)))
        logits = predict(lambda b: self.cora(b["input_ids"], b["attention_mask"], b["user_emb"], b["item_emb"]),
                         examples, codec=self.codec, cf=self.cf, batch_size=batch_size, desc="cora")
        return 1.0 / (1.0 + np.exp(-logits))


def read_adapter(folder: Path, *, llm_path: Path | None = None) -> Adapter:
    """Load an adapter folder onto its LLM (or onto ``llm_path``, which must share its tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(folder)
    if not (folder / "config.json").is_file() or not (folder / "generator.pt").is_file():
        raise FileNotFoundError(f"{folder} is not a CoRA adapter folder (config.json + generator.pt + cf.pt)")
    config = json.loads((folder / "config.json").read_text())
    llm_dir = Path(llm_path or config["llm"])
    if not llm_dir.is_dir():
        raise FileNotFoundError(f"the adapter's LLM folder {llm_dir} is missing; pass another with llm_path")
    codec = PromptCodec(AutoTokenizer.from_pretrained(llm_dir), max_length=config["max_length"])
    if (codec.yes_id, codec.no_id) != (config["yes_id"], config["no_id"]):
        raise ValueError(f"{llm_dir}'s tokenizer gives other Yes/No ids than the adapter was trained with")
    llm = AutoModelForCausalLM.from_pretrained(llm_dir, dtype=torch.float32)
    cora = CoRA(llm, cf_dim=config["cf_dim"], yes_id=codec.yes_id, no_id=codec.no_id,
                config=CoRAConfig(**config["cora"]))
    cora.generator.load_state_dict(torch.load(folder / "generator.pt", map_location="cpu", weights_only=True))
    cora.eval()
    return Adapter(cora=cora, cf=FrozenCF.load(folder / "cf.pt"), codec=codec, config=config)
