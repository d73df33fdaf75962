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
RECBOLE_NAMES = {"bpr": "BPR", "lightgcn": "LightGCN"}
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


def run_peer(settings: Settings, *, splits: list[str], models: list[str], epochs: int = 100, seed: int = 2020,
             python: Path = DEFAULT_PYTHON) -> list[dict]:
    """RecBole's BPR / LightGCN on each split; rows with test NDCG@10, Recall@10, seconds per epoch."""
    if not Path(python).is_file():
        return [{"split": s, "model": m, "note": f"RecBole venv missing at {python}: run `make bench-peer`"}
                for s in splits for m in models]
    data_dir = _peer_dir(settings)
    rows = []
    for split in splits:
        dataset = write_atomic(settings, split, data_dir)
        for model in models:
            train = _baseline_train(model)
            config = {
                "data_path": str(data_dir), "benchmark_filename": ["train", "valid", "test"],
                "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
                "embedding_size": 64, "learning_rate": train.lr, "weight_decay": train.weight_decay,
                "epochs": epochs, "stopping_step": train.patience or epochs, "train_batch_size": train.batch_size,
                "eval_batch_size": 4096, "seed": seed, "device": "cpu",
                "metrics": ["Recall", "NDCG"], "topk": [10], "valid_metric": "NDCG@10",
                "eval_args": {"group_by": "user", "order": "RO", "mode": "full"},
                "checkpoint_dir": str(data_dir / "saved"), "show_progress": False,
            }
            args = json.dumps({"model": RECBOLE_NAMES[model], "dataset": dataset, "config": config})
            proc = subprocess.run([str(python), "-c", _CHILD, args], capture_output=True, text=True,
                                  cwd=data_dir, check=False)
            if proc.returncode != 0:
                rows.append({"split": split, "model": model, "note": "failed: " + proc.stderr.strip()[-300:]})
                continue
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append({"split": split, "model": model, "ndcg_at_10": out["test"]["ndcg@10"],
                         "recall_at_10": out["test"]["recall@10"], "seconds_per_epoch": out["seconds_per_epoch"],
                         "epochs": out["epochs"],
                         "note": f"RecBole 1.2.1, dim 64, lr {train.lr}, wd {train.weight_decay}, seed {seed}"})
            log.info("recbole %s on %s: %s", model, split, rows[-1])
    (data_dir / PEER_ROWS).write_text(json.dumps(rows, indent=2))
    return rows


def saved_peer(settings: Settings) -> list[dict] | None:
    """The rows of the last :func:`run_peer` under this KTREC_HOME (for ``kt_gain --from-runs``)."""
    path = _peer_dir(settings) / PEER_ROWS
    return json.loads(path.read_text()) if path.is_file() else None


def _peer_dir(settings: Settings) -> Path:
    """Where the atomic files, RecBole's checkpoints and the peer rows of one KTREC_HOME live."""
    return settings.runs_dir / "recbole"
