"""Top-k items for a user with a saved alignment model: ``ktrec align retrieve --model DIR --data NAME --user U``.

:func:`load` puts a model folder (``ktrec align train``'s ``run_dir/model``; the MLflow version's artifact)
back on its LLM (CUDA when present) with the aligned adapter active. :func:`run` renders the user's retrieval
prompt from everything the split holds for them (train, valid and test events, titled, latest
``max_history``), masks all of those items, and retrieves over the whole catalogue of the sample table
(``align_catalogue/<data>``): item ids and titles, best first. An unknown user is a clear error.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from jobs.align.data import catalogue_table
from jobs.align.train import build_catalogue
from jobs.core import lake
from jobs.core.settings import Settings


def load(model_dir: Path, *, device: str | None = None, adapter: str | None = None):
    """(PEFT model with ``adapter`` (default: the aligned one) active, codec, config)."""
    from peft import PeftModel

    from models.llmrec.layout import Codec
    from models.llmrec.loading import load_causal_lm

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file() or not (model_dir / "lora").is_dir():
        raise FileNotFoundError(f"{model_dir} is not an alignment model folder (config.json, lora/)")
    config = json.loads((model_dir / "config.json").read_text())
    llm, tokenizer = load_causal_lm(Path(config["llm"]), device=device)
    adapter = adapter or config["aligned"]
    if adapter not in config["adapters"]:
        raise ValueError(f"adapter {adapter!r} is not in {model_dir}; it holds {config['adapters']}")
    model = PeftModel.from_pretrained(llm, model_dir / "lora" / adapter, adapter_name=adapter).eval()
    return model, Codec(tokenizer, chat=config["chat"], system=config["system"]), config


def run(settings: Settings, *, model_dir: Path, data: str, users: list[str], k: int = 10, split: str | None = None,
        device: str | None = None, adapter: str | None = None) -> dict:
    """Per user, the top-``k`` catalogue items (ids and titles) after the user's whole history in the split."""
    from models.align.prompts import retrieval
    from models.align.retrieve import beam_retrieve

    model, codec, config = load(model_dir, device=device, adapter=adapter)
    meta = json.loads((lake.require(settings, f"align/{data}") / "meta.json").read_text())
    table = lake.read_frame(settings, catalogue_table(data))
    catalogue = build_catalogue(codec, table)
    events = lake.read_frame(settings, lake.split_table(split or meta["split"]))
    missing = sorted(set(users) - set(events["user_id"].astype(str)))
    if missing:
        raise ValueError(f"users {missing} have no events in splits/{split or meta['split']}")
    titles = dict(zip(table["item_id"].astype(str), table["title"], strict=True))
    prompts, masked = [], []
    for user in users:
        rows = events[events["user_id"].astype(str) == user].sort_values(["event_ts", "item_id"])
        items = [i for i in rows["item_id"].astype(str) if i in titles]
        prompts.append(retrieval([titles[i] for i in items][-int(config["max_history"]):], "")[0])
        masked.append({catalogue.index[i] for i in items})
    started = time.perf_counter()
    beams = int(config["retrieval"].get("beams", k))
    top = beam_retrieve(model, codec, catalogue, prompts, masked, k=k, beams=max(k, beams))
    seconds = time.perf_counter() - started
    out = pd.DataFrame({"user_id": users, "item_ids": [[catalogue.item_ids[p] for p in t] for t in top],
                        "titles": [[catalogue.titles[p] for p in t] for t in top]})
    return {"data": f"align/{data}", "k": k, "seconds_per_user": round(seconds / max(1, len(users)), 3),
            "results": out.to_dict(orient="records")}
