"""Pure Spark transforms behind ``ktrec split``: filters, then one of three leakage-free split strategies.

Every function is ``DataFrame -> DataFrame`` over (user_id, item_id, rating, event_ts), deterministic for a
given input whatever the Spark partitioning: orderings break timestamp ties on the ids, and the random
split hashes the event key with the seed instead of calling ``rand()``.
"""

from __future__ import annotations

import logging

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, Window

log = logging.getLogger(__name__)

TRAIN, VALID, TEST = "train", "valid", "test"
STRATEGIES = ("loo", "temporal", "random")
# Global temporal and random splits: train / valid / test shares.
TRAIN_SHARE, VALID_SHARE = 0.8, 0.1
# Random split resolution: the hash is reduced to a bucket in [0, BUCKETS).
BUCKETS = 1_000_000
MAX_KCORE_ROUNDS = 1000


def latest_per_pair(events: DataFrame) -> DataFrame:
    """Collapse repeated (user, item) interactions to the latest one (a re-rating replaces the old one)."""
    latest_first = Window.partitionBy("user_id", "item_id").orderBy(
        F.col("event_ts").desc(), F.col("rating").desc_nulls_last()
    )
    return events.withColumn("_n", F.row_number().over(latest_first)).where(F.col("_n") == 1).drop("_n")


def keep_positives(events: DataFrame, *, min_rating: float) -> DataFrame:
    """Implicit positives: rating >= ``min_rating`` (unrated events are dropped too)."""
    return events.where(F.col("rating") >= F.lit(min_rating))


def k_core(events: DataFrame, *, k: int) -> DataFrame:
    """The largest subset in which every user and every item has at least ``k`` interactions."""
    current = events.localCheckpoint()  # each round reads the previous one; cut the growing lineage
    rows = current.count()
    for round_ in range(1, MAX_KCORE_ROUNDS + 1):
        users = current.groupBy("user_id").count().where(F.col("count") >= k).select("user_id")
        items = current.groupBy("item_id").count().where(F.col("count") >= k).select("item_id")
        kept = (
            current.join(users, on="user_id", how="left_semi").join(items, on="item_id", how="left_semi")
        ).localCheckpoint()
        kept_rows = kept.count()
        log.info("k-core %d round %d: %d -> %d rows", k, round_, rows, kept_rows)
        if kept_rows == rows:
            return kept
        current, rows = kept, kept_rows
    raise RuntimeError(f"k-core filter did not converge in {MAX_KCORE_ROUNDS} rounds")


def leave_last_out(events: DataFrame) -> DataFrame:
    """Per user: last event -> test, second last -> valid, the rest -> train; < 3 events: all train."""
    by_user = Window.partitionBy("user_id")
    newest_first = by_user.orderBy(F.col("event_ts").desc(), F.col("item_id").desc())
    ranked = events.withColumn("_rank", F.row_number().over(newest_first)).withColumn(
        "_n", F.count(F.lit(1)).over(by_user)
    )
    split = (
        F.when(F.col("_n") < 3, TRAIN).when(F.col("_rank") == 1, TEST).when(F.col("_rank") == 2, VALID)
        .otherwise(TRAIN)
    )
    return ranked.withColumn("split", split).drop("_rank", "_n")


def temporal_cut(events: DataFrame) -> DataFrame:
    """Global cut at the 80% and 90% time quantiles: valid and test are strictly later than all of train."""
    micros = F.unix_micros("event_ts")
    train_end, valid_end = events.select(micros.cast("double").alias("us")).approxQuantile(
        "us", [TRAIN_SHARE, TRAIN_SHARE + VALID_SHARE], 0.0  # exact quantiles: deterministic
    )
    split = F.when(micros <= train_end, TRAIN).when(micros <= valid_end, VALID).otherwise(TEST)
    return events.withColumn("split", split)


def random_split(events: DataFrame, *, seed: int) -> DataFrame:
    """80/10/10 by a hash of the event key and the seed: the same rows land in the same split every run."""
    digest = F.xxhash64("user_id", "item_id", F.unix_micros("event_ts"), F.lit(seed))
    share = F.pmod(digest, F.lit(BUCKETS)) / BUCKETS
    split = F.when(share < TRAIN_SHARE, TRAIN).when(share < TRAIN_SHARE + VALID_SHARE, VALID).otherwise(TEST)
    return events.withColumn("split", split)


def split_events(events: DataFrame, *, strategy: str, seed: int) -> DataFrame:
    if strategy == "loo":
        return leave_last_out(events)
    if strategy == "temporal":
        return temporal_cut(events)
    if strategy == "random":
        return random_split(events, seed=seed)
    raise ValueError(f"unknown split strategy {strategy!r}; choose one of {list(STRATEGIES)}")


def drop_cold(split: DataFrame) -> DataFrame:
    """Drop valid/test rows whose user or item never occurs in train: no CF model can rank them."""
    train = split.where(F.col("split") == TRAIN)
    held_out = (
        split.where(F.col("split") != TRAIN)
        .join(train.select("user_id").distinct(), on="user_id", how="left_semi")
        .join(train.select("item_id").distinct(), on="item_id", how="left_semi")
    )
    return train.unionByName(held_out)
