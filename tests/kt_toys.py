"""Tiny CF models and data for the knowledge-transfer, scenario and trainer tests (not the real zoo)."""

from __future__ import annotations

from datetime import UTC

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from models.cf.base import Recommender, TrainData
from models.kt import ProfileTargets


class ToyMF(Recommender):
    """BPR matrix factorisation: the hooked embeddings are called with the batch's ids."""

    def __init__(self, n_users: int, n_items: int, embedding_size: int = 8) -> None:
        super().__init__(n_users, n_items)
        self.user_embedding = nn.Embedding(n_users, embedding_size)
        self.item_embedding = nn.Embedding(n_items, embedding_size)
        self.head = nn.Linear(embedding_size, embedding_size)

    def calculate_loss(self, batch):
        u = self.head(self.user_embedding(batch["user"]))
        pos, neg = self.item_embedding(batch["pos_item"]), self.item_embedding(batch["neg_item"])
        return -F.logsigmoid((u * pos).sum(-1) - (u * neg).sum(-1)).mean()

    def predict(self, batch):
        return (self.head(self.user_embedding(batch["user"])) * self.item_embedding(batch["pos_item"])).sum(-1)

    def full_sort_predict(self, batch):
        return self.head(self.user_embedding(batch["user"])) @ self.item_embedding.weight.T


class Propagate(nn.Module):
    """One mean-aggregation step over the user-item graph; returns the full (users, items) tables."""

    def __init__(self) -> None:
        super().__init__()
        self.adj: torch.Tensor | None = None

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        both = torch.cat([users, items])
        out = (both + torch.sparse.mm(self.adj, both)) / 2
        return out[: len(users)], out[len(users):]


class ToyGraph(Recommender):
    """LightGCN-like: the propagation module outputs all users and all items at once."""

    def __init__(self, n_users: int, n_items: int, embedding_size: int = 8) -> None:
        super().__init__(n_users, n_items)
        self.user_embedding = nn.Embedding(n_users, embedding_size)
        self.item_embedding = nn.Embedding(n_items, embedding_size)
        self.propagate = Propagate()

    def setup(self, data: TrainData) -> None:
        n = self.n_users + self.n_items
        coo = data.train.tocoo()
        rows = np.concatenate([coo.row, coo.col + self.n_users])
        cols = np.concatenate([coo.col + self.n_users, coo.row])
        adj = sp.coo_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n)).tocsr()
        deg = np.asarray(adj.sum(1)).ravel().clip(min=1)
        adj = sp.diags(1 / deg) @ adj
        adj = adj.tocoo()
        self.propagate.adj = torch.sparse_coo_tensor(np.vstack([adj.row, adj.col]), adj.data.astype(np.float32),
                                                     (n, n)).coalesce()

    def _tables(self):
        return self.propagate(self.user_embedding.weight, self.item_embedding.weight)

    def calculate_loss(self, batch):
        users, items = self._tables()
        u = users[batch["user"]]
        return -F.logsigmoid((u * items[batch["pos_item"]]).sum(-1) - (u * items[batch["neg_item"]]).sum(-1)).mean()

    def predict(self, batch):
        users, items = self._tables()
        return (users[batch["user"]] * items[batch["pos_item"]]).sum(-1)

    def full_sort_predict(self, batch):
        users, items = self._tables()
        return users[batch["user"]] @ items.T


TOY_MODELS = {"toymf": ToyMF, "toygraph": ToyGraph}


def toy_train(n_users: int = 30, n_items: int = 40, per_user: int = 6, seed: int = 0) -> TrainData:
    """Random implicit interactions with a block structure (two taste groups), so there is signal."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for u in range(n_users):
        pool = np.arange(n_items // 2) + (n_items // 2 if u % 2 else 0)
        rows += [u] * per_user
        cols += list(rng.choice(pool, per_user, replace=False))
    train = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    seqs = [np.array(cols[u * per_user:(u + 1) * per_user]) for u in range(n_users)]
    return TrainData(np.array([f"u{u}" for u in range(n_users)]), np.array([f"i{i}" for i in range(n_items)]),
                     train, seqs)


def toy_profiles(n: int, dim: int = 16, seed: int = 1, groups: bool = True) -> ProfileTargets:
    """Profile vectors; with ``groups`` they encode the entity's parity (the toy data's taste group)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(2, dim)) if groups else None
    emb = np.stack([base[i % 2] + 0.1 * rng.normal(size=dim) if groups else rng.normal(size=dim) for i in range(n)])
    return ProfileTargets(torch.tensor(emb, dtype=torch.float32), torch.ones(n, dtype=torch.bool))


def write_toy_split(settings, name: str = "toy", n_users: int = 30, n_items: int = 40, per_user: int = 8):
    """A tiny split table in the lake (SPLIT_COLUMNS + meta.json): each user's last two events are
    valid and test. Returns the table path."""
    import json
    from datetime import datetime, timedelta

    import pandas as pd

    from jobs.core.lake import publish, split_table, staging_dir

    data = toy_train(n_users, n_items, per_user)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = []
    for u, seq in enumerate(data.sequences):
        for pos, item in enumerate(seq):
            split = "train" if pos < per_user - 2 else ("valid" if pos == per_user - 2 else "test")
            rows.append((f"u{u}", f"i{item}", 4.0, start + timedelta(hours=u * per_user + pos), split))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "event_ts", "split"])
    frame["event_ts"] = frame["event_ts"].astype("datetime64[us, UTC]")
    staged = staging_dir(settings, split_table(name))
    staged.mkdir(parents=True)
    frame.to_parquet(staged / "part-0.parquet", index=False)
    counts = frame["split"].value_counts().to_dict()
    meta = {"name": name, "strategy": "loo", "seed": 0, "k_core": 0, "min_rating": None,
            "counts": {**counts, "users": n_users, "items": n_items},
            "train_end": frame.loc[frame["split"] == "train", "event_ts"].max().isoformat()}
    (staged / "meta.json").write_text(json.dumps(meta))
    return publish(settings, split_table(name), staged)


def write_toy_profiles(settings, *, entity: str, rows: list[tuple[str, list[float], str, str]]):
    """A profile table (PROFILE_COLUMNS) from (entity_id, embedding, generator, event_timestamp ISO) rows."""
    from datetime import datetime

    import pandas as pd

    from jobs.core.lake import ITEM_PROFILES, USER_PROFILES, publish, staging_dir

    name = USER_PROFILES if entity == "user" else ITEM_PROFILES
    frame = pd.DataFrame({
        "entity_id": [r[0] for r in rows], "profile_text": [f"profile of {r[0]}" for r in rows],
        "embedding": [list(map(float, r[1])) for r in rows], "source_hash": ["h"] * len(rows),
        "generator": [r[2] for r in rows], "event_timestamp": pd.to_datetime([r[3] for r in rows], utc=True),
        "created_timestamp": [datetime(2025, 1, 1, tzinfo=UTC)] * len(rows),
    })
    for col in ("event_timestamp", "created_timestamp"):
        frame[col] = frame[col].astype("datetime64[us, UTC]")
    staged = staging_dir(settings, name)
    staged.mkdir(parents=True)
    frame.to_parquet(staged / "part-0.parquet", index=False)
    return publish(settings, name, staged)
