"""The DELRec teacher: a CF-zoo model trained on a leave-one-out split, and its top-k as a lake table.

``ktrec delrec teacher --split NAME [--run-dir RUN]``: without ``--run-dir`` it trains the teacher with
``conf/delrec/teacher.yaml`` (SASRec, fixed epochs, no early stopping) through ``ktrec train``'s own job, so it
learns from the training prefixes only: a user's valid and test items are never a label, and do not even
choose its epoch. A given run must have been trained on the same split (checked). The predictions (models.
delrec.teacher.top_k, cut-offs ``valid`` and ``test``) carry lake user ids; Spark joins them on ``user_id``
with each user's cut-off time from the split (the last event the teacher read) and publishes
``delrec_teacher/<name>`` (TEACHER_COLUMNS, sorted) with a ``meta.json`` (run, model, split, k, counts).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.core import lake
from jobs.core.settings import REPO_ROOT, Settings
from jobs.core.spark import get_spark, read_table
from jobs.train import run_folder

log = logging.getLogger(__name__)

SCENARIO = REPO_ROOT / "conf" / "delrec" / "teacher.yaml"
TEACHER_COLUMNS = ["user_id", "cutoff", "cutoff_ts", "rank", "item_id", "score"]


def teacher_table(name: str) -> str:
    return f"delrec_teacher/{name}"


def require_loo(settings: Settings, split: str) -> dict:
    """The split's meta.json; a clear error unless it is a leave-one-out split."""
    from jobs.split.table import read_meta

    lake.require(settings, lake.split_table(split))
    meta = read_meta(settings, split)
    if meta.get("strategy") != "loo":
        raise ValueError(f"DELRec needs a leave-one-out split; splits/{split} is {meta.get('strategy')!r}: "
                         "run `ktrec split --strategy loo` first")
    return meta


def train(settings: Settings, *, split: str, seed: int, scenario: Path | None = None, epochs: int | None = None,
          output_dir: Path | None = None) -> Path:
    """Train the teacher on ``split`` with ``ktrec train``'s job; returns its run folder."""
    from jobs.train.scenario_run import run

    require_loo(settings, split)
    out = output_dir or settings.runs_dir / f"delrec-teacher-{split}-s{seed}"
    summary = run(settings, scenario=Path(scenario or SCENARIO), split=split, seed=seed, output_dir=out,
                  epochs=epochs, progress=False)
    return Path(summary["run_dir"])


def cutoff_times(split_rows: DataFrame) -> DataFrame:
    """Per user and cut-off, the time of the last event the teacher reads (valid: train; test: train + valid)."""
    micros = F.unix_micros("event_ts")
    last = split_rows.groupBy("user_id").agg(
        F.max(F.when(F.col("split") == "train", micros)).alias("valid"),
        F.max(F.when(F.col("split") != "test", micros)).alias("test"))
    stacked = last.select("user_id", F.explode(F.array(
        F.struct(F.lit("valid").alias("cutoff"), F.col("valid").alias("t")),
        F.struct(F.lit("test").alias("cutoff"), F.col("test").alias("t")))).alias("c"))
    return stacked.select("user_id", F.col("c.cutoff").alias("cutoff"),
                          F.timestamp_micros(F.col("c.t")).alias("cutoff_ts"))


def run(settings: Settings, *, split: str, name: str | None = None, run_dir: Path | None = None, k: int = 10,
        seed: int = 2024, epochs: int | None = None, spark: SparkSession | None = None) -> dict:
    """Train (unless ``run_dir``) and publish the teacher's top-``k`` table; returns its path and meta."""
    from models.data import load_split
    from models.delrec.teacher import CUTOFFS, DISPLAY, top_k

    started = time.time()
    require_loo(settings, split)
    name = name or split
    if run_dir is None:
        run_dir = train(settings, split=split, seed=seed, epochs=epochs)
    trained_on = run_folder.trained_split(run_dir)
    if trained_on != split:
        raise ValueError(f"teacher run {run_dir} was trained on split {trained_on!r}, not {split!r}: its "
                         "training rows may hold this split's valid/test items")
    spec = run_folder.model_spec(run_dir)
    data = load_split(lake.table_path(settings, lake.split_table(split)))
    model = run_folder.load_model(run_dir, data=data)
    predictions = [top_k(model, data, cutoff=cutoff, k=k) for cutoff in CUTOFFS]
    spark = spark or get_spark(settings, "ktrec-delrec-teacher")
    frame = spark.createDataFrame(
        pd.concat(predictions, ignore_index=True).astype({"user_id": str, "item_id": str}),
        "user_id STRING, cutoff STRING, rank INT, item_id STRING, score DOUBLE")
    times = cutoff_times(read_table(spark, settings, lake.split_table(split)))
    table = frame.join(times, on=["user_id", "cutoff"], how="inner").select(*TEACHER_COLUMNS)
    staged = lake.staging_dir(settings, teacher_table(name))
    table.orderBy("cutoff", "user_id", "rank").coalesce(1).write.parquet(str(staged))
    counts = {r["cutoff"]: {"rows": r["rows"], "users": r["users"]} for r in spark.read.parquet(str(staged))
              .groupBy("cutoff").agg(F.count("*").alias("rows"), F.countDistinct("user_id").alias("users")).collect()}
    meta = {"name": name, "split": split, "run_dir": str(Path(run_dir).resolve()), "model": spec["name"],
            "display": DISPLAY.get(spec["name"], spec["name"]), "sequential": bool(model.sequential), "k": k,
            "counts": counts, "test_metrics": run_folder.summary(run_dir)["metrics"]}
    (staged / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    path = lake.publish(settings, teacher_table(name), staged)
    log.info("delrec teacher %s (%s on %s): %s", name, spec["name"], split, counts)
    return {"table": teacher_table(name), "path": str(path), "meta": meta, "seconds": round(time.time() - started, 2)}


def read_meta(settings: Settings, name: str) -> dict:
    return json.loads((lake.require(settings, teacher_table(name)) / "meta.json").read_text())
