"""Sampled candidates for DELRec's prompts: per user, a seeded list of items the user never interacted with.

The universe is every titled item that occurs in the split's training rows: what the teacher (and the LLM)
can know, so an item the teacher never saw can never be a giveaway "not the answer". The universe is put in
one seeded random order (by ``xxhash64(item_id, seed)``); each user starts reading at a seeded offset and
reads ``need + (the user's item count) + MARGIN`` consecutive positions (wrapping), then drops the items it
interacted with, matched by title so a second catalogue entry of a seen title counts as seen, and repeated
titles. At least ``need`` remain unless the universe itself is too small, in which case the prompts that
come up short are skipped by the caller and counted. Deterministic for a seed whatever the partitioning,
and linear in users (no users x items cross join). Positions ``r`` count from 1 in reading order; callers
cut disjoint ranges, so no two prompts of a user share a sampled item.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

MARGIN = 16  # extra positions read per user, for repeated titles


def universe(items: DataFrame, train_rows: DataFrame, *, seed: int) -> DataFrame:
    """``item_id, title, title_key, pos`` (0..n-1 in a seeded random order) of the titled training items."""
    known = train_rows.select("item_id").distinct()
    titled = items.where(F.col("title").isNotNull()).join(known, on="item_id", how="inner")
    order = Window.orderBy(F.xxhash64("item_id", F.lit(seed)), "item_id")
    return titled.select("item_id", "title", "title_key", (F.row_number().over(order) - 1).alias("pos"))


def ranked(users: DataFrame, seen: DataFrame, pool: DataFrame, *, need: int, seed: int) -> DataFrame:
    """``user_id, r, item_id, title, title_key``: each user's unseen, distinct-title items, ``r`` = 1, 2, ...

    ``users``: ``user_id, n_items``; ``seen``: ``user_id, title_key`` of everything the user interacted with;
    ``pool``: :func:`universe`.
    """
    size = pool.count()
    if size == 0:
        raise ValueError("no titled item occurs in the split's training rows: no candidates can be drawn")
    reads = F.least(F.lit(size), F.col("n_items") + F.lit(need + MARGIN))
    offset = F.pmod(F.xxhash64("user_id", F.lit(seed)), F.lit(size))
    walk = users.select("user_id", offset.alias("offset"), F.explode(F.sequence(F.lit(0), reads - 1)).alias("k"))
    walk = walk.select("user_id", "k", F.pmod(F.col("offset") + F.col("k"), F.lit(size)).alias("pos"))
    drawn = walk.join(F.broadcast(pool), on="pos", how="inner").join(seen, on=["user_id", "title_key"],
                                                                      how="left_anti")
    first_of_title = Window.partitionBy("user_id", "title_key").orderBy("k")
    distinct = drawn.withColumn("_n", F.row_number().over(first_of_title)).where(F.col("_n") == 1)
    by_user = Window.partitionBy("user_id").orderBy("k")
    return distinct.select("user_id", F.row_number().over(by_user).alias("r"), "item_id", "title", "title_key")
