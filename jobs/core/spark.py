"""Builds the SparkSession every job uses, bound to loopback and to UTC.

Jobs call :func:`get_spark`, which returns the process's one session (``getOrCreate``), so a job run from a
test, the CLI or an Airflow task shares it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import DataFrame, SparkSession

from jobs.core.lake import require
from jobs.core.settings import Settings


def get_spark(settings: Settings, app_name: str = "ktrec") -> SparkSession:
    """Return the (possibly shared) session for ``settings.spark.master``."""
    # Spark otherwise binds to the machine's other interface; all traffic stays on loopback.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Python tasks (TorchDistributor's barrier tasks: jobs.train.distributed) run this interpreter unless set.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.appName(app_name)
        .master(settings.spark.master)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.memory", settings.spark.driver_memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(settings.spark.shuffle_partitions))
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        # Listing a few hundred event_date folders is faster on the driver than as a Spark job.
        .config("spark.sql.sources.parallelPartitionDiscovery.threshold", "100000")
        # Feast's DuckDB and Spark stores reject nanosecond timestamps.
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.ansi.enabled", "false")
        .config("spark.sql.warehouse.dir", str(settings.root / "spark-warehouse"))
    )
    for key, value in settings.spark.conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


@contextmanager
def job_description(spark: SparkSession, text: str) -> Iterator[None]:
    """Label the Spark jobs started inside (the event log and UI show it), then clear the label."""
    spark.sparkContext.setJobDescription(text)
    try:
        yield
    finally:
        spark.sparkContext.setJobDescription(None)


@contextmanager
def session_conf(spark: SparkSession, options: dict[str, str]) -> Iterator[None]:
    """Set SQL options for the jobs started inside, then put back what was there before."""
    before = {key: spark.conf.get(key, None) for key in options}
    for key, value in options.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def read_table(spark: SparkSession, settings: Settings, name: str) -> DataFrame:
    """The current version of lake table ``name``; a clear error when it was never written.

    Only ``*.parquet`` files are read: a table folder may also hold sidecars such as a split's meta.json.
    """
    return spark.read.option("pathGlobFilter", "*.parquet").parquet(str(require(settings, name)))
