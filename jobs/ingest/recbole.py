"""RecBole atomic files (``.inter``/``.item``/``.user``), sequence files and UniSRec extras.

* Plain ``.inter`` files (``user_id:token item_id:token rating:float timestamp:float``) are events as is.
* Sequence files (``item_id_list:token_seq`` plus the target ``item_id``) expand into one event per
  position. Without a ``timestamp_list`` the order is synthesised: position ``p`` gets
  ``synthetic_epoch + p`` seconds and ``ts_synthetic`` is true. Leave-one-out splits repeat prefixes
  (``test`` history = ``valid`` history + ``valid`` target), so when a ``*.test.inter`` exists only it is
  read: it holds each user's full sequence.
* UniSRec's ``.user2index``/``.item2index`` map the integer tokens back to the original ids (users and
  ASINs), which the lake keeps; ``.text`` (``title. categories. brand.``) fills the item table.
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.core.lake import ITEMS_SCHEMA, USERS_SCHEMA
from jobs.ingest.source import Batch, ReadOptions, conform, read_csv
from jobs.ingest.text import BAD_COLUMN_COUNT, MissingColumnsError, field, first_line, read_lines

# RecBole's default field names; --map overrides them (e.g. --map user_id=session_id).
FIELDS = {"user_id": "user_id", "item_id": "item_id", "rating": "rating", "timestamp": "timestamp"}
ITEM_ALIASES = {"title": ("title", "movie_title"), "year": ("year", "release_year"),
                "genres": ("genres", "genre", "class"), "categories": ("categories",), "brand": ("brand",),
                "description": ("description",)}
USER_ALIASES = {"age": ("age",), "gender": ("gender",), "occupation": ("occupation",),
                "zip": ("zip", "zip_code")}
# `title. categories. brand.`: the title may itself hold ". ", so split from the right.
UNISREC_TEXT = r"^(.*)\. (.*?)\. (.*?)\.?\s*$"


def header_names(path: Path) -> list[str]:
    return [h.split(":", 1)[0].strip() for h in first_line(path).split("\t")]


def _inter_files(source: Path) -> list[Path]:
    files = [source] if source.is_file() else sorted(source.glob("*.inter"))
    if not files:
        raise FileNotFoundError(f"{source} holds no RecBole .inter files")
    headers = {tuple(header_names(p)) for p in files}
    if len(headers) > 1:
        raise ValueError(f"{source}: .inter files disagree on their columns {sorted(headers)}")
    if any(n.endswith("_list") for n in next(iter(headers))):
        tests = [p for p in files if p.name.endswith(".test.inter")]
        files = tests or files
    return files


def _events(spark: SparkSession, files: list[Path], options: ReadOptions) -> DataFrame:
    names = header_names(files[0])
    fields = {**FIELDS, **options.column_map}
    seq_field = fields["item_id"] + "_list"
    required = [fields["user_id"], fields["item_id"]]
    missing = [c for c in required if c not in names]
    if missing:
        raise MissingColumnsError(source=str(files[0]), missing=missing, present=names)
    idx = {key: names.index(col) for key, col in fields.items() if col in names}
    lines = read_lines(spark, files, header=True)
    df = lines.withColumn("_fields", F.split("value", "\t", -1))
    ok = F.size("_fields") == len(names)
    target = field(F.col("_fields"), idx["item_id"])
    if seq_field in names:
        hist = F.filter(F.split(field(F.col("_fields"), names.index(seq_field)), " "), lambda x: x != "")
        items = F.when(ok, F.concat(hist, F.array(target))).otherwise(F.array(F.lit(None).cast("string")))
        df = df.select("*", F.posexplode_outer(items).alias("_pos", "_item"))
        ts_list = fields["timestamp"] + "_list"
        if ts_list in names and "timestamp" in idx:
            stamps = F.concat(F.split(field(F.col("_fields"), names.index(ts_list)), " "),
                              F.array(field(F.col("_fields"), idx["timestamp"])))
            ts, synthetic = F.get(stamps, F.col("_pos")), F.lit(False)
        else:
            ts, synthetic = (F.lit(options.synthetic_epoch_s) + F.col("_pos")).cast("string"), F.lit(True)
        item, first = F.col("_item"), F.col("_pos") == 0
    else:
        item, first = target, F.lit(True)
        if "timestamp" in idx:
            ts, synthetic = field(F.col("_fields"), idx["timestamp"]), F.lit(False)
        else:  # implicit pairs without time: one synthetic instant, so re-reads dedupe onto the same key
            ts, synthetic = F.lit(str(options.synthetic_epoch_s)), F.lit(True)
    return df.select(
        field(F.col("_fields"), idx["user_id"]).alias("user_id"),
        item.alias("item_id"),
        field(F.col("_fields"), idx.get("rating")).alias("rating"),
        ts.cast("string").alias("ts"),
        synthetic.alias("ts_synthetic"),
        F.when(~ok, F.lit(BAD_COLUMN_COUNT)).alias("_error"),
        "_skip", first.alias("_first"), "_file", "_block", "_mid", F.col("value").alias("_raw"),
    )


def _index_map(spark: SparkSession, path: Path) -> DataFrame:
    return read_csv(spark, path, sep="\t").select(F.col("_c0").alias("_orig"), F.col("_c1").alias("_idx"))


def _map_ids(events: DataFrame, mapping: DataFrame, column: str) -> DataFrame:
    """Replace integer tokens by original ids; a token with no entry is an error, not a silent id."""
    joined = events.join(F.broadcast(mapping), events[column] == mapping["_idx"], "left")
    unknown = F.col(column).isNotNull() & F.col("_orig").isNull()
    return joined.select(
        *[c for c in events.columns if c not in (column, "_error")],
        F.col("_orig").alias(column),
        F.coalesce(F.col("_error"), F.when(unknown, F.lit(f"unknown_{column.split('_')[0]}_index"))).alias("_error"),
    ).select(*events.columns)


def _renamed(spark: SparkSession, path: Path) -> DataFrame:
    raw = read_csv(spark, path, sep="\t", header=True)
    return raw.toDF(*[c.split(":", 1)[0] for c in raw.columns])


def _pick(df: DataFrame, target: str, aliases: dict[str, tuple[str, ...]], id_col: str) -> DataFrame:
    cols = [F.col(id_col).alias(target)]
    for name, options in aliases.items():
        found = next((o for o in options if o in df.columns), None)
        if found:
            cols.append(F.col(found).alias(name))
    return df.select(*cols)


def _items(spark: SparkSession, folder: Path, stem: str, fields: dict[str, str]) -> DataFrame | None:
    text, atomic = folder / f"{stem}.text", folder / f"{stem}.item"
    if text.is_file():
        raw = _renamed(spark, text)
        body = F.trim(F.col("text"))
        parts = [F.nullif(F.regexp_extract(body, UNISREC_TEXT, i), F.lit("")) for i in (1, 2, 3)]
        return conform(raw.select(
            F.col(fields["item_id"]).alias("item_id"),
            F.coalesce(parts[0], body).alias("title"), parts[1].alias("categories"), parts[2].alias("brand"),
            body.alias("description")), ITEMS_SCHEMA)
    if atomic.is_file():
        return conform(_pick(_renamed(spark, atomic), "item_id", ITEM_ALIASES, fields["item_id"]), ITEMS_SCHEMA)
    return None


def _users(spark: SparkSession, folder: Path, stem: str, fields: dict[str, str]) -> DataFrame | None:
    atomic, index = folder / f"{stem}.user", folder / f"{stem}.user2index"
    if atomic.is_file():
        return conform(_pick(_renamed(spark, atomic), "user_id", USER_ALIASES, fields["user_id"]), USERS_SCHEMA)
    if index.is_file():
        return conform(_index_map(spark, index).select(F.col("_orig").alias("user_id")), USERS_SCHEMA)
    return None


def read_recbole(spark: SparkSession, source: Path, options: ReadOptions) -> Batch:
    files = _inter_files(source)
    folder, stem = files[0].parent, files[0].name.split(".")[0]
    fields = {**FIELDS, **options.column_map}
    events = _events(spark, files, options)
    extras = []
    for column, suffix in (("user_id", "user2index"), ("item_id", "item2index")):
        path = folder / f"{stem}.{suffix}"
        if path.is_file():
            events = _map_ids(events, _index_map(spark, path), column)
            extras.append(path)
    items, users = _items(spark, folder, stem, fields), _users(spark, folder, stem, fields)
    meta = [folder / f"{stem}.{s}" for s in ("text", "item", "user")]
    return Batch("recbole", files + extras + [p for p in meta if p.is_file()], events, items, users)
