"""Train the alignment systems on one task-sample table and evaluate them on the same test users.

``ktrec align train --data NAME [--llm smollm2|gemma3|PATH]``. Steps:

1. read ``align/<data>`` and ``align_catalogue/<data>`` (jobs/align/data.py); draw each mixture's training
   samples (cut-off ``train`` only) under one sample budget (models/align/mixture.py), dropping samples whose
   prompt + answer exceed ``max_length`` tokens (counted); draw ``max_test`` seeded test users;
2. load the LLM (CUDA when present, else CPU); evaluate it frozen (``zero_shot``), then per mixture add a
   LoRA adapter (same seed, rank, targets, budget and epochs) and evaluate it: ``rec_only`` (retrieval,
   ranking, rating samples) and ``rec_aux`` (those plus masked item modelling, masked language modelling, BPR
   in words) -- ``rec_aux`` is the alignment model;
3. metrics through the one evaluator: retrieval over the whole catalogue (Recall@5/10, NDCG@5/10; the user's
   train + valid items masked), ranking NDCG@5 over the candidates, rating RMSE / MAE (ratings only);
4. write the run folder in one rename: ``model/`` (the LoRA adapters and a config), ``metrics.json`` and
   ``test_scores.parquet`` (per user and system: the top-k ids and per-user metrics, for paired tests).

Nothing is tuned on test: every setting is fixed before a test figure is read.
"""

from __future__ import annotations

import json
import logging
import resource
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from jobs.align.data import read_samples
from jobs.core import files
from jobs.core.settings import Settings

log = logging.getLogger(__name__)

ALIGNED, REC_ONLY, ZERO_SHOT = "rec_aux", "rec_only", "zero_shot"
SYSTEMS = (ALIGNED, REC_ONLY, ZERO_SHOT)


def test_users(frame: pd.DataFrame, n: int | None, *, seed: int) -> list[str]:
    """Up to ``n`` seeded users that have a test retrieval sample (all of them for ``None``), sorted."""
    pool = sorted(frame.loc[(frame.task == "retrieval") & (frame.cutoff == "test"), "user_id"].unique())
    if n is not None and len(pool) > n:
        pool = sorted(np.random.default_rng(seed).choice(pool, size=n, replace=False).tolist())
    return list(pool)


def build_catalogue(codec, table: pd.DataFrame):
    from models.align.catalogue import Catalogue

    return Catalogue.build(codec, table["item_id"].astype(str).tolist(), table["title"].tolist(),
                           table["train_count"].astype(int).tolist())


def eval_inputs(frame: pd.DataFrame, catalogue, users: list[str]) -> dict:
    """The test samples of ``users`` per task, lined up by user: prompts, masks, targets, candidates."""
    from models.llmrec.tuning import Examples

    def rows(task: str) -> pd.DataFrame:
        chosen = frame[(frame.task == task) & (frame.cutoff == "test") & frame.user_id.isin(users)]
        return chosen.sort_values("user_id").reset_index(drop=True)

    ret = rows("retrieval")
    known = ret["target_id"].isin(catalogue.index)
    ret = ret[known].reset_index(drop=True)
    masked = [{catalogue.index[i] for i in h if i in catalogue.index} for h in ret["history_ids"]]
    rank = rows("ranking")
    rate = rows("rating")
    return {"users": ret["user_id"].tolist(), "targets": np.array([catalogue.index[t] for t in ret["target_id"]]),
            "retrieval": (ret["prompt"].tolist(), masked), "target_not_in_catalogue": int((~known).sum()),
            "ranking": Examples(prompts=rank["prompt"].tolist(), candidates=[list(c) for c in rank["candidate_titles"]],
                                targets=rank["target_index"].astype(int).to_numpy(), users=rank["user_id"].tolist()),
            "ranking_users": rank["user_id"].tolist(), "rating": rate["prompt"].tolist(),
            "rating_true": rate["rating"].astype(float).to_numpy(), "rating_users": rate["user_id"].tolist()}


def system_metrics(out: dict, inputs: dict, n_items: int) -> tuple[dict, dict]:
    """(mean metrics, per-user arrays) of one system's evaluation output."""
    from models.metrics import evaluate_candidates, evaluate_top_lists, rating_errors

    metrics, per_user = {}, {}
    if "top" in out:
        result = evaluate_top_lists(out["top"], inputs["targets"], n_items, ks=(5, 10))
        for key in ("recall_at_5", "recall_at_10", "ndcg_at_5", "ndcg_at_10"):
            metrics[f"retrieval_{key}"] = round(float(result.per_user[key].mean()), 5)
            per_user[f"retrieval_{key}"] = result.per_user[key]
        metrics["retrieval_seconds_per_user"] = out["retrieval_seconds_per_user"]
    if "ranking_scores" in out:
        result = evaluate_candidates(out["ranking_scores"], inputs["ranking"].targets, ks=(1, 5))
        prefix = result.protocol.replace("-", "") + "_"
        metrics["ranking_ndcg_at_5"] = round(float(result.per_user[prefix + "ndcg_at_5"].mean()), 5)
        metrics["ranking_hr_at_1"] = round(float(result.per_user[prefix + "hr_at_1"].mean()), 5)
        per_user["ranking_ndcg_at_5"] = result.per_user[prefix + "ndcg_at_5"]
        metrics["ranking_seconds_per_user"] = out["ranking_seconds_per_user"]
    if "rating_pred" in out and len(inputs["rating_true"]):
        errors = rating_errors(out["rating_pred"], inputs["rating_true"])
        metrics |= {"rating_rmse": round(errors["rmse"], 5), "rating_mae": round(errors["mae"], 5)}
        per_user["rating_abs_error"] = np.abs(out["rating_pred"] - inputs["rating_true"])
    return metrics, per_user


def training_set(frame: pd.DataFrame, weights: dict, budget: int, *, codec, max_length: int, seed: int):
    """The mixture's samples (train cut-off, fitting ``max_length``) as generative examples; counts per task."""
    from models.align.mixture import draw
    from models.align.systems import generative

    train = frame[frame.cutoff == "train"]
    fits = [codec.context_length(p, [a], 0) <= max_length for p, a in zip(train["prompt"], train["answer"],
                                                                        strict=True)]
    too_long = train[[not f for f in fits]].groupby("task").size().to_dict()
    chosen = draw(train[fits], weights, budget, seed=seed)
    examples = generative(chosen["prompt"].tolist(), chosen["answer"].tolist(), chosen["user_id"].tolist())
    return examples, {"per_task": chosen.groupby("task").size().to_dict(), "too_long": too_long}


def run(settings: Settings, *, data: str = "default", llm: str = "smollm2", budget: int = 128,
        max_test: int | None = 50, mixtures: dict[str, dict] | None = None, rank: int = 8, alpha: float = 16.0,
        targets: list[str] | None = None, epochs: int = 1, batch_size: int = 4, lr: float = 1e-3,
        retrieval: str = "beam", beams: int = 10, max_length: int = 512, seed: int = 2024,
        test_seed: int | None = None, device: str | None = None, output_dir: Path | None = None,
        zero_shot: bool = True) -> dict:
    """Train and evaluate the systems; save the adapters; returns metrics, counts, timings and paths.
    ``test_seed`` draws the test users (default ``seed``): the benchmark fixes it so seeds share their users."""
    from jobs.profiles.llm import resolve
    from models.align.mixture import REC_AND_AUX
    from models.align.mixture import REC_ONLY as REC_ONLY_MIX
    from models.align.prompts import SYSTEM
    from models.align.systems import AlignConfig, Aligner
    from models.llmrec.layout import Codec
    from models.llmrec.loading import load_causal_lm
    from models.llmrec.tuning import FitConfig

    frame, meta, table = read_samples(settings, data)
    mixtures = mixtures or {ALIGNED: REC_AND_AUX, REC_ONLY: REC_ONLY_MIX}
    if not meta["shape"]["with_rating"]:
        mixtures = {name: {t: w for t, w in mix.items() if t != "rating"} for name, mix in mixtures.items()}
    llm_dir = resolve(settings, llm)
    model, tokenizer = load_causal_lm(llm_dir, device=device)
    codec = Codec(tokenizer, system=SYSTEM)
    max_length = min(max_length, int(getattr(model.config, "max_position_embeddings", max_length)))
    catalogue = build_catalogue(codec, table)
    users = test_users(frame, max_test, seed=seed if test_seed is None else test_seed)
    inputs = eval_inputs(frame, catalogue, users)
    if not inputs["users"]:
        raise ValueError(f"no test users with a catalogue target in align/{data}")
    config = AlignConfig(rank=rank, alpha=alpha, seed=seed, retrieval=retrieval, beams=beams,
                         fit=FitConfig(epochs=epochs, batch_size=batch_size, lr=lr, loss="lm", seed=seed),
                         **({"targets": list(targets)} if targets else {}))
    aligner = Aligner(model, codec, config)
    tasks = {"retrieval": inputs["retrieval"], "ranking": inputs["ranking"], "rating": inputs["rating"]}
    outputs, timing, counts = {}, {}, {}
    if zero_shot:
        outputs[ZERO_SHOT] = aligner.evaluate(None, catalogue, tasks)
        timing[ZERO_SHOT] = {"train_seconds": 0.0}
    for name, weights in mixtures.items():
        examples, counts[name] = training_set(frame, weights, budget, codec=codec, max_length=max_length, seed=seed)
        timing[name] = aligner.tune(name, examples)
        outputs[name] = aligner.evaluate(name, catalogue, tasks)
        log.info("align %s: %s", name, timing[name])
    metrics, per_user = {}, {}
    for name, out in outputs.items():
        metrics[name], per_user[name] = system_metrics(out, inputs, len(catalogue))
    out_dir = Path(output_dir) if output_dir else settings.runs_dir / (
        f"align-{data}-{llm_dir.name}-s{seed}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}")
    summary = {"metrics": metrics, "timing": timing, "training": counts, "mixtures": mixtures,
               "data": f"align/{data}", "data_meta": meta, "llm": str(llm_dir), "device": str(model.device),
               "config": config.to_dict(), "max_length": max_length, "budget": budget,
               "test_users": len(inputs["users"]), "target_not_in_catalogue": inputs["target_not_in_catalogue"],
               "catalogue": {"items": len(catalogue), "groups": len(catalogue.groups),
                             "max_answer_tokens": catalogue.max_answer_len},
               "model_dir": str(out_dir / "model"), "run_dir": str(out_dir),
               "scores_path": str(out_dir / "test_scores.parquet"),
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    _write(out_dir, aligner=aligner, codec=codec, summary=summary, inputs=inputs, outputs=outputs,
           per_user=per_user, catalogue=catalogue, adapters=list(mixtures))
    log.info("alignment on %s: %s", data, metrics)
    return summary


def _write(out: Path, *, aligner, codec, summary: dict, inputs: dict, outputs: dict, per_user: dict, catalogue,
           adapters: list[str]) -> None:
    """The run folder in one rename: model/ (adapters + config), metrics.json, test_scores.parquet."""
    table = pd.DataFrame({"user_id": inputs["users"], "target_id": [catalogue.item_ids[t] for t in inputs["targets"]]})
    for name, out_ in outputs.items():
        table[f"{name}_top"] = [[catalogue.item_ids[p] for p in top] for top in out_["top"]]
        for key, values in per_user[name].items():
            if key.startswith("retrieval_"):
                table[f"{name}_{key}"] = values
    side = {}
    for name in outputs:
        for key in ("ranking_ndcg_at_5", "rating_abs_error"):
            if key in per_user[name]:
                users = inputs["ranking_users" if key.startswith("ranking") else "rating_users"]
                side[f"{name}_{key}"] = dict(zip(users, per_user[name][key].tolist(), strict=True))
    for column, values in side.items():
        table[column] = table["user_id"].map(values)
    config = {"llm": summary["llm"], "chat": codec.chat, "system": codec.system, "adapters": adapters,
              "aligned": ALIGNED, "data": summary["data"], "template": summary["data_meta"].get("template"),
              "max_history": summary["data_meta"]["shape"]["max_history"], "retrieval": summary["config"]}
    with files.staged_dir(out) as staged:  # a crash leaves no half-written run
        if aligner.model is not None:
            aligner.model.save_pretrained(staged / "model" / "lora", selected_adapters=adapters)
        (staged / "model").mkdir(parents=True, exist_ok=True)
        (staged / "model" / "config.json").write_text(json.dumps(config, indent=2, default=str))
        table.to_parquet(staged / "test_scores.parquet", index=False)
        (staged / "metrics.json").write_text(json.dumps(summary, indent=2, default=str))
