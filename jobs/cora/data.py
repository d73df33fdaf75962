"""Builds CoRA's Yes/No prompt dataset from the lake, as the table ``cora/<name>``.

One example per rated interaction (user, target item, time t): the prompt lists the titles of the items
the user rated at or above ``threshold`` strictly before t (the latest ``max_history``, oldest first) and
the target's title, and asks whether the user will enjoy it; the label is ``rating >= threshold``.
Splits are time-ordered: the interactions' own event-time quantiles (train up to the
``1 - valid_frac - test_frac`` quantile, then valid, then test), or the split column of an existing
``splits/<name>`` table. ``warm_user`` / ``warm_item`` say whether the user / item occurs in the train
split (what the CF model can know); ``cold`` = not both.

With the default ``min_history=0`` the table holds every rated event, so it is also a valid split table
(SPLIT_COLUMNS + meta.json with ``train_end``) that ``models.data.load_split`` reads to train the CF
model on exactly CoRA's training events; trainers filter examples by ``n_history`` themselves.

Run: ``ktrec cora data --name ml100k [--split NAME] [--threshold 4]``. The transforms are pure
``DataFrame -> DataFrame`` functions; :func:`run` does the I/O and publishes atomically.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.core import lake
from jobs.core.settings import Settings
from jobs.core.spark import get_spark, read_table
from models.cora import prompt as tpl

log = logging.getLogger(__name__)

DATA_COLUMNS = [
    "user_id", "item_id", "rating", "event_ts", "label", "split", "history_titles", "n_history",
    "target_title", "prompt", "warm_user", "warm_item", "cold",
]
EVENT_COLUMNS = ["user_id", "item_id", "rating", "event_ts"]


def cora_table(name: str) -> str:
    return f"cora/{name}"


def time_split(events: DataFrame, *, valid_frac: float, test_frac: float) -> DataFrame:
    """Add ``split`` by event-time quantiles: oldest events train, the newest ``test_frac`` test."""
    if not (0 < valid_frac < 1 and 0 < test_frac < 1 and valid_frac + test_frac < 1):
        raise ValueError(f"valid_frac and test_frac must be in (0, 1) with a sum < 1: {valid_frac}, {test_frac}")
    micros = F.unix_micros(F.col("event_ts"))
    q_valid, q_test = events.select(micros.alias("t")).approxQuantile(
        "t", [1 - valid_frac - test_frac, 1 - test_frac], 0.0
    )
    split = F.when(micros <= F.lit(int(q_valid)), "train").when(micros <= F.lit(int(q_test)), "valid")
    return events.withColumn("split", split.otherwise("test"))


def with_history(examples: DataFrame, titled: DataFrame, *, threshold: float, max_history: int) -> DataFrame:
    """Add ``history_titles``: the user's liked titles strictly before each example, latest ``max_history``."""
    liked = (
        titled.where(F.col("rating") >= threshold)
        .groupBy("user_id")
        .agg(F.sort_array(F.collect_list(F.struct(F.unix_micros("event_ts").alias("t"), "title"))).alias("liked"))
    )
    before = F.filter(F.col("liked"), lambda x: x["t"] < F.unix_micros(F.col("event_ts")))
    joined = examples.join(liked, on="user_id", how="left").withColumn(
        "before", F.coalesce(before, F.array().cast("array<struct<t:bigint,title:string>>"))
    )
    start = F.greatest(F.size("before") - F.lit(max_history) + 1, F.lit(1))
    latest = F.slice(F.col("before"), start, F.lit(max_history))
    return (
        joined.withColumn("history_titles", F.transform(latest, lambda x: x["title"]))
        .withColumn("n_history", F.size("history_titles"))
        .drop("liked", "before")
    )


def with_prompt(examples: DataFrame) -> DataFrame:
    """Add ``prompt``, the same text :func:`models.cora.prompt.render` gives."""
    history = F.when(F.size("history_titles") > 0, F.concat_ws(tpl.TITLE_SEP, "history_titles"))
    return examples.withColumn(
        "prompt",
        F.concat(F.lit(tpl.PREFIX), history.otherwise(F.lit(tpl.NO_HISTORY)), F.lit(tpl.MIDDLE),
                 F.col("target_title"), F.lit(tpl.SUFFIX)),
    )


def with_warm_flags(examples: DataFrame, events: DataFrame) -> DataFrame:
    """Add ``warm_user`` / ``warm_item`` (seen in the train split) and ``cold`` (either unseen)."""
    train = events.where(F.col("split") == "train")
    users = train.select("user_id").distinct().withColumn("warm_user", F.lit(True))
    items = train.select("item_id").distinct().withColumn("warm_item", F.lit(True))
    out = (
        examples.join(users, on="user_id", how="left").join(items, on="item_id", how="left")
        .fillna(False, subset=["warm_user", "warm_item"])
    )
    return out.withColumn("cold", ~(F.col("warm_user") & F.col("warm_item")))


def build(
    events: DataFrame, items: DataFrame, *, threshold: float, max_history: int, min_history: int
) -> DataFrame:
    """Prompt examples (DATA_COLUMNS) from split events (EVENT_COLUMNS + split) and items (id, title)."""
    titles = items.select("item_id", "title")
    titled = events.join(titles, on="item_id", how="left").withColumn(
        "title", F.coalesce(F.col("title"), F.concat(F.lit("item "), F.col("item_id")))
    )
    examples = with_history(titled, titled, threshold=threshold, max_history=max_history)
    examples = examples.where(F.col("n_history") >= min_history).withColumnRenamed("title", "target_title")
    examples = examples.withColumn("label", (F.col("rating") >= threshold).cast("int"))
    return with_warm_flags(with_prompt(examples), events).select(*DATA_COLUMNS)


def _events(spark: SparkSession, settings: Settings, *, split: str | None, valid_frac: float,
            test_frac: float) -> DataFrame:
    if split:
        return read_table(spark, settings, lake.split_table(split)).select(*EVENT_COLUMNS, "split")
    events = read_table(spark, settings, lake.INTERACTIONS).select(*EVENT_COLUMNS)
    return time_split(events, valid_frac=valid_frac, test_frac=test_frac)


def run(
    settings: Settings, *, name: str = "default", split: str | None = None, threshold: float = 4.0,
    max_history: int = 10, min_history: int = 0, valid_frac: float = 0.1, test_frac: float = 0.1,
    spark: SparkSession | None = None,
) -> dict:
    """Build and publish ``cora/<name>``; returns counts per split and warm/cold, and the table path."""
    if max_history < 1 or min_history < 0:
        raise ValueError(f"max_history must be >= 1 and min_history >= 0: {max_history}, {min_history}")
    started = time.time()
    spark = spark or get_spark(settings, "ktrec-cora-data")
    events = _events(spark, settings, split=split, valid_frac=valid_frac, test_frac=test_frac)
    unrated = events.where(F.col("rating").isNull()).count()
    events = events.where(F.col("rating").isNotNull()).cache()
    if events.limit(1).count() == 0:
        raise ValueError("no rated interactions: CoRA's labels need ratings (threshold on rating)")
    items = read_table(spark, settings, lake.ITEMS)
    examples = build(events, items, threshold=threshold, max_history=max_history, min_history=min_history)
    staged = lake.staging_dir(settings, cora_table(name))
    examples.repartition(2).write.parquet(str(staged))
    written = spark.read.parquet(str(staged))  # only the examples just written, no sidecars yet
    counts = _counts(written)
    # Formatted in the session's time zone (UTC), as split tables record it.
    train_end = written.where(F.col("split") == "train").agg(
        F.date_format(F.max("event_ts"), "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'+00:00'")).first()[0]
    events.unpersist()
    meta = {
        "name": name, "source": f"splits/{split}" if split else "interactions (time quantiles)",
        "threshold": threshold, "max_history": max_history, "min_history": min_history,
        "valid_frac": None if split else valid_frac, "test_frac": None if split else test_frac,
        "unrated_dropped": unrated, "counts": counts,
        "train_end": train_end, "strategy": "temporal",
    }
    (Path(staged) / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    path = lake.publish(settings, cora_table(name), staged)
    log.info("cora/%s: %s", name, counts)
    return {"table": cora_table(name), "path": str(path), "meta": meta, "seconds": round(time.time() - started, 2)}


def _counts(examples: DataFrame) -> dict:
    rows = examples.groupBy("split", "cold").agg(F.count("*").alias("n"), F.sum("label").alias("pos")).collect()
    counts: dict = {}
    for r in rows:
        entry = counts.setdefault(r["split"], {"n": 0, "positives": 0, "cold": 0})
        entry["n"] += r["n"]
        entry["positives"] += int(r["pos"] or 0)
        entry["cold"] += r["n"] if r["cold"] else 0
    return counts
