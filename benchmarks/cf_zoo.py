"""CF zoo on MovieLens-100K: seconds per training epoch and valid/test metrics per model.

    PYTHONPATH=. python -m benchmarks.cf_zoo [--models bpr lightgcn] [--max-epochs 50] [--threads 2]

Uses a lake split folder given by ``--split-dir``; without one it writes a random per-interaction
80/10/10 split of ml-100k in the split-table contract (parquet + meta.json) to a temporary folder, the
protocol of the calibration in shared/METHODS.md (BPR test NDCG@10 ≈ 0.299, full ranking) and of
RecBole's figures in shared/peers/recbole.md. Each model trains with Adam, is evaluated on valid every
``--eval-every`` epochs, stops after ``--patience`` evaluations without a better valid NDCG@10, and is
tested with its best weights. Writes ``benchmarks/reports/cf_zoo.{json,md}``.

The loop here is a measurement harness; scenario training lives in models.trainer.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from jobs.core.settings import DEFAULT_DATASET
from models.cf import MODELS, build_model, model_config
from models.data import iter_batches, load_split
from models.metrics import evaluate_split

log = logging.getLogger("benchmarks.cf_zoo")
REPORTS = Path(__file__).resolve().parent / "reports"
# (config, lr, weight decay, batch size): RecBole-like defaults at embedding 64.
RECIPES = {
    "bpr": ({}, 1e-3, 1e-5, 2048),
    "neumf": ({}, 1e-3, 0.0, 2048),
    "lightgcn": ({}, 1e-3, 0.0, 2048),
    "multvae": ({}, 1e-3, 0.0, 128),
    "simplex": ({}, 1e-3, 0.0, 512),
    "sasrec": ({}, 1e-3, 0.0, 256),
}


def write_random_split(out: Path, *, seed: int, dataset: Path = DEFAULT_DATASET) -> Path:
    """Random per-interaction 80/10/10 split of ml-100k's u.data in the split-table contract."""
    frame = pd.read_csv(dataset / "u.data", sep="\t", names=["user_id", "item_id", "rating", "ts"])
    draw = np.random.default_rng(seed).random(len(frame))
    table = pd.DataFrame({
        "user_id": frame["user_id"].astype(str), "item_id": frame["item_id"].astype(str),
        "rating": frame["rating"].astype("float32"),
        "event_ts": pd.to_datetime(frame["ts"], unit="s").astype("datetime64[us]"),
        "split": np.where(draw < 0.8, "train", np.where(draw < 0.9, "valid", "test")),
    })
    out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out / "part-00000.parquet", index=False)
    counts = table["split"].value_counts().to_dict()
    meta = {
        "name": out.name, "strategy": "random", "seed": seed, "k_core": 0, "min_rating": None,
        "counts": {**counts, "users": int(table["user_id"].nunique()), "items": int(table["item_id"].nunique())},
        "train_end": table.loc[table["split"] == "train", "event_ts"].max().isoformat(),
    }
    (out / "meta.json").write_text(json.dumps(meta))
    return out


def run_model(
    name: str, data, *, seed: int, max_epochs: int, eval_every: int, patience: int, budget_s: float
) -> dict:
    config, lr, weight_decay, batch_size = RECIPES[name]
    torch.manual_seed(seed)
    model = build_model(name, data.n_users, data.n_items, **config)
    model.setup(data.train)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    epoch_seconds, best, best_state, best_epoch, stale = [], -1.0, None, 0, 0
    began = time.perf_counter()
    for epoch in range(1, max_epochs + 1):
        model.train()
        start = time.perf_counter()
        for batch in iter_batches(data.train, kind=model.batch_kind, batch_size=batch_size,
                                  n_negatives=model.n_negatives, max_len=model.max_len, seed=seed, epoch=epoch):
            optimizer.zero_grad()
            model.calculate_loss(batch).backward()
            optimizer.step()
        epoch_seconds.append(time.perf_counter() - start)
        out_of_time = time.perf_counter() - began > budget_s
        if epoch % eval_every and epoch != max_epochs and not out_of_time:
            continue
        score = evaluate_split(model, data, "valid", ks=(10,)).metrics["ndcg_at_10"]
        log.info("%s epoch %d: valid ndcg@10 %.4f (%.2fs/epoch)", name, epoch, score, np.mean(epoch_seconds))
        if score > best:
            best, best_state, best_epoch, stale = score, copy.deepcopy(model.state_dict()), epoch, 0
        else:
            stale += 1
            if stale >= patience:
                break
        if out_of_time:
            log.info("%s: time budget of %.0fs spent after %d epochs", name, budget_s, epoch)
            break
    model.load_state_dict(best_state)
    start = time.perf_counter()
    test = evaluate_split(model, data, "test")
    return {
        "model": name, "config": model_config(model), "lr": lr, "weight_decay": weight_decay,
        "batch_size": batch_size, "epochs_run": len(epoch_seconds), "best_epoch": best_epoch,
        "stopped_by_budget": out_of_time, "load_average": [round(x, 1) for x in os.getloadavg()],
        "seconds_per_epoch": float(np.mean(epoch_seconds)), "test_eval_seconds": time.perf_counter() - start,
        "valid_ndcg_at_10": best, "test": test.to_dict(),
        "test_sampled100": evaluate_split(model, data, "test", sampled_negatives=100, seed=seed).to_dict(),
    }


def to_markdown(report: dict) -> str:
    lines = [
        "# CF zoo on MovieLens-100K", "",
        (f"Split: {report['split']['strategy']} (seed {report['split']['seed']}), {report['n_users']} users, "
        f"{report['n_items']} items; dropped eval targets: {report['dropped']}. Threads: {report['threads']}; "
        f"host load average at start: {report['load_average']}."), "",
        ("| model | s/epoch | epochs (best) | valid NDCG@10 | test NDCG@10 | test Recall@10 | test MRR@10 "
        "| sampled-100 NDCG@10 |"),
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        m, s = r["test"]["metrics"], r["test_sampled100"]["metrics"]
        lines.append(
            f"| {r['model']} | {r['seconds_per_epoch']:.2f} | {r['epochs_run']} ({r['best_epoch']}) "
            f"{' (budget)' if r['stopped_by_budget'] else ''} | {r['valid_ndcg_at_10']:.4f} | {m['ndcg_at_10']:.4f} "
            f"| {m['recall_at_10']:.4f} "
            f"| {m['mrr_at_10']:.4f} | {s['sampled100_ndcg_at_10']:.4f} |"
        )
    lines += ["", ("Reference (METHODS.md calibration, same protocol): BPR test NDCG@10 0.299 ± 0.004; "
              "RecBole on a similar split: BPR 0.293, MultVAE 0.294, LightGCN 0.282, SimpleX 0.281, NeuMF 0.279.")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--split-dir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--max-epochs", type=int, default=200)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--patience", type=int, default=4)
    parser.add_argument("--budget-s", type=float, default=600.0, help="training seconds per model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPORTS / "cf_zoo")
    parser.add_argument("--update", action="store_true",
                        help="keep the other models' results already in --out (re-measure some models only)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        split_dir = args.split_dir or write_random_split(Path(tmp) / "ml100k-random", seed=args.seed)
        data = load_split(split_dir)
    report = {
        "split": data.meta, "n_users": data.n_users, "n_items": data.n_items, "dropped": data.dropped,
        "threads": args.threads, "load_average": [round(x, 1) for x in os.getloadavg()],
        "host": platform.node(), "results": [],
    }
    previous = args.out.with_suffix(".json")
    kept = json.loads(previous.read_text())["results"] if args.update and previous.exists() else []
    kept = [r for r in kept if r["model"] not in args.models]
    fresh: list[dict] = []
    for name in args.models:
        fresh.append(run_model(
            name, data, seed=args.seed, max_epochs=args.max_epochs, eval_every=args.eval_every, patience=args.patience,
            budget_s=args.budget_s,
        ))
        report["results"] = kept + fresh
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str))
        args.out.with_suffix(".md").write_text(to_markdown(report))
    print(to_markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
