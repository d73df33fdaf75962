"""Builds the alignment task samples from the lake with Spark: ``ktrec align data --split NAME``.

Reads a leave-one-out split (``splits/<split>``) and the items (title; categories or genres as item text),
and publishes ``align/<name>`` (SAMPLE_COLUMNS of jobs/align/samples.py, kept rows only, sorted, one file)
with a ``meta.json``: sample counts per task and cut-off, skips per reason, the counted bad-input events
(untitled events, training events sharing a held-out title, users under 3 interactions, over-long titles,
duplicate titles), and every parameter; and ``align_catalogue/<name>`` (:func:`catalogue`: the items
retrieval chooses from). Deterministic for a seed: negatives are a seeded hash walk
(jobs/delrec/negatives.py) and each user's choices are seeded by its id (jobs/align/samples.py).

Titles follow DELRec's rule (jobs.delrec.data.titles): trimmed, blank = untitled, longer than
``max_title_chars`` = cut at a word boundary plus ``...``. Item text for MLM = the title, then the item's
categories (Amazon) or genres (MovieLens) when present.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.align.samples import SAMPLE_COLUMNS, Shape, user_samples
from jobs.core import lake
from jobs.core.settings import Settings
from jobs.core.spark import get_spark, read_table
from jobs.delrec import negatives
from jobs.delrec.data import task_counts, titles
from jobs.delrec.teacher import require_loo
from models.align.prompts import TEMPLATE_VERSION

log = logging.getLogger(__name__)

SAMPLE_SCHEMA = ("user_id STRING, task STRING, cutoff STRING, prompt STRING, answer STRING, target_id STRING, "
                 "candidate_ids ARRAY<STRING>, candidate_titles ARRAY<STRING>, target_index INT, rating DOUBLE, "
                 "history_ids ARRAY<STRING>, n_train INT, skip STRING, untitled_events INT, "
                 "train_event_shares_target_title INT")


def align_table(name: str) -> str:
    return f"align/{name}"


def catalogue_table(name: str) -> str:
    return f"align_catalogue/{name}"


def catalogue(named: DataFrame, split_rows: DataFrame) -> DataFrame:
    """``item_id, title, train_count``: every titled item of the split's training rows (what a model can know;
    held-out items are among them, the split drops cold ones), with its training popularity for the tie rule."""
    counts = split_rows.where(F.col("split") == "train").groupBy("item_id").agg(F.count("*").alias("train_count"))
    return named.where(F.col("title").isNotNull()).join(counts, on="item_id", how="inner") \
        .select("item_id", "title", F.col("train_count").cast("int").alias("train_count"))


def item_text(items: DataFrame, named: DataFrame) -> DataFrame:
    """``item_id, title, title_key, text``: the cut title and, for MLM, the title plus categories or genres."""
    extra = F.coalesce(F.col("categories"), F.regexp_replace(F.col("genres"), r"\|", ", "))
    joined = named.join(items.select("item_id", "categories", "genres"), on="item_id", how="left")
    text = F.when(F.col("title").isNull(), F.lit(None)).when(extra.isNull() | (F.trim(extra) == ""), F.col("title")) \
        .otherwise(F.concat_ws(". ", F.col("title"), F.trim(extra)))
    return joined.select("item_id", "title", "title_key", text.alias("text"))


def _mapper(shape: Shape):
    def run(frames):
        for frame in frames:
            out = []
            for row in frame.itertuples(index=False):
                events = sorted((dict(e) for e in row.events), key=lambda e: (e["t"], e["item_id"]))
                negs = sorted((dict(n) for n in (row.negs if row.negs is not None else [])), key=lambda n: n["r"])
                rows, counts = user_samples(row.user_id, events, negs, shape)
                for r in rows:
                    out.append(r | counts)
                    counts = {k: 0 for k in counts}  # counted once per user
            yield pd.DataFrame(out, columns=SAMPLE_COLUMNS + ["untitled_events", "train_event_shares_target_title"])
    return run


def build(split_rows: DataFrame, items: DataFrame, *, shape: Shape, max_title_chars: int) -> DataFrame:
    """Every sample row (kept or with its skip reason) of every user of the split."""
    named = titles(items, max_chars=max_title_chars)
    texts = item_text(items, named)
    titled = split_rows.join(texts, on="item_id", how="left")
    event = F.struct(F.unix_micros("event_ts").alias("t"), "item_id", "title", "title_key",
                     F.col("rating").cast("double").alias("rating"), "text", "split")
    users = titled.groupBy("user_id").agg(F.collect_list(event).alias("events"), F.count("*").alias("n_items"))
    seen = titled.where(F.col("title_key").isNotNull()).select("user_id", "title_key").distinct()
    pool = negatives.universe(named, split_rows.where(F.col("split") == "train"), seed=shape.seed)
    drawn = negatives.ranked(users.select("user_id", "n_items"), seen, pool, need=shape.need, seed=shape.seed)
    negs = drawn.groupBy("user_id").agg(F.collect_list(F.struct("r", "item_id", "title")).alias("negs"))
    base = users.join(negs, on="user_id", how="left").select("user_id", "events", "negs")
    return base.mapInPandas(_mapper(shape), SAMPLE_SCHEMA)


def has_ratings(split_rows: DataFrame) -> bool:
    """Explicit feedback: more than one distinct rating value among the training rows."""
    return split_rows.where(F.col("split") == "train").select("rating").where(F.col("rating").isNotNull()) \
        .distinct().limit(2).count() > 1


def run(settings: Settings, *, split: str, name: str | None = None, seed: int = 2024, n_candidates: int = 20,
        max_history: int = 10, max_title_chars: int = 80, mim_rate: float = 0.2, mlm_rate: float = 0.15,
        spark: SparkSession | None = None) -> dict:
    """Build and publish ``align/<name>`` (default name: the split); returns counts, skips and the path."""
    started = time.time()
    split_meta = require_loo(settings, split)
    name = name or split
    if max_title_chars < 8:
        raise ValueError(f"max_title_chars must be >= 8, got {max_title_chars}")
    spark = spark or get_spark(settings, "ktrec-align-data")
    rows = read_table(spark, settings, lake.split_table(split)).select("user_id", "item_id", "rating", "event_ts",
                                                                        "split")
    items = read_table(spark, settings, lake.ITEMS)
    shape = Shape(n_candidates=n_candidates, max_history=max_history, mim_rate=mim_rate, mlm_rate=mlm_rate,
                  with_rating=has_ratings(rows), seed=seed)
    every = build(rows, items, shape=shape, max_title_chars=max_title_chars).cache()
    try:
        staged = lake.staging_dir(settings, align_table(name))
        every.where(F.col("skip").isNull()).select(*SAMPLE_COLUMNS[:-1]) \
            .orderBy("task", "cutoff", "user_id").coalesce(1).write.parquet(str(staged))
        summary = _counts(every)
    finally:
        every.unpersist()
    summary["bad_input"] |= _title_counts(items, rows, max_title_chars)
    staged_catalogue = lake.staging_dir(settings, catalogue_table(name))
    catalogue(titles(items, max_chars=max_title_chars), rows).orderBy("item_id").coalesce(1) \
        .write.parquet(str(staged_catalogue))
    lake.publish(settings, catalogue_table(name), staged_catalogue)
    meta = {"name": name, "split": split, "shape": asdict(shape), "max_title_chars": max_title_chars,
            "template": TEMPLATE_VERSION, "split_counts": split_meta.get("counts"), **summary}
    (Path(staged) / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    path = lake.publish(settings, align_table(name), staged)
    log.info("align/%s: kept %s, skipped %s", name, meta["kept"], meta["skipped"])
    return {"table": align_table(name), "path": str(path), "meta": meta, "seconds": round(time.time() - started, 2)}


def _counts(every: DataFrame) -> dict:
    counts = task_counts(every)  # DELRec's kept/skipped counts, plus alignment's bad-input totals
    totals = every.agg(F.sum("untitled_events").alias("u"), F.sum("train_event_shares_target_title").alias("s"))\
        .first()
    return {**counts, "bad_input": {"untitled_events": int(totals["u"] or 0),
                                    "train_events_sharing_a_held_out_title": int(totals["s"] or 0)}}


def _title_counts(items: DataFrame, rows: DataFrame, max_chars: int) -> dict:
    """Catalogue-side counts: untitled items, titles cut for length, items sharing a title with another, and
    users under 3 interactions (all-train by the leave-one-out rule)."""
    raw = F.trim(F.col("title"))
    used = items.join(rows.select("item_id").distinct(), on="item_id", how="left_semi")
    c = used.agg(F.sum(F.when(raw.isNull() | (F.length(raw) == 0), 1).otherwise(0)).alias("untitled"),
                 F.sum(F.when(F.length(raw) > max_chars, 1).otherwise(0)).alias("cut")).first()
    dup = used.where(raw.isNotNull() & (F.length(raw) > 0)).groupBy(F.lower(raw).alias("k")).count() \
        .where(F.col("count") > 1).agg(F.sum("count").alias("n")).first()["n"]
    short = rows.groupBy("user_id").count().where(F.col("count") < 3).count()
    return {"untitled_items": int(c["untitled"] or 0), "titles_cut_for_length": int(c["cut"] or 0),
            "items_sharing_a_title": int(dup or 0), "users_under_3_interactions": int(short)}


def read_samples(settings: Settings, name: str) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """The sample table's rows, its meta.json and the catalogue; a clear error when they have not been built."""
    path = lake.require(settings, align_table(name))
    lake.require(settings, catalogue_table(name))
    return (lake.read_frame(settings, align_table(name)), json.loads((Path(path) / "meta.json").read_text()),
            lake.read_frame(settings, catalogue_table(name)))
