"""The one evaluator for every CF model and LLM recommender, plus AUC/UAUC and paired significance tests.

``evaluate`` ranks, for each user with targets, either **all** items (``protocol="full"``, the default)
or the user's targets plus ``N`` random negatives (``protocol="sampled-N"``, the LLM-KT authors'
protocol, seeded per user so it does not depend on the batch size). Items in the mask (what the user
already has: train for valid, train + valid for test) are never ranked. Metrics at each k:

- ``recall`` = hits in top-k / |targets|;  ``hr`` = 1 if any hit in top-k;
- ``ndcg`` = sum over hits of 1/log2(rank + 1) divided by the ideal DCG of min(|targets|, k) hits;
- ``mrr`` = 1 / rank of the first hit within top-k (0 if none).

Metric keys are MLflow-safe (``ndcg_at_10``); a sampled protocol prefixes them (``sampled100_ndcg_at_10``)
and every dict from :class:`EvalResult` carries ``protocol``, so a sampled figure can never pass as a full
one. Per-user values stay aligned with ``EvalResult.users`` for paired significance tests.

``evaluate_candidates`` applies the same metrics to a fixed candidate list per user (LLM recommenders such as
DELRec rank the true next item among 20 candidates): ``protocol="candidates-<C>"``, keys
``candidates20_hr_at_1``. ``mcnemar`` compares two systems' per-user hits (exact binomial test); ``holm``
corrects a family of p-values for multiple comparisons and ``min_detectable_effect`` states a paired test's power.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy import stats

from models.cf.base import Recommender, TrainData
from models.sequences import pad_histories

METRICS = ("recall", "ndcg", "hr", "mrr")


@dataclass
class EvalResult:
    protocol: str  # "full" or "sampled-<N>"
    ks: tuple[int, ...]
    users: np.ndarray  # [U] evaluated user indices
    per_user: dict[str, np.ndarray]  # metric key -> [U], aligned with users

    @property
    def metrics(self) -> dict[str, float]:
        """Mean over users, keyed ``<prefix><metric>_at_<k>``."""
        return {key: float(values.mean()) if len(values) else 0.0 for key, values in self.per_user.items()}

    def to_dict(self) -> dict:
        return {"protocol": self.protocol, "n_users": len(self.users), "metrics": self.metrics}


def metric_key(metric: str, k: int, protocol: str = "full") -> str:
    prefix = "" if protocol == "full" else protocol.replace("-", "") + "_"
    return f"{prefix}{metric}_at_{k}"


@torch.no_grad()
def evaluate(
    model: Recommender, data: TrainData, targets: dict[int, np.ndarray], mask: sp.csr_matrix, *,
    ks: Sequence[int] = (5, 10, 20), sampled_negatives: int | None = None, seed: int = 0,
    batch_size: int = 1024, histories: list[np.ndarray] | None = None,
) -> EvalResult:
    """Rank items for every user in ``targets``; see the module docstring for the protocol and metrics.

    ``data`` gives the item count (and, for sequential models, the default histories: train sequences;
    pass ``histories=split.histories("test")`` when evaluating test so valid items are in the history).
    """
    ks = tuple(sorted({int(k) for k in ks}))
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    if sampled_negatives is not None and sampled_negatives < 1:
        raise ValueError("sampled_negatives must be a positive integer or None")
    protocol = "full" if sampled_negatives is None else f"sampled-{sampled_negatives}"
    n_items = data.n_items
    mask = mask.tocsr()
    users = np.array(sorted(u for u, t in targets.items() if len(t)), dtype=np.int64)
    histories = histories if histories is not None else data.sequences
    was_training = model.training
    model.eval()
    chunks: list[np.ndarray] = []
    try:
        for start in range(0, len(users), batch_size):
            batch_users = users[start:start + batch_size]
            batch = {"user": torch.from_numpy(batch_users)}
            if model.sequential:
                batch["history"], batch["history_len"] = pad_histories(histories, batch_users, model.max_len)
            scores = model.full_sort_predict(batch).float().cpu().numpy()
            target_rows = _dense_rows(batch_users, targets, n_items)
            allowed = ~(mask[batch_users].toarray() > 0)
            if sampled_negatives is not None:
                allowed = _sampled_candidates(batch_users, allowed, target_rows, sampled_negatives, seed)
            chunks.append(_rank_metrics(scores, allowed, target_rows, ks))
    finally:
        model.train(was_training)
    values = np.concatenate(chunks) if chunks else np.zeros((0, len(METRICS) * len(ks)))
    keys = [metric_key(m, k, protocol) for m in METRICS for k in ks]
    return EvalResult(protocol=protocol, ks=ks, users=users, per_user=dict(zip(keys, values.T, strict=False)))


def evaluate_split(model: Recommender, split, which: str = "test", **kwargs) -> EvalResult:
    """``evaluate`` on ``split`` (a models.data.SplitData) for ``which`` in valid|test with its own mask
    and histories; keyword arguments (ks, sampled_negatives, seed, batch_size) pass through."""
    return evaluate(
        model, split.train, split.targets(which), split.mask(which), histories=split.histories(which), **kwargs
    )


def evaluate_candidates(
    scores: np.ndarray, targets: np.ndarray, *, ks: Sequence[int] = (1, 5), users: np.ndarray | None = None,
) -> EvalResult:
    """Metrics of ranking each row's candidates by ``scores`` [U, C] (``-inf`` = no such candidate) when
    ``targets`` [U] is the index of the true candidate. Ties keep candidate order (rank by ``torch.topk``)."""
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    if scores.ndim != 2 or targets.shape != (scores.shape[0],):
        raise ValueError(f"scores must be [U, C] and targets [U], got {scores.shape} and {targets.shape}")
    if len(targets) and not ((targets >= 0) & (targets < scores.shape[1])).all():
        raise ValueError("every target must index one of its row's candidates")
    ks = tuple(sorted({int(k) for k in ks}))
    protocol = f"candidates-{scores.shape[1]}"
    allowed = np.isfinite(scores)
    if len(targets) and not allowed[np.arange(len(targets)), targets].all():
        raise ValueError("a target candidate has no finite score")
    target_rows = np.zeros(scores.shape, dtype=bool)
    target_rows[np.arange(len(targets)), targets] = True
    values = (_rank_metrics(scores, allowed, target_rows, ks) if len(targets)
              else np.zeros((0, len(METRICS) * len(ks))))
    keys = [metric_key(m, k, protocol) for m in METRICS for k in ks]
    users = np.arange(len(targets)) if users is None else np.asarray(users)
    return EvalResult(protocol=protocol, ks=ks, users=users, per_user=dict(zip(keys, values.T, strict=False)))


def mcnemar(a_hits: np.ndarray, b_hits: np.ndarray) -> dict[str, float]:
    """Exact McNemar test of paired 0/1 outcomes (same users, same order): ``a_only`` users where only A hit,
    ``b_only`` where only B did; two-sided p = P(Binomial(a_only + b_only, 1/2) as extreme)."""
    a, b = np.asarray(a_hits).astype(bool), np.asarray(b_hits).astype(bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"mcnemar needs two 1-d arrays of equal length, got {a.shape} and {b.shape}")
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    n = a_only + b_only
    p = 1.0 if n == 0 else float(stats.binomtest(a_only, n, 0.5).pvalue)
    return {"a_only": a_only, "b_only": b_only, "p": p, "n": len(a),
            "diff": float(a.mean() - b.mean()) if len(a) else 0.0}


def _dense_rows(users: np.ndarray, targets: dict[int, np.ndarray], n_items: int) -> np.ndarray:
    rows = np.zeros((len(users), n_items), dtype=bool)
    for row, user in enumerate(users):
        rows[row, targets[int(user)]] = True
    return rows


def _sampled_candidates(
    users: np.ndarray, allowed: np.ndarray, target_rows: np.ndarray, n: int, seed: int
) -> np.ndarray:
    """Targets plus ``n`` negatives drawn without replacement from the allowed non-targets, per user."""
    candidates = target_rows.copy()
    for row, user in enumerate(users):
        pool = np.flatnonzero(allowed[row] & ~target_rows[row])
        rng = np.random.default_rng([seed, int(user)])
        candidates[row, rng.choice(pool, size=min(n, len(pool)), replace=False)] = True
    return candidates & allowed


def _rank_metrics(scores: np.ndarray, allowed: np.ndarray, target_rows: np.ndarray, ks: tuple[int, ...]) -> np.ndarray:
    """[B, len(METRICS) * len(ks)] per-user values, metric-major (recall@k..., ndcg@k..., ...)."""
    kmax = min(ks[-1], scores.shape[1])
    scores = np.where(allowed, scores, -np.inf)
    top = torch.topk(torch.from_numpy(scores), kmax, dim=1).indices.numpy()
    top_allowed = np.take_along_axis(allowed, top, axis=1)  # fewer allowed items than k: no hit there
    hits = np.take_along_axis(target_rows & allowed, top, axis=1) & top_allowed
    n_targets = (target_rows & allowed).sum(axis=1)
    discounts = 1.0 / np.log2(np.arange(2, kmax + 2))
    first_hit = np.where(hits.any(axis=1), hits.argmax(axis=1), kmax)
    columns: dict[str, list[np.ndarray]] = {m: [] for m in METRICS}
    for k in ks:
        kk = min(k, kmax)
        hit_k = hits[:, :kk]
        ideal = np.cumsum(discounts)[np.clip(np.minimum(n_targets, kk) - 1, 0, None)]
        columns["recall"].append(hit_k.sum(axis=1) / np.maximum(n_targets, 1))
        columns["ndcg"].append((hit_k * discounts[:kk]).sum(axis=1) / ideal)  # 0 when no targets
        columns["hr"].append(hit_k.any(axis=1).astype(float))
        columns["mrr"].append(np.where(first_hit < kk, 1.0 / (first_hit + 1), 0.0))
    return np.stack([col for m in METRICS for col in columns[m]], axis=1)


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney, ties count one half); needs both classes."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("auc needs at least one positive and one negative label")
    ranks = stats.rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def uauc(users: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> float:
    """Per-user AUC averaged over the users that have both a positive and a negative label."""
    users, labels, scores = np.asarray(users), np.asarray(labels).astype(bool), np.asarray(scores)
    order = np.argsort(users, kind="stable")
    bounds = np.flatnonzero(users[order][1:] != users[order][:-1]) + 1
    per_user = []
    for rows in np.split(order, bounds):
        if labels[rows].any() and not labels[rows].all():
            per_user.append(auc(labels[rows], scores[rows]))
    if not per_user:
        raise ValueError("uauc needs at least one user with both positive and negative labels")
    return float(np.mean(per_user))


def paired_ttest(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Paired t-test of per-user values ``a`` vs ``b`` (same users, same order): mean difference, t, p."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"paired_ttest needs two 1-d arrays of equal length >= 2, got {a.shape} and {b.shape}")
    result = stats.ttest_rel(a, b)
    return {"mean_diff": float((a - b).mean()), "t": float(result.statistic), "p": float(result.pvalue), "n": len(a)}


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input order: the i-th smallest of m is multiplied by m - i
    (i from 0), made non-decreasing along that order and capped at 1. NaN stays NaN and does not count in m."""
    p = np.asarray(pvalues, dtype=np.float64)
    known = np.flatnonzero(~np.isnan(p))
    out = np.full(len(p), np.nan)
    running = 0.0
    for rank, i in enumerate(known[np.argsort(p[known], kind="stable")]):
        running = max(running, (len(known) - rank) * p[i])
        out[i] = min(1.0, running)
    return out.tolist()


def min_detectable_effect(diff_sd: float, n: int, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest mean paired difference a two-sided paired t-test at ``alpha`` detects with ``power``
    (normal approximation): (z_{1-α/2} + z_{power}) · sd(difference) / √n."""
    if n < 2:
        return float("nan")
    return float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * diff_sd / np.sqrt(n))


def evaluate_top_lists(top: Sequence[Sequence[int]], targets: np.ndarray, n_items: int, *,
                       ks: Sequence[int] = (5, 10)) -> EvalResult:
    """Full-ranking metrics from each user's retrieved list (item indices, best first, already without the
    user's masked items) against one target item index per user: an item outside the list is not retrieved.
    The protocol is ``full``: the lists were drawn from every item of the catalogue."""
    targets = np.asarray(targets, dtype=np.int64)
    if len(top) != len(targets):
        raise ValueError(f"one list per target needed, got {len(top)} lists and {len(targets)} targets")
    ks = tuple(sorted({int(k) for k in ks}))
    scores = np.full((len(targets), n_items), -np.inf)
    for row, items in enumerate(top):
        items = np.asarray(items, dtype=np.int64)
        if len(set(items.tolist())) != len(items) or ((items < 0) | (items >= n_items)).any():
            raise ValueError(f"list {row} repeats an item or holds an index outside 0..{n_items - 1}")
        scores[row, items] = -np.arange(len(items), dtype=np.float64)
    target_rows = np.zeros(scores.shape, dtype=bool)
    target_rows[np.arange(len(targets)), targets] = True
    # Only retrieved items are ranked; a target outside its list counts as no hit at any k.
    values = (_rank_metrics(scores, np.isfinite(scores), target_rows, ks) if len(targets)
              else np.zeros((0, len(METRICS) * len(ks))))
    keys = [metric_key(m, k) for m in METRICS for k in ks]
    return EvalResult(protocol="full", ks=ks, users=np.arange(len(targets)),
                      per_user=dict(zip(keys, values.T, strict=False)))


def rating_errors(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """RMSE and MAE of predicted against actual ratings (and the per-user squared / absolute errors' n)."""
    predicted, actual = np.asarray(predicted, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    if predicted.shape != actual.shape or predicted.ndim != 1 or not len(actual):
        raise ValueError(f"rating_errors needs two equal non-empty 1-d arrays, got {predicted.shape}, {actual.shape}")
    error = predicted - actual
    return {"rmse": float(np.sqrt((error ** 2).mean())), "mae": float(np.abs(error).mean()), "n": len(actual)}
