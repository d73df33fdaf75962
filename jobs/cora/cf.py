"""The frozen CF model CoRA reads: a ``ktrec train`` run folder, or (fallback) a BPR-MF trained here.

A ``ktrec train`` run folder holds ``model.json`` (name, config, id maps) and ``model.pt``; its
``metrics.json`` names the split it was trained on. That split should be the one the CoRA data was built
from, otherwise the CF model may have seen CoRA's test interactions: the mismatch is reported (and
logged as a warning), never hidden.

When no run is given, :func:`fallback_bpr` trains a BPR-MF (cf-zoo) on the CoRA table's own train rows
(the table doubles as a split table) for a fixed number of epochs. It is a clearly named fallback step,
reported as such in the job summary (``cf_source``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from jobs.core import lake
from jobs.core.settings import Settings
from jobs.train import run_folder
from models.cora.frozen_cf import FrozenCF, embeddings_of

log = logging.getLogger(__name__)


def from_run(settings: Settings, run_dir: Path, *, data_source: str) -> tuple[FrozenCF, dict]:
    """CF tables from a ``ktrec train`` run folder, and what is known about its provenance."""
    from models.data import load_split

    spec = run_folder.model_spec(run_dir)
    split = run_folder.trained_split(run_dir)
    model = run_folder.load_model(run_dir)
    data = None
    if hasattr(model, "setup") and split and lake.exists(settings, lake.split_table(split)):
        data = load_split(lake.table_path(settings, lake.split_table(split))).train
        model.setup(data)  # graph models rebuild their adjacency; sequential ones read sequences
    users, items = embeddings_of(model, data)
    info = {"cf_source": f"ktrec train run {run_dir}", "cf_model": spec["name"], "cf_split": split,
            "cf_split_matches_data": data_source == f"splits/{split}"}
    if not info["cf_split_matches_data"]:
        log.warning("CF run %s was trained on split %s but the CoRA data comes from %s: the CF model may "
                    "have seen CoRA's evaluation interactions", run_dir, split, data_source)
    cf = FrozenCF(user_ids=[str(u) for u in spec["user_ids"]], item_ids=[str(i) for i in spec["item_ids"]],
                  user_table=users, item_table=items, source=info["cf_source"])
    return cf, info


def fallback_bpr(table_dir: Path, *, dim: int = 64, epochs: int = 30, lr: float = 1e-3,
                 weight_decay: float = 1e-5, batch_size: int = 1024, seed: int = 2024) -> tuple[FrozenCF, dict]:
    """Train BPR-MF on the CoRA table's train rows and return its frozen tables (the fallback step)."""
    from models.batches import iter_batches
    from models.cf import build_model
    from models.data import load_split

    started = time.time()
    data = load_split(Path(table_dir)).train
    torch.manual_seed(seed)
    model = build_model("bpr", data.n_users, data.n_items, embedding_dim=dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    losses = []
    for epoch in range(epochs):
        total, steps = 0.0, 0
        for batch in iter_batches(data, kind="pairwise", batch_size=batch_size, seed=seed, epoch=epoch):
            loss = model.calculate_loss(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, steps = total + float(loss.detach()), steps + 1
        losses.append(round(total / max(steps, 1), 5))
    users, items = embeddings_of(model)
    info = {"cf_source": "fallback: BPR-MF trained by ktrec cora train on the CoRA table's train rows",
            "cf_model": "bpr", "cf_split": str(table_dir), "cf_split_matches_data": True,
            "cf_epochs": epochs, "cf_losses": losses, "cf_seconds": round(time.time() - started, 2)}
    log.info("fallback BPR-MF: %d users, %d items, loss %s -> %s", data.n_users, data.n_items, losses[0], losses[-1])
    cf = FrozenCF(user_ids=[str(u) for u in data.user_ids], item_ids=[str(i) for i in data.item_ids],
                  user_table=users, item_table=items, source=info["cf_source"])
    return cf, info
