"""Builds DELRec's prompt table from the lake with Spark: ``ktrec delrec data --split NAME --teacher NAME``.

Reads a leave-one-out split (``splits/<split>``), the item titles (``items``) and the teacher's predictions
(``delrec_teacher/<teacher>``, joined on ``user_id``), and publishes ``delrec/<name>`` (DATA_COLUMNS, sorted,
one file) with a ``meta.json``: how many examples each task and cut-off kept, how many it skipped and why,
how many split events have no title (left out of histories), and every parameter. Deterministic for a
seed: every random choice is a hash of ids and the seed (jobs/delrec/negatives.py, jobs/delrec/examples.py),
so two runs write the same rows in the same order.

Titles: trimmed; blank = untitled; longer than ``max_title_chars`` = cut at the last space before the limit
plus ``...`` (the stated rule, so long product names fit a prompt; the cut title is also the answer that is
scored). Candidates within a prompt never share a title. The ``prompt`` column is the text of
:func:`models.delrec.prompts.render` for the row's parts, including the soft-prompt marker.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.core import lake
from jobs.core.settings import Settings
from jobs.core.spark import get_spark, read_table
from jobs.delrec import examples as ex
from jobs.delrec import negatives
from jobs.delrec.teacher import read_meta as teacher_meta
from jobs.delrec.teacher import require_loo, teacher_table
from models.delrec import prompts as tpl

log = logging.getLogger(__name__)

DATA_COLUMNS = ["user_id", "task", "cutoff", "step", "n_train", "history_titles", "history_keep", "given_titles",
                "candidate_ids", "candidate_titles", "target_id", "target_title", "target_index", "prompt"]
EVENT = "struct<t:bigint,item_id:string,title:string,title_key:string>"


def delrec_table(name: str) -> str:
    return f"delrec/{name}"


def titles(items: DataFrame, *, max_chars: int) -> DataFrame:
    """``item_id, title, title_key``: trimmed, blank -> null, cut at a word boundary past ``max_chars``."""
    raw = F.trim(F.col("title"))
    cut = F.concat(F.regexp_replace(F.substring(raw, 1, max_chars - 3), r"\s+\S*$", ""), F.lit("..."))
    title = F.when(F.length(raw) == 0, F.lit(None)).when(F.length(raw) > max_chars, cut).otherwise(raw)
    out = items.select("item_id", title.alias("title"))
    return out.withColumn("title_key", F.lower(F.col("title")))


def user_rows(events: DataFrame) -> DataFrame:
    """One row per user: ``n_train``, ``train`` (time order), ``valid``, ``test`` (structs, or null)."""
    event = F.struct(F.unix_micros("event_ts").alias("t"), "item_id", "title", "title_key")
    def pick(split: str) -> Column:
        return F.array_sort(F.collect_list(F.when(F.col("split") == split, event)))
    grouped = events.groupBy("user_id").agg(pick("train").alias("train"), pick("valid").alias("_valid"),
                                            pick("test").alias("_test"))
    return grouped.select("user_id", F.size("train").alias("n_train"), "train",
                          F.element_at("_valid", 1).alias("valid"), F.element_at("_test", 1).alias("test"))


def teacher_lists(teacher: DataFrame, named: DataFrame, events: DataFrame) -> DataFrame:
    """``user_id, top``: the teacher's predictions after the training sequence, titled, without titles the
    user trained on, each title once (its best rank), best first."""
    rows = teacher.where(F.col("cutoff") == "valid").join(named, on="item_id", how="inner") \
        .where(F.col("title").isNotNull())
    trained = events.where(F.col("split") == "train").select("user_id", "title_key").distinct()
    rows = rows.join(trained, on=["user_id", "title_key"], how="left_anti")
    rows = rows.groupBy("user_id", "title_key").agg(F.min(F.struct("rank", "item_id", "title")).alias("best"))
    entry = F.struct(F.col("best.rank").alias("rank"), F.col("best.item_id").alias("item_id"),
                     F.col("best.title").alias("title"), F.col("title_key"))
    ordered = F.array_sort(F.collect_list(entry))
    return rows.groupBy("user_id").agg(F.transform(ordered, lambda x: x.dropFields("rank")).alias("top"))


def prompt_column(teacher: str) -> Column:
    """The row's prompt, piece by piece as models.delrec.prompts.render writes it."""
    task = F.col("task")
    intro = F.when(task == "ta", F.lit(tpl.intro("ta", teacher))).when(task == "rps", F.lit(tpl.intro("rps", teacher)))
    first, before, after = tpl.rps_question(teacher)
    question = (F.when(task == "ta", F.lit(tpl.QUESTION["ta"])).when(task == "rec", F.lit(tpl.QUESTION["rec"]))
                .when(F.size("given_titles") == 0, F.lit(first))
                .otherwise(F.concat(F.lit(before), F.concat_ws(tpl.HISTORY_SEP, "given_titles"), F.lit(after))))
    return F.concat(F.lit(tpl.head(teacher)), intro.otherwise(F.lit(tpl.intro("rec", teacher))),
                    F.concat_ws(tpl.HISTORY_SEP, "history_titles"), question, F.lit(tpl.CANDIDATES_INTRO),
                    F.concat_ws(tpl.CANDIDATE_SEP, "candidate_titles"), F.lit(tpl.ANSWER_HINT))


def finish(kept: DataFrame, *, teacher: str, seed: int) -> DataFrame:
    """Shuffle each pool by a seeded hash, locate the answer, and render the prompt (DATA_COLUMNS)."""
    key = lambda x: F.xxhash64("user_id", "task", "cutoff", "step", x["item_id"], F.lit(seed))  # noqa: E731
    shuffled = F.array_sort(F.transform("pool", lambda x: F.struct(key(x).alias("h"), x["item_id"].alias("item_id"),
                                                                 x["title"].alias("title"))))
    out = kept.withColumn("_c", shuffled).select(
        "user_id", "task", "cutoff", "step", "n_train", F.col("history").alias("history_titles"), "history_keep",
        F.col("given").alias("given_titles"), F.transform("_c", lambda x: x["item_id"]).alias("candidate_ids"),
        F.transform("_c", lambda x: x["title"]).alias("candidate_titles"), F.col("target.item_id").alias("target_id"),
        F.col("target.title").alias("target_title"))
    out = out.withColumn("target_index", (F.array_position("candidate_ids", F.col("target_id")) - 1).cast("int"))
    return out.withColumn("prompt", prompt_column(teacher)).select(*DATA_COLUMNS)


def build(events: DataFrame, items: DataFrame, teacher: DataFrame, *, shape: ex.Shape, teacher_name: str,
          max_title_chars: int) -> tuple[DataFrame, DataFrame]:
    """(kept examples as DATA_COLUMNS, all examples with their skip reason) from split events, items and the
    teacher's predictions."""
    named = titles(items, max_chars=max_title_chars)
    titled = events.join(named, on="item_id", how="left")
    users = user_rows(titled)
    seen = titled.where(F.col("title_key").isNotNull()).select("user_id", "title_key").distinct()
    pool = negatives.universe(named, events.where(F.col("split") == "train"), seed=shape.seed)
    counts = titled.groupBy("user_id").agg(F.count("*").alias("n_items"))
    drawn = negatives.ranked(counts, seen, pool, need=shape.need, seed=shape.seed)
    negs = drawn.groupBy("user_id").agg(F.array_sort(F.collect_list(F.struct("r", "item_id", "title", "title_key")))
                                        .alias("negs"))
    base = users.join(negs, on="user_id", how="left").join(teacher_lists(teacher, named, titled), on="user_id",
                                                           how="left")
    base = base.withColumn("negs", F.coalesce("negs", F.array().cast("array<struct<r:int,item_id:string,"
                                                                      "title:string,title_key:string>>")))
    every = ex.all_tasks(base, shape)
    return finish(every.where(F.col("skip").isNull()), teacher=teacher_name, seed=shape.seed), every


def run(settings: Settings, *, split: str, teacher: str | None = None, name: str | None = None, seed: int = 2024,
        max_history: int = 10, n_candidates: int = 20, ta_window: int = 3, rps_steps: int = 3, min_history: int = 1,
        max_title_chars: int = 80, spark: SparkSession | None = None) -> dict:
    """Build and publish ``delrec/<name>`` (default name: the split); returns counts, skips and the path."""
    started = time.time()
    split_meta = require_loo(settings, split)
    teacher, name = teacher or split, name or split
    t_meta = teacher_meta(settings, teacher)
    if t_meta["split"] != split:
        raise ValueError(f"teacher {teacher!r} was trained on split {t_meta['split']!r}, not {split!r}")
    if max_title_chars < 8:
        raise ValueError(f"max_title_chars must be >= 8, got {max_title_chars}")
    shape = ex.Shape(n_candidates=n_candidates, max_history=max_history, min_history=min_history,
                     ta_window=ta_window, rps_steps=rps_steps, teacher_k=int(t_meta["k"]), seed=seed)
    spark = spark or get_spark(settings, "ktrec-delrec-data")
    events = read_table(spark, settings, lake.split_table(split)).select("user_id", "item_id", "event_ts", "split")
    items = read_table(spark, settings, lake.ITEMS)
    kept, every = build(events, items, read_table(spark, settings, teacher_table(teacher)), shape=shape,
                        teacher_name=t_meta["display"], max_title_chars=max_title_chars)
    every = every.cache()
    try:
        staged = lake.staging_dir(settings, delrec_table(name))
        kept.orderBy("task", "cutoff", "user_id", "step").coalesce(1).write.parquet(str(staged))
        summary = task_counts(every)
    finally:
        every.unpersist()
    summary["untitled_events"] = events.join(titles(items, max_chars=max_title_chars), on="item_id", how="left") \
        .where(F.col("title").isNull()).count()
    meta = {"name": name, "split": split, "teacher": teacher, "teacher_display": t_meta["display"],
            "teacher_run": t_meta["run_dir"], "shape": asdict(shape), "max_title_chars": max_title_chars,
            "template": tpl.TEMPLATE_VERSION, "split_counts": split_meta.get("counts"), **summary}
    (Path(staged) / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    path = lake.publish(settings, delrec_table(name), staged)
    log.info("delrec/%s: kept %s, skipped %s", name, meta["kept"], meta["skipped"])
    return {"table": delrec_table(name), "path": str(path), "meta": meta, "seconds": round(time.time() - started, 2)}


def task_counts(every: DataFrame) -> dict:
    """Kept samples per task/cut-off and skipped ones per reason (the ``task``, ``cutoff``, ``skip`` columns)."""
    kept: dict[str, int] = {}
    skipped: dict[str, dict[str, int]] = {}
    for row in every.groupBy("task", "cutoff", "skip").count().collect():
        key = f"{row['task']}/{row['cutoff']}"
        if row["skip"] is None:
            kept[key] = int(row["count"])
        else:
            skipped.setdefault(key, {})[row["skip"]] = int(row["count"])
    return {"kept": dict(sorted(kept.items())), "skipped": dict(sorted(skipped.items()))}
