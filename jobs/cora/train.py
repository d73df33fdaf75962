"""Train a CoRA adapter on a ``cora/<name>`` prompt table and compare it with three baselines.

``ktrec cora train --data NAME [--llm smollm2|gemma3|PATH] [--cf-run RUN_DIR]``. Steps:

1. read the prompt table (jobs/cora/data.py), keep examples with at least ``min_history`` liked titles,
   and draw the train/test subsets (``max_train`` / ``max_test`` rows, seeded; ``None`` = all);
2. the frozen CF model: a ``ktrec train`` run folder, else the fallback BPR-MF (jobs/cora/cf.py);
3. CoRA: the frozen LLM plus a collaborative query generator, trained with BCE (only the generator);
4. baselines on the same examples: the frozen LLM zero-shot, a plain PEFT LoRA fine-tuned on the same
   data with the same rank/alpha/targets/optimiser, and the CF score through a 1-d logistic fit on train;
5. AUC / UAUC on all, warm and cold test examples; the adapter folder (models/cora/io.py) and
   ``metrics.json`` are written under the output folder.

The returned dict carries the metrics and ``adapter_path`` (the lead's MLflow registration reads them).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from jobs.cora.data import cora_table
from jobs.core import files, lake
from jobs.core.settings import Settings

log = logging.getLogger(__name__)

SYSTEMS = ("cora", "zero_shot", "lora", "cf")


def read_examples(settings: Settings, name: str) -> tuple[pd.DataFrame, dict, Path]:
    """The prompt table's rows and meta.json; a clear error when it has not been built."""
    path = lake.require(settings, cora_table(name))
    frame = lake.read_frame(settings, cora_table(name))
    return frame, json.loads((path / "meta.json").read_text()), path.resolve()


def resolve_llm(settings: Settings, llm: str) -> Path:
    """``smollm2`` / ``gemma3`` (prepared under models_dir, preparing them if needed) or a local HF folder."""
    from jobs.profiles.llm import resolve

    return resolve(settings, llm)


def draw(frame: pd.DataFrame, split: str, n: int | None, *, min_history: int, seed: int,
         balance_cold: bool = False) -> pd.DataFrame:
    """Up to ``n`` seeded rows of ``split``; ``balance_cold`` takes half from cold and half from warm rows
    (where the split is mostly cold, as a time split's test is, so both slices get enough examples)."""
    rows = frame[(frame["split"] == split) & (frame["n_history"] >= min_history)]
    if rows.empty:
        raise ValueError(f"no {split} examples with at least {min_history} liked titles")
    if n is not None and len(rows) > n and balance_cold:
        cold, warm = rows[rows["cold"]], rows[~rows["cold"]]
        n_cold = min(len(cold), max(n // 2, n - len(warm)))
        rows = pd.concat([cold.sample(n=n_cold, random_state=seed),
                          warm.sample(n=min(len(warm), n - n_cold), random_state=seed)])
    elif n is not None and len(rows) > n:
        rows = rows.sample(n=n, random_state=seed)
    return rows.sort_values(["event_ts", "user_id", "item_id"]).reset_index(drop=True)


def run(
    settings: Settings, *, data: str = "default", llm: str = "smollm2", cf_run: Path | None = None,
    max_train: int | None = 2000, max_test: int | None = 1000, min_history: int = 1, epochs: int = 1,
    batch_size: int = 8, lr: float = 1e-3, rank: int = 16, alpha: float = 32.0,
    targets: list[str] | None = None, max_length: int = 160, baselines: tuple[str, ...] = ("zero_shot", "lora", "cf"),
    seed: int = 2024, output_dir: Path | None = None, cf_epochs: int = 30, balance_test: bool = False,
) -> dict:
    """Train CoRA (and the baselines), evaluate, save the adapter; returns metrics and paths."""
    from jobs.cora import cf as cora_cf
    from models.cora.adapter import DEFAULT_TARGETS
    from models.cora.model import CoRAConfig
    from models.cora.systems import Systems
    from models.cora.train import Examples, FitConfig

    unknown = set(baselines) - set(SYSTEMS[1:])
    if unknown:
        raise ValueError(f"unknown baselines {sorted(unknown)}; choose from {list(SYSTEMS[1:])}")
    frame, meta, table_dir = read_examples(settings, data)
    train = draw(frame, "train", max_train, min_history=min_history, seed=seed)
    test = draw(frame, "test", max_test, min_history=min_history, seed=seed, balance_cold=balance_test)
    as_examples = lambda f: Examples(users=f.user_id.astype(str).tolist(), items=f.item_id.astype(str).tolist(),  # noqa: E731
                                     prompts=f.prompt.tolist(), labels=f.label.to_numpy())
    train_ex, test_ex = as_examples(train), as_examples(test)
    llm_dir = resolve_llm(settings, llm)
    if cf_run:
        cf, cf_info = cora_cf.from_run(settings, Path(cf_run), data_source=meta.get("source", ""))
    else:
        cf, cf_info = cora_cf.fallback_bpr(table_dir, epochs=cf_epochs, seed=seed)
    config = CoRAConfig(rank=rank, alpha=alpha, target_suffixes=list(targets or DEFAULT_TARGETS))
    fit_config = FitConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)

    systems = Systems(llm_dir=llm_dir, cf=cf, config=config, fit=fit_config, max_length=max_length)
    results = {"cora": systems.cora(train_ex, test_ex)}
    for name in baselines:
        results[name] = getattr(systems, name)(train_ex, test_ex)

    from models.cora.evaluate import slice_metrics

    scores = test[["user_id", "item_id", "event_ts", "label", "cold", "prompt"]].copy()
    for name, r in results.items():
        scores[name] = r.pop("scores")
    metrics = {name: slice_metrics(users=scores.user_id.to_numpy(), labels=scores.label.to_numpy(),
                                   scores=scores[name].to_numpy(), cold=scores.cold.to_numpy(bool))
               for name in results}
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = Path(output_dir) if output_dir else settings.runs_dir / f"cora-{data}-{llm_dir.name}-s{seed}-{stamp}"
    provenance = {"data": cora_table(data), "data_meta": meta, "n_train": len(train_ex), "n_test": len(test_ex),
                  "min_history": min_history, "balance_test": balance_test, "fit": vars(fit_config), **cf_info}
    summary = {"metrics": metrics, "timing": results, "adapter_path": str(out / "adapter"), "run_dir": str(out),
               "scores_path": str(out / "test_scores.parquet"), "llm": str(llm_dir), "cora_config": config.to_dict(),
               **provenance}
    with files.staged_dir(out) as staged:  # a crash leaves no half-written run
        systems.save(staged / "adapter", extra=provenance)
        scores.to_parquet(staged / "test_scores.parquet", index=False)
        (staged / "metrics.json").write_text(json.dumps(summary, indent=2, default=str))
    log.info("CoRA on %s: %s", data, {k: v["all"] for k, v in metrics.items()})
    return summary


