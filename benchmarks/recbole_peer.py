"""RecBole 1.2.1 beside ktrec: the same split, as atomic files, trained by RecBole in its own virtualenv.

RecBole needs old numpy/scipy pins that cannot live in ktrec's environment, so it runs in
``<repo>/.recbole-venv`` (another with ``--recbole-python``) through a
subprocess that prints one JSON line. Install: see benchmarks/kt_gain.py's docstring or ``make bench-peer``.
The split is written as ``<name>.train.inter`` / ``.valid.inter`` / ``.test.inter`` and read with RecBole's
``benchmark_filename``, so both libraries train and test on exactly the same interactions.
"""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

from jobs.core.lake import split_table, table_path
from jobs.core.settings import REPO_ROOT, Settings

log = logging.getLogger(__name__)
DEFAULT_PYTHON = REPO_ROOT / ".recbole-venv" / "bin" / "python"
RECBOLE_NAMES = {"bpr": "BPR", "lightgcn": "LightGCN", "neumf": "NeuMF", "multvae": "MultiVAE", "simplex": "SimpleX",
                 "sasrec": "SASRec"}
_NEG = {"distribution": "uniform", "alpha": 1.0, "dynamic": False, "candidate_num": 0}
# RecBole's settings matched to ktrec's conf/<model>/baseline.yaml model config (width, layers, dropout, negatives).
MODEL_CONFIG = {
    "bpr": {"embedding_size": 64},
    "lightgcn": {"embedding_size": 64, "n_layers": 2},
    "neumf": {"mf_embedding_size": 64, "mlp_embedding_size": 64, "dropout_prob": 0.1},
    "multvae": {"mlp_hidden_size": [600], "latent_dimension": 64, "dropout_prob": 0.5, "train_neg_sample_args": None},
    "simplex": {"embedding_size": 64, "margin": 0.9, "negative_weight": 10, "gamma": 0.5, "history_len": 50,
                "dropout_prob": 0.1, "train_neg_sample_args": {**_NEG, "sample_num": 100}},
    "sasrec": {"hidden_size": 64, "inner_size": 256, "n_layers": 2, "n_heads": 2, "MAX_ITEM_LIST_LENGTH": 50,
               "hidden_dropout_prob": 0.2, "attn_dropout_prob": 0.2, "loss_type": "CE", "train_neg_sample_args": None},
}
SEQUENTIAL = ("sasrec",)
MAX_LEN = 50
PEER_ROWS = "peer.json"

_CHILD = r"""
import json, os, sys, time, logging
os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"  # RecBole reloads its checkpoint with torch.load
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import init_seed, get_model, get_trainer
args = json.loads(sys.argv[1])
config = Config(model=args["model"], dataset=args["dataset"], config_dict=args["config"])
init_seed(config["seed"], config["reproducibility"])
logging.disable(logging.INFO)
dataset = create_dataset(config)
train, valid, test = data_preparation(config, dataset)
model = get_model(config["model"])(config, train.dataset).to(config["device"])
trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
started = time.perf_counter()
_, best_valid = trainer.fit(train, valid, saved=True, show_progress=False)
seconds = time.perf_counter() - started
result = trainer.evaluate(test, load_best_model=True, show_progress=False)
epochs = len(trainer.train_loss_dict) or 1
print(json.dumps({"test": {k: float(v) for k, v in result.items()},
                  "valid": {k: float(v) for k, v in best_valid.items()},
                  "epochs": epochs, "seconds_per_epoch": seconds / epochs}))
"""


def write_sequences(settings: Settings, split: str, out_dir: Path) -> str:
    """The split for RecBole's sequential models: one row per target with its history (``item_id_list``):
    every train position after the first (its train prefix), each valid target with the user's train sequence,
    each test target with train + valid by time; the last 50 items, as ktrec's SASRec reads them."""
    from models.data import read_split_frame

    frame, _ = read_split_frame(table_path(settings, split_table(split)))
    frame = frame.sort_values("event_ts", kind="stable")
    dataset = f"ktrec_{split}_seq"
    folder = out_dir / dataset
    folder.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list] = {"train": [], "valid": [], "test": []}
    for user, events in frame.groupby("user_id", sort=True):
        train = events[events["split"] == "train"]["item_id"].tolist()
        known = events[events["split"] != "test"]["item_id"].tolist()
        stamps = events["event_ts"].astype("int64") // 10**6
        for pos in range(1, len(train)):
            rows["train"].append((user, " ".join(train[max(0, pos - MAX_LEN):pos]), train[pos], pos))
        for part, history in (("valid", train), ("test", known)):
            for item in events[events["split"] == part]["item_id"]:
                rows[part].append((user, " ".join(history[-MAX_LEN:]), item, int(stamps.max())))
    import pandas as pd

    for part, data in rows.items():
        pd.DataFrame(data, columns=["user_id:token", "item_id_list:token_seq", "item_id:token", "timestamp:float"]) \
            .to_csv(folder / f"{dataset}.{part}.inter", sep="\t", index=False)
    return dataset


def write_atomic(settings: Settings, split: str, out_dir: Path) -> str:
    """The split as RecBole atomic files under ``out_dir/<dataset>/``; returns the dataset name."""
    from models.data import read_split_frame

    frame, _ = read_split_frame(table_path(settings, split_table(split)))
    dataset = f"ktrec_{split}"  # not "ml-100k": RecBole would use its bundled copy instead
    folder = out_dir / dataset
    folder.mkdir(parents=True, exist_ok=True)
    frame = frame.assign(timestamp=frame["event_ts"].astype("int64") // 10**6)
    for part in ("train", "valid", "test"):
        rows = frame[frame["split"] == part][["user_id", "item_id", "rating", "timestamp"]]
        rows = rows.rename(columns={"user_id": "user_id:token", "item_id": "item_id:token",
                                    "rating": "rating:float", "timestamp": "timestamp:float"})
        rows.to_csv(folder / f"{dataset}.{part}.inter", sep="\t", index=False)
    return dataset


def _baseline_train(model: str):
    """The first train command of conf/<model>/baseline.yaml: RecBole trains with the same settings."""
    from models.scenario import Train, load_scenario

    scenario = load_scenario(REPO_ROOT / "conf" / model / "baseline.yaml")
    return next(c for c in scenario.commands if isinstance(c, Train))


def run_peer(settings: Settings, *, splits: list[str], models: list[str], epochs: int = 300, seed: int = 2020,
             python: Path = DEFAULT_PYTHON, patience: int = 10) -> list[dict]:
    """RecBole's version of each model on each split, trained to its early stop (``patience`` evaluations
    without a better valid NDCG@10, at most ``epochs``); rows with test NDCG@10, Recall@10, seconds per epoch.
    SASRec only on splits with one test event per user (RecBole's sequential evaluation scores each test
    interaction apart, ktrec each user's whole test set: on a random split the figures would not compare)."""
    if not Path(python).is_file():
        return [{"split": s, "model": m, "note": f"RecBole venv missing at {python}: run `make bench-peer`"}
                for s in splits for m in models]
    data_dir = _peer_dir(settings)
    rows = []
    for split in splits:
        dataset = write_atomic(settings, split, data_dir)
        for model in models:
            if model in SEQUENTIAL and not _one_test_event_per_user(settings, split):
                rows.append({"split": split, "model": model, "note": "not run: RecBole's sequential evaluation "
                             "scores each test interaction apart; this split has several per user"})
                continue
            train = _baseline_train(model)
            config = {
                "data_path": str(data_dir), "benchmark_filename": ["train", "valid", "test"],
                "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
                "learning_rate": train.lr, "weight_decay": train.weight_decay,
                "epochs": epochs, "stopping_step": patience, "train_batch_size": train.batch_size,
                "eval_batch_size": 4096, "seed": seed, "device": "cpu",
                "metrics": ["Recall", "NDCG"], "topk": [10], "valid_metric": "NDCG@10",
                "eval_args": {"group_by": "user", "order": "RO", "mode": "full"},
                "checkpoint_dir": str(data_dir / "saved"), "show_progress": False,
                **MODEL_CONFIG[model],
            }
            name = dataset
            if model in SEQUENTIAL:
                name = write_sequences(settings, split, data_dir)
                config["load_col"] = {"inter": ["user_id", "item_id_list", "item_id", "timestamp"]}
                config["eval_args"] = {**config["eval_args"], "order": "TO"}
            args = json.dumps({"model": RECBOLE_NAMES[model], "dataset": name, "config": config})
            proc = subprocess.run([str(python), "-c", _CHILD, args], capture_output=True, text=True,
                                  cwd=data_dir, check=False)
            if proc.returncode != 0:
                rows.append({"split": split, "model": model, "note": "failed: " + proc.stderr.strip()[-300:]})
                log.warning("recbole %s on %s failed: %s", model, split, proc.stderr.strip()[-2000:])
                continue
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append({"split": split, "model": model, "ndcg_at_10": out["test"]["ndcg@10"],
                         "recall_at_10": out["test"]["recall@10"], "seconds_per_epoch": out["seconds_per_epoch"],
                         "epochs": out["epochs"],
                         "note": f"RecBole 1.2.1, {RECBOLE_NAMES[model]}, lr {train.lr}, wd {train.weight_decay}, "
                                 f"batch {train.batch_size}, early stop {patience}, seed {seed}"})
            log.info("recbole %s on %s: %s", model, split, rows[-1])
            (data_dir / PEER_ROWS).write_text(json.dumps(rows, indent=2))
    (data_dir / PEER_ROWS).write_text(json.dumps(rows, indent=2))
    return rows


def _one_test_event_per_user(settings: Settings, split: str) -> bool:
    from models.data import read_split_frame

    frame, _ = read_split_frame(table_path(settings, split_table(split)))
    return bool((frame[frame["split"] == "test"].groupby("user_id").size() == 1).all())


def saved_peer(settings: Settings) -> list[dict] | None:
    """The rows of the last :func:`run_peer` under this KTREC_HOME (for ``kt_gain --from-runs``)."""
    path = _peer_dir(settings) / PEER_ROWS
    return json.loads(path.read_text()) if path.is_file() else None


def _peer_dir(settings: Settings) -> Path:
    """Where the atomic files, RecBole's checkpoints and the peer rows of one KTREC_HOME live."""
    return settings.runs_dir / "recbole"


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.recbole_peer --home DIR``: the peer rows alone (kt_gain reads them back)."""
    import argparse
    import os

    from jobs.core.settings import get_settings

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--splits", default="random,loo")
    parser.add_argument("--models", default=",".join(RECBOLE_NAMES))
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--python", type=Path, default=DEFAULT_PYTHON)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ["KTREC_HOME"] = str(args.home)
    get_settings.cache_clear()
    rows = run_peer(get_settings(), splits=args.splits.split(","), models=args.models.split(","), epochs=args.epochs,
                    python=args.python, patience=args.patience)
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
