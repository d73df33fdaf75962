"""AUC and UAUC of CoRA and its baselines on the warm, cold and all test examples.

The metric functions are the shared evaluator's (models.metrics); this module only slices the examples.
A slice whose labels are all one class (or with no user holding both classes, for UAUC) has no value:
it is reported as ``None`` with its size, never as a made-up number.
"""

from __future__ import annotations

import numpy as np

from models.metrics import auc, uauc

SLICES = ("all", "warm", "cold")


def slice_metrics(*, users: np.ndarray, labels: np.ndarray, scores: np.ndarray, cold: np.ndarray) -> dict:
    """``{slice: {"n", "positives", "auc", "uauc"}}`` for slices all / warm / cold."""
    users, labels, scores, cold = map(np.asarray, (users, labels, scores, cold))
    out = {}
    for name, rows in (("all", np.ones(len(labels), bool)), ("warm", ~cold), ("cold", cold)):
        y = labels[rows].astype(bool)
        out[name] = {"n": int(rows.sum()), "positives": int(y.sum()),
                     "auc": _or_none(auc, y, scores[rows]), "uauc": _or_none(uauc, users[rows], y, scores[rows])}
    return out


def _or_none(metric, *args) -> float | None:
    try:
        return round(float(metric(*args)), 6)
    except ValueError:  # one class only: the metric is undefined on this slice
        return None


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def calibrate(train_scores: np.ndarray, train_labels: np.ndarray):
    """A 1-d logistic fit of labels on raw scores; returns ``scores -> probabilities``.

    Falls back to a plain sigmoid when the training labels hold one class only.
    """
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(train_labels).astype(int)
    if len(np.unique(y)) < 2:
        return sigmoid
    fit = LogisticRegression().fit(np.asarray(train_scores, dtype=np.float64).reshape(-1, 1), y)
    return lambda s: fit.predict_proba(np.asarray(s, dtype=np.float64).reshape(-1, 1))[:, 1]
