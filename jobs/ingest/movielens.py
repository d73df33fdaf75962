"""MovieLens: 100K (``u.data``/``u.item``/``u.user``) and 1M (``::`` files), both latin-1 (every byte is a
character, so no line of theirs is an encoding error), and the CSV family (``ratings.csv``, ``movies.csv``
and an optional ``tags.csv``, as in ml-latest / ml-25m; UTF-8, RFC 4180 quoting).
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.core.lake import ITEMS_SCHEMA, USERS_SCHEMA
from jobs.ingest.generic import GENERIC_REQUIRED, csv_events
from jobs.ingest.source import LATIN1, YEAR_IN_TITLE, Batch, ReadOptions, conform, need, read_csv
from jobs.ingest.text import delimited_events, read_lines

ML1M_OCCUPATIONS = [
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer",
    "programmer", "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer",
    "tradesman/craftsman", "unemployed", "writer",
]




def read_ml100k(spark: SparkSession, source: Path, options: ReadOptions) -> Batch:
    data = need(source, "u.data")
    events = delimited_events(read_lines(spark, [data], header=False, encoding=LATIN1), sep="\t", n_columns=4,
                              user=0, item=1, rating=2, ts=3)
    items = users = None
    if (source / "u.item").is_file():
        genre_file = source / "u.genre"
        genres = [ln.split("|")[0] for ln in genre_file.read_text(encoding="latin-1").splitlines() if ln.strip()] \
            if genre_file.is_file() else [f"genre{i}" for i in range(19)]
        raw = read_csv(spark, source / "u.item", sep="|", encoding=LATIN1)
        flags = [F.when(F.col(f"_c{5 + i}") == "1", F.lit(name)) for i, name in enumerate(genres)]
        items = conform(raw.select(
            F.col("_c0").alias("item_id"), F.col("_c1").alias("title"),
            F.coalesce(F.regexp_extract("_c1", YEAR_IN_TITLE, 1), F.substring("_c2", -4, 4)).alias("year"),
            F.concat_ws("|", *flags).alias("genres"),
        ).withColumn("year", F.when(F.col("year") != "", F.col("year"))), ITEMS_SCHEMA)
    if (source / "u.user").is_file():
        raw = read_csv(spark, source / "u.user", sep="|", encoding=LATIN1)
        users = conform(raw.toDF("user_id", "age", "gender", "occupation", "zip"), USERS_SCHEMA)
    files = [p for p in (data, source / "u.item", source / "u.user") if p.is_file()]
    return Batch("ml100k", files, events, items, users)


def read_ml1m(spark: SparkSession, source: Path, options: ReadOptions) -> Batch:
    data = need(source, "ratings.dat")
    events = delimited_events(read_lines(spark, [data], header=False, encoding=LATIN1), sep="::", n_columns=4,
                              user=0, item=1, rating=2, ts=3)
    items = users = None
    if (source / "movies.dat").is_file():
        raw = read_csv(spark, source / "movies.dat", sep="::", encoding=LATIN1)
        items = conform(raw.select(
            F.col("_c0").alias("item_id"), F.col("_c1").alias("title"),
            F.regexp_extract("_c1", YEAR_IN_TITLE, 1).alias("year"), F.col("_c2").alias("genres"),
        ).withColumn("year", F.when(F.col("year") != "", F.col("year"))), ITEMS_SCHEMA)
    if (source / "users.dat").is_file():
        raw = read_csv(spark, source / "users.dat", sep="::")
        names = F.array(*[F.lit(n) for n in ML1M_OCCUPATIONS])
        occupation = F.coalesce(F.get(names, F.col("_c3").cast("int")), F.col("_c3"))
        users = conform(raw.select(
            F.col("_c0").alias("user_id"), F.col("_c1").alias("gender"), F.col("_c2").alias("age"),
            occupation.alias("occupation"), F.col("_c4").alias("zip")), USERS_SCHEMA)
    files = [p for p in (data, source / "movies.dat", source / "users.dat") if p.is_file()]
    return Batch("ml1m", files, events, items, users)


def read_mlcsv(spark: SparkSession, source: Path, options: ReadOptions) -> Batch:
    data = need(source, "ratings.csv")
    mapping = {"user_id": "userId", "item_id": "movieId", "rating": "rating", "timestamp": "timestamp"}
    mapping.update(options.column_map)
    events = csv_events(spark, [data], mapping=mapping, required=GENERIC_REQUIRED, options=options)
    items = None
    if (source / "movies.csv").is_file():
        raw = read_csv(spark, source / "movies.csv", sep=",", quoted=True, header=True)
        items = raw.select(
            F.col("movieId").alias("item_id"), F.col("title"),
            F.regexp_extract("title", YEAR_IN_TITLE, 1).alias("year"), F.col("genres"),
        ).withColumn("year", F.when(F.col("year") != "", F.col("year")))
        if (source / "tags.csv").is_file():
            tags = read_csv(spark, source / "tags.csv", sep=",", quoted=True, header=True)
            described = tags.groupBy(F.col("movieId").alias("item_id")).agg(
                F.concat(F.lit("tags: "), F.concat_ws(", ", F.sort_array(F.collect_set(F.trim("tag")))))
                .alias("description"))
            items = items.join(described, "item_id", "left")
        items = conform(items, ITEMS_SCHEMA)
    files = [p for p in (data, source / "movies.csv", source / "tags.csv") if p.is_file()]
    return Batch("mlcsv", files, events, items, None)


