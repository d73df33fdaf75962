"""Score a registered model on a split's test set through its pyfunc (full ranking, NDCG@10).

Used by the promotion gate when the champion was evaluated on an older split: both sides must be
measured on the same test users and items. The model's own training mask is switched off and the
split's training items are excluded instead (the masking the trainer's evaluator applies), so the model
is asked for enough extra items to fill ten slots after filtering.
"""

from __future__ import annotations

import math

import pandas as pd

from jobs.core.settings import Settings


def read_split(settings: Settings, split: str) -> pd.DataFrame:
    """The split table (``user_id, item_id, rating, event_ts, split``) as pandas."""
    from jobs.core.lake import read_frame, split_table

    return read_frame(settings, split_table(split), columns=["user_id", "item_id", "split"])


def ndcg_at_k(ranked: list[str], relevant: set[str], k: int = 10) -> float:
    """Binary-relevance NDCG@k of one ranked list."""
    dcg = sum(1.0 / math.log2(rank + 2) for rank, item in enumerate(ranked[:k]) if item in relevant)
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(k, len(relevant))))
    return dcg / ideal if ideal else 0.0


def ndcg_on_split(settings: Settings, *, model_uri: str, split: str, k: int = 10) -> float:
    """Mean NDCG@k over the split's test users for the pyfunc at ``model_uri``."""
    import mlflow.pyfunc

    from jobs.registry.tracking import client

    client(settings)  # points the fluent API at the settings' registry
    frame = read_split(settings, split)
    frame = frame.astype({"user_id": str, "item_id": str})
    train = frame[frame["split"] == "train"]
    # As the trainer's evaluator: test ranks against everything but train + valid; targets whose user
    # or item never occurs in train (unscorable) or that repeat a known item are dropped.
    known = frame[frame["split"].isin(["train", "valid"])].groupby("user_id")["item_id"].apply(set)
    test_rows = frame[
        (frame["split"] == "test")
        & frame["user_id"].isin(set(train["user_id"]))
        & frame["item_id"].isin(set(train["item_id"]))
    ]
    test_rows = test_rows[
        [i not in known.get(u, ()) for u, i in zip(test_rows["user_id"], test_rows["item_id"], strict=True)]
    ]
    test = test_rows.groupby("user_id")["item_id"].apply(set)
    if test.empty:
        raise ValueError(f"split {split!r} has no test rows")
    depth = k + int(max((len(known.get(u, ())) for u in test.index), default=0))
    model = mlflow.pyfunc.load_model(model_uri)
    answers = model.predict(
        pd.DataFrame({"user_id": list(test.index)}), params={"k": depth, "exclude_seen": False}
    )
    scores = []
    for user, items in zip(answers["user_id"], answers["item_ids"], strict=True):
        seen = known.get(user, set())
        ranked = [i for i in list(items) if i not in seen][:k]
        scores.append(ndcg_at_k(ranked, test[user], k))
    return float(sum(scores) / len(scores))
