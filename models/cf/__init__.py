"""The CF model zoo. ``MODELS`` maps each name used in scenarios and the CLI to its class.

Every model takes ``(n_users, n_items, **config)`` where ``config`` are the fields of its dataclass
``config_class`` (validated in ``__post_init__``); each model file's docstring lists its hook points.
"""

from __future__ import annotations

from dataclasses import asdict

from models.cf.base import Recommender, TrainData
from models.cf.bpr import BPRMF
from models.cf.lightgcn import LightGCN
from models.cf.multvae import MultVAE
from models.cf.neumf import NeuMF
from models.cf.sasrec import SASRec
from models.cf.simplex import SimpleX

MODELS: dict[str, type[Recommender]] = {
    "bpr": BPRMF,
    "neumf": NeuMF,
    "lightgcn": LightGCN,
    "multvae": MultVAE,
    "simplex": SimpleX,
    "sasrec": SASRec,
}

__all__ = ["MODELS", "Recommender", "TrainData", "build_model", "model_config"]


def build_model(name: str, n_users: int, n_items: int, **config) -> Recommender:
    """Instantiate ``MODELS[name]``; unknown names or config keys raise ValueError listing the choices."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    if n_users < 1 or n_items < 1:
        raise ValueError(f"a model needs at least one user and one item, got {n_users} users, {n_items} items")
    return MODELS[name](n_users, n_items, **config)


def model_config(model: Recommender) -> dict:
    """The model's full config (defaults included) as a plain dict, e.g. for logging a run."""
    return asdict(model.config)
