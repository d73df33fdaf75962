"""What every input family shares: the parsed :class:`Batch`, the read options, and the small helpers that
read a metadata file and select a frame into a lake schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

LATIN1 = "ISO-8859-1"
YEAR_IN_TITLE = r"\((\d{4})\)\s*$"


@dataclass
class Batch:
    format: str
    files: list[Path]
    events: DataFrame
    items: DataFrame | None = None
    users: DataFrame | None = None


@dataclass(frozen=True)
class ReadOptions:
    column_map: dict[str, str]
    synthetic_epoch_s: int  # epoch seconds of the first synthetic timestamp


def conform(df: DataFrame, ddl: str) -> DataFrame:
    """Select ``df`` into a lake schema: missing columns become NULL, types are cast."""
    fields = [f.strip().split(" ", 1) for f in ddl.split(",")]
    cols = [(F.col(n) if n in df.columns else F.lit(None)).cast(t).alias(n) for n, t in fields]
    return df.select(*cols)


def read_csv(spark: SparkSession, path: Path, *, sep: str, encoding: str = "UTF-8", quoted: bool = False,
             header: bool = False) -> DataFrame:
    """A small metadata file (items, users) through Spark's CSV reader, all columns as strings."""
    return spark.read.csv(str(path), sep=sep, encoding=encoding, header=header,
                          quote='"' if quoted else "", escape='"', mode="PERMISSIVE")


def need(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no {name}")
    return path


