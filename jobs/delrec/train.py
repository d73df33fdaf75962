"""Train DELRec and every baseline on one prompt table, on the same test candidates.

``ktrec delrec train --data NAME [--llm smollm2|gemma3|PATH]``. Steps:

1. read ``delrec/<data>`` and draw seeded users: stage-1 TA and RPS examples (``max_distill`` users each),
   stage-2 recommendation examples at the train cut-off (``max_train``), test examples (``max_test``); apply
   the truncation rule (jobs/delrec/prepare.py) with the soft prompt counted in;
2. load the LLM (CUDA when present, else CPU) and run models/delrec/systems.py: zero-shot, stage 1,
   stage-1-only, DELRec (stage 2), the no-soft-prompt LoRA ablation; plus the SASRec teacher ranking the same
   20 candidates by its own scores (history: train + valid, as at its test cut-off) and a seeded random ranker;
3. HR@1, HR@5, NDCG@5 through the one evaluator (models.metrics.evaluate_candidates) on all test users, warm
   users (more than ``SPARSE_MAX`` training items) and sparse ones (at most ``SPARSE_MAX``); per-user paired
   tests of DELRec against the teacher and against the ablation (McNemar on HR@1 hits, paired t on NDCG@5);
4. write the run folder in one rename: ``model/`` (soft prompt + LoRA, models/delrec/io.py), ``metrics.json``,
   ``test_scores.parquet`` (every system's per-candidate scores).

Nothing is tuned on test: the systems' settings are fixed before any test score is read.
"""

from __future__ import annotations

import json
import logging
import resource
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from jobs.core import files, lake
from jobs.core.settings import Settings
from jobs.delrec.prepare import draw, read_table, to_examples

log = logging.getLogger(__name__)

SYSTEMS = ("delrec", "teacher", "zero_shot", "lora", "stage1_only", "random")
SPARSE_MAX = 5  # users with at most this many training items form the sparse slice
KS = (1, 5)


def slice_metrics(scores: np.ndarray, targets: np.ndarray, n_train: np.ndarray) -> dict:
    """HR@1, HR@5, NDCG@5 (and n) on all, warm (> SPARSE_MAX training items) and sparse test users."""
    from models.metrics import evaluate_candidates

    out = {}
    for name, rows in (("all", np.ones(len(targets), bool)), ("warm", n_train > SPARSE_MAX),
                       ("sparse", n_train <= SPARSE_MAX)):
        result = evaluate_candidates(scores[rows], targets[rows], ks=KS)
        prefix = result.protocol.replace("-", "") + "_"
        values = {k.removeprefix(prefix): v for k, v in result.metrics.items()}
        out[name] = {"n": int(rows.sum()), **{k: round(values[k], 5) for k in ("hr_at_1", "hr_at_5", "ndcg_at_5")}}
    return out


def paired_tests(per_system: dict[str, np.ndarray], targets: np.ndarray) -> dict:
    """DELRec against the teacher and the ablation, per user: McNemar on HR@1, paired t on NDCG@5."""
    from models.metrics import evaluate_candidates, mcnemar, paired_ttest

    def per_user(name: str) -> dict[str, np.ndarray]:
        result = evaluate_candidates(per_system[name], targets, ks=KS)
        return {k.split("_", 1)[1]: v for k, v in result.per_user.items()}

    out = {}
    for other in ("teacher", "lora"):
        if "delrec" in per_system and other in per_system and len(targets) >= 2:
            mine, theirs = per_user("delrec"), per_user(other)
            out[f"delrec_vs_{other}"] = {"hr_at_1_mcnemar": mcnemar(mine["hr_at_1"], theirs["hr_at_1"]),
                                         "ndcg_at_5_ttest": paired_ttest(mine["ndcg_at_5"], theirs["ndcg_at_5"])}
    return out


def teacher_scores(settings: Settings, meta: dict, test: pd.DataFrame) -> np.ndarray:
    """The teacher's own scores of the test candidates (models.delrec.teacher.candidate_scores)."""
    from jobs.train import run_folder
    from models.data import load_split
    from models.delrec.teacher import candidate_scores

    data = load_split(lake.table_path(settings, lake.split_table(meta["split"])))
    model = run_folder.load_model(Path(meta["teacher_run"]), data=data)
    return candidate_scores(model, data, test["user_id"].tolist(), [list(c) for c in test["candidate_ids"]])


def _examples(frame: pd.DataFrame, meta: dict, *, codec, n_soft: int, max_length: int, max_distill: int | None,
              max_train: int | None, max_test: int | None, seed: int) -> tuple[dict, pd.DataFrame, dict]:
    teacher = meta["teacher_display"]
    plan = {"ta": ("ta", "train", max_distill, seed), "rps": ("rps", "train", max_distill, seed + 1),
            "train": ("rec", "train", max_train, seed + 2), "test": ("rec", "test", max_test, seed + 3)}
    out, counts, test_rows = {}, {}, None
    for key, (task, cutoff, n, s) in plan.items():
        rows = draw(frame, task, cutoff, n, seed=s)
        out[key], kept, counts[key] = to_examples(rows, codec=codec, teacher=teacher, n_soft=n_soft,
                                                  max_length=max_length)
        test_rows = kept if key == "test" else test_rows
    if not len(out["test"]) or not len(out["train"]):
        raise ValueError(f"no usable train or test examples in delrec/{meta['name']}: {counts}")
    return out, test_rows, counts


def run_systems(systems, ex: dict, *, settings: Settings, meta: dict, test_rows: pd.DataFrame,
                seed: int) -> tuple[dict, dict, dict]:
    """Every system on the same test examples: (scores per system, timings per system, stage-1 log)."""
    results = {"zero_shot": systems.zero_shot(ex["test"])}
    stage1 = systems.distill({"ta": ex["ta"], "rps": ex["rps"]})
    results["stage1_only"] = systems.stage1_only(ex["test"])
    results["delrec"] = systems.delrec(ex["train"], ex["test"])
    results["lora"] = systems.lora(ex["train"], ex["test"])
    started = time.perf_counter()
    results["teacher"] = {"scores": teacher_scores(settings, meta, test_rows), "train_seconds": None}
    results["teacher"]["infer_seconds"] = round(time.perf_counter() - started, 3)
    results["random"] = {"scores": np.random.default_rng(seed).random(results["delrec"]["scores"].shape)}
    scores = {name: r.pop("scores") for name, r in results.items()}
    return scores, results, stage1


def run(settings: Settings, *, data: str = "default", llm: str = "smollm2", max_distill: int | None = 64,
        max_train: int | None = 128, max_test: int | None = 200, n_soft: int = 100, rank: int = 8,
        alpha: float = 16.0, epochs: tuple[int, int] = (1, 1), batch_size: int = 4,
        lr: tuple[float, float] = (1e-2, 1e-3), loss: str = "choice", max_length: int = 512, seed: int = 2024,
        targets: list[str] | None = None, device: str | None = None, output_dir: Path | None = None) -> dict:
    """Train DELRec and the baselines, evaluate, save the soft prompt + LoRA; returns metrics and paths.
    ``epochs`` and ``lr`` are (stage 1, stage 2), the ablation uses stage 2's; ``targets`` are the LoRA module
    name suffixes (default q_proj and v_proj of every layer)."""
    from jobs.profiles.llm import resolve
    from models.delrec.prompts import SYSTEM
    from models.delrec.stages import FitConfig
    from models.delrec.systems import DelRecConfig, Systems
    from models.llmrec.layout import Codec
    from models.llmrec.loading import load_causal_lm

    frame, meta = read_table(settings, data)
    llm_dir = resolve(settings, llm)
    model, tokenizer = load_causal_lm(llm_dir, device=device)
    codec = Codec(tokenizer, system=SYSTEM)
    max_length = min(max_length, int(getattr(model.config, "max_position_embeddings", max_length)))
    ex, test_rows, counts = _examples(frame, meta, codec=codec, n_soft=n_soft, max_length=max_length,
                                      max_distill=max_distill, max_train=max_train, max_test=max_test, seed=seed)
    fit = lambda e, r: FitConfig(epochs=e, batch_size=batch_size, lr=r, loss=loss, seed=seed)  # noqa: E731
    config = DelRecConfig(n_soft=n_soft, rank=rank, alpha=alpha, stage1=fit(epochs[0], lr[0]),
                          stage2=fit(epochs[1], lr[1]), seed=seed, **({"targets": list(targets)} if targets else {}))
    systems = Systems(model, codec, config)
    scores, timing, stage1 = run_systems(systems, ex, settings=settings, meta=meta, test_rows=test_rows, seed=seed)
    targets, n_train = test_rows["target_index"].to_numpy(), test_rows["n_train"].to_numpy()
    out = Path(output_dir) if output_dir else settings.runs_dir / (
        f"delrec-{data}-{llm_dir.name}-s{seed}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}")
    summary = {"metrics": {name: slice_metrics(s, targets, n_train) for name, s in scores.items()},
               "significance": paired_tests(scores, targets), "timing": timing, "stage1": stage1, "counts": counts,
               "data": f"delrec/{data}", "data_meta": meta, "llm": str(llm_dir), "device": str(model.device),
               "config": config.to_dict(), "max_length": max_length, "teacher": meta["teacher_display"],
               "teacher_run": meta["teacher_run"], "model_dir": str(out / "model"), "run_dir": str(out),
               "scores_path": str(out / "test_scores.parquet"),
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    _write(out, systems=systems, codec=codec, summary=summary, test_rows=test_rows, scores=scores)
    log.info("DELRec on %s: %s", data, {k: v["all"] for k, v in summary["metrics"].items()})
    return summary


def _write(out: Path, *, systems, codec, summary: dict, test_rows: pd.DataFrame, scores: dict) -> None:
    """The run folder in one rename: model/ (soft prompt + LoRA), metrics.json, test_scores.parquet."""
    from models.delrec import io
    from models.delrec.systems import DELREC_ADAPTER

    table = test_rows[["user_id", "n_train", "target_index", "candidate_ids"]].copy()
    for name, values in scores.items():
        table[name] = list(values)
    config = {"llm": summary["llm"], "chat": codec.chat, "system": codec.system,
              "n_soft": summary["config"]["n_soft"], "teacher": summary["teacher"],
              "max_length": summary["max_length"], "data": summary["data"],
              "template": summary["data_meta"].get("template")}
    with files.staged_dir(out) as staged:  # a crash leaves no half-written run
        io.save(staged / "model", model=systems.model, soft=systems.soft, adapter=DELREC_ADAPTER, config=config)
        table.to_parquet(staged / "test_scores.parquet", index=False)
        (staged / "metrics.json").write_text(json.dumps(summary, indent=2, default=str))
