"""Small real inputs for the registry tests: a split table in the lake, tiny torch CF models, run folders.

The data has structure a model can learn (two taste groups, each liking its own half of the catalogue),
so a trained model ranks better than an untrained one and the gate has real differences to judge.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import nn

from jobs.core import lake
from models.cf.base import Recommender, TrainData

N_USERS, N_ITEMS = 24, 20


class TinyMF(Recommender):
    """Matrix factorisation with a BPR loss: the smallest real Recommender."""

    def __init__(self, n_users: int, n_items: int, dim: int = 8, seed: int = 0) -> None:
        super().__init__(n_users, n_items)
        torch.manual_seed(seed)
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)

    def calculate_loss(self, batch):
        u = self.user(batch["user"])
        diff = (u * self.item(batch["pos_item"])).sum(-1) - (u * self.item(batch["neg_item"])).sum(-1)
        return -torch.nn.functional.logsigmoid(diff).mean()

    def predict(self, batch):
        return (self.user(batch["user"]) * self.item(batch["pos_item"])).sum(-1)

    def full_sort_predict(self, batch):
        return self.user(batch["user"]) @ self.item.weight.T


def write_split(settings, *, name: str = "loo", seed: int = 0) -> pd.DataFrame:
    """Publish a split table: each user likes the items of its group; one test item per user."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(N_USERS):
        liked = rng.permutation(np.arange(N_ITEMS // 2) + (N_ITEMS // 2) * (u % 2))[:7]
        for rank, i in enumerate(liked):
            split = "test" if rank == 0 else ("valid" if rank == 1 else "train")
            rows.append((f"u{u}", f"i{i}", 4.0, pd.Timestamp("2026-01-01", tz="UTC"), split))
    frame = pd.DataFrame(rows, columns=lake.SPLIT_COLUMNS)
    staged = lake.staging_dir(settings, lake.split_table(name))
    staged.mkdir(parents=True)
    frame.to_parquet(staged / "part-0.parquet")
    (staged / "meta.json").write_text(json.dumps({"name": name, "strategy": "loo", "seed": seed}))
    lake.publish(settings, lake.split_table(name), staged)
    return frame


def train_data(frame: pd.DataFrame) -> TrainData:
    users = np.array([f"u{u}" for u in range(N_USERS)])
    items = np.array([f"i{i}" for i in range(N_ITEMS)])
    train = frame[frame["split"] == "train"]
    rows = train["user_id"].str[1:].astype(int).to_numpy()
    cols = train["item_id"].str[1:].astype(int).to_numpy()
    matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(N_USERS, N_ITEMS))
    return TrainData(user_ids=users, item_ids=items, train=matrix)


def fit(data: TrainData, *, steps: int, seed: int = 0) -> tuple[TinyMF, list[dict]]:
    """Train TinyMF for ``steps`` full-batch BPR steps; returns the model and a per-epoch history."""
    model = TinyMF(N_USERS, N_ITEMS, seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    coo = data.train.tocoo()
    gen = torch.Generator().manual_seed(seed)
    history = []
    for step in range(steps):
        batch = {
            "user": torch.as_tensor(coo.row),
            "pos_item": torch.as_tensor(coo.col),
            "neg_item": torch.randint(0, N_ITEMS, (len(coo.row),), generator=gen),
        }
        loss = model.calculate_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append({"epoch": step + 1, "loss": float(loss.detach())})
    return model, history


GAINS = 1.0 / np.log2(np.arange(2, 12))  # position 1..10 -> 1 / log2(position + 1)


def ndcg_at_10_by_hand(scores: np.ndarray, known: np.ndarray, targets: dict[int, set[int]]) -> float:
    """Mean binary NDCG@10 over the users in ``targets``, written out here so no project code is involved.

    Each user ranks every item not in ``known`` (bool [users, items]) by ``scores`` (highest first); a
    target item at position p (1-based, p <= 10) gains 1 / log2(p + 1); the sum is divided by the ideal
    gain of min(|targets|, 10) hits at positions 1, 2, ...
    """
    values = []
    for user, relevant in sorted(targets.items()):
        row = np.where(known[user], -np.inf, np.asarray(scores[user], dtype=np.float64))
        top = np.argsort(-row, kind="stable")[:10]
        dcg = sum(gain for gain, item in zip(GAINS, top, strict=False) if int(item) in relevant)
        values.append(dcg / GAINS[: min(len(relevant), 10)].sum())
    return float(np.mean(values))


def _targets_and_known(frame: pd.DataFrame, user_index: dict, item_index: dict, n_users: int, n_items: int):
    """The test protocol of the trainer: rank against everything but train + valid; a test target whose
    user or item is not in the model (never in train) or that repeats a known item is dropped."""
    train = frame[frame["split"] == "train"]
    in_train_users, in_train_items = set(train["user_id"]), set(train["item_id"])
    known = np.zeros((n_users, n_items), dtype=bool)
    for u, i in frame.loc[frame["split"] != "test", ["user_id", "item_id"]].itertuples(index=False):
        if u in user_index and i in item_index:
            known[user_index[u], item_index[i]] = True
    targets: dict[int, set[int]] = {}
    for u, i in frame.loc[frame["split"] == "test", ["user_id", "item_id"]].itertuples(index=False):
        if u in in_train_users and i in in_train_items and not known[user_index[u], item_index[i]]:
            targets.setdefault(user_index[u], set()).add(item_index[i])
    return targets, known


def honest_ndcg(model: TinyMF, data: TrainData, frame: pd.DataFrame) -> float:
    """Independent full-ranking NDCG@10 (train + valid items masked) of ``model`` on the split's test rows."""
    users = {u: k for k, u in enumerate(data.user_ids)}
    items = {i: k for k, i in enumerate(data.item_ids)}
    targets, known = _targets_and_known(frame, users, items, N_USERS, N_ITEMS)
    with torch.no_grad():
        scores = model.full_sort_predict({"user": torch.arange(N_USERS)}).numpy()
    return ndcg_at_10_by_hand(scores, known, targets)


def read_split_frame(settings, split: str) -> pd.DataFrame:
    """The split table's rows, read with pandas straight from its parquet files."""
    folder = lake.table_path(settings, lake.split_table(split))
    return pd.concat([pd.read_parquet(f) for f in sorted(folder.rglob("*.parquet"))], ignore_index=True)


def run_folder_ndcg(settings, run_dir: Path, split: str) -> float:
    """NDCG@10 on ``split``'s test rows of the model saved in a `ktrec train` run folder, scored here.

    Only the loading of the weights and id maps is the project's; ranking and metric are computed by hand.
    """
    from jobs.train import run_folder

    spec = run_folder.model_spec(run_dir)
    model = run_folder.load_model(run_dir).eval()
    users = {str(u): k for k, u in enumerate(spec["user_ids"])}
    items = {str(i): k for k, i in enumerate(spec["item_ids"])}
    frame = read_split_frame(settings, split).astype({"user_id": str, "item_id": str})
    targets, known = _targets_and_known(frame, users, items, len(users), len(items))
    with torch.no_grad():
        scores = model.full_sort_predict({"user": torch.arange(len(users))}).numpy()
    return ndcg_at_10_by_hand(scores, known, targets)


def write_run(
    root: Path,
    *,
    model: TinyMF,
    data: TrainData,
    history: list[dict],
    ndcg: float,
    variant: str,
    split: str = "loo",
) -> dict:
    """A run folder with a scenario and a history, and the summary the trainer returns for it.

    The model itself is passed to the registry in memory (TinyMF is not in the zoo's registry).
    """
    run_dir = root / f"bpr-{variant}-{len(list(root.glob('*')))}"
    run_dir.mkdir(parents=True)
    (run_dir / "scenario.yaml").write_text(
        "name: bpr-test\ncommands:\n  - init_model: {name: bpr, config: {embedding_dim: 8}}\n"
        "  - train: {epochs: 3}\n"
    )
    (run_dir / "metrics.json").write_text(json.dumps({"history": history}))
    return {
        "model": "bpr",
        "variant": variant,
        "metrics": {"ndcg_at_10": ndcg, "recall_at_10": ndcg / 2},
        "metrics_path": str(run_dir / "metrics.json"),
        "model_path": str(run_dir / "model.pt"),
        "scenario_path": str(run_dir / "scenario.yaml"),
        "run_dir": str(run_dir),
        "split": split,
        "profile_version": None,
        "seed": 0,
    }
