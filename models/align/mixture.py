"""A task mixture under a sample budget: which training samples a system is tuned on.

``weights`` maps task -> relative weight (tasks absent or weighted 0 are left out). The budget ``n`` is split
into per-task quotas proportional to the weights (largest remainders, ties by task name); each task's quota
is drawn without replacement by a seeded generator; a task with fewer samples than its quota gives all it
has and the shortfall goes, in the same proportions, to the tasks that still have samples. So two systems
with the same ``n`` are tuned on the same number of samples (the same budget) whatever their mixture.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

REC_ONLY = {"retrieval": 1.0, "ranking": 1.0, "rating": 1.0}
REC_AND_AUX = REC_ONLY | {"mim": 1.0, "mlm": 1.0, "bpr": 1.0}


def quotas(weights: dict[str, float], available: dict[str, int], n: int) -> dict[str, int]:
    """Per-task sample counts summing to ``min(n, what the weighted tasks hold)``."""
    if n < 0 or any(w < 0 for w in weights.values()):
        raise ValueError(f"the budget and the weights must be >= 0: {n}, {weights}")
    left = {t: int(available.get(t, 0)) for t, w in sorted(weights.items()) if w > 0 and available.get(t, 0) > 0}
    out = {t: 0 for t in left}
    budget = min(n, sum(left.values()))
    while budget > 0 and left:
        total = sum(weights[t] for t in left)
        share = {t: budget * weights[t] / total for t in left}
        alloc = {t: int(share[t]) for t in left}
        rest = budget - sum(alloc.values())  # the rounding remainder: largest fractional parts first
        for t in sorted(left, key=lambda t: (-(share[t] - int(share[t])), t))[:rest]:
            alloc[t] += 1
        give = {t: min(alloc[t], left[t]) for t in left}  # a task that runs short leaves the rest to the next round
        for t, g in give.items():
            out[t] += g
            left[t] -= g
        budget -= sum(give.values())
        left = {t: v for t, v in left.items() if v > 0}
    return out


def draw(samples: pd.DataFrame, weights: dict[str, float], n: int, *, seed: int) -> pd.DataFrame:
    """``n`` training samples (column ``task``) by the mixture, in a seeded shuffled order."""
    counts = samples["task"].value_counts().to_dict()
    rng = np.random.default_rng(seed)
    parts = []
    for task, q in quotas(weights, counts, n).items():
        rows = samples[samples["task"] == task].sort_values("user_id", kind="stable")
        parts.append(rows.iloc[np.sort(rng.choice(len(rows), size=q, replace=False))])
    if not parts:
        raise ValueError(f"no training samples for the mixture {weights}")
    chosen = pd.concat(parts)
    return chosen.iloc[rng.permutation(len(chosen))].reset_index(drop=True)
