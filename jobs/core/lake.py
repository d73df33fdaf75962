"""The lake: table locations, their schemas (DESIGN.md's data contracts) and atomic publication.

Each table ``<lake>/<name>`` is a symlink to an immutable version folder ``<lake>/.versions/<name>/<id>``.
A job writes a complete new version into :func:`staging_dir`, then :func:`publish` swaps the symlink with
one ``rename`` (atomic on POSIX). A crash at any point before the swap leaves the previous version as the
table; readers never see a half-written table. Unchanged files are carried into the new version with
hard links (:func:`carry_over`), so a new version costs only what changed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from jobs.core.settings import Settings

# Data contracts, as Spark DDL. `select` with these columns is the schema contract of every writer.
INTERACTIONS_SCHEMA = (
    "user_id STRING, item_id STRING, rating FLOAT, event_ts TIMESTAMP, source STRING, "
    "ts_synthetic BOOLEAN, event_date DATE"
)
INTERACTION_COLUMNS = ["user_id", "item_id", "rating", "event_ts", "source", "ts_synthetic", "event_date"]
EVENT_KEY = ["user_id", "item_id", "event_ts"]
# Items and users: every column but the id is nullable; adapters fill what their source has.
ITEMS_SCHEMA = (
    "item_id STRING, title STRING, year INT, genres STRING, categories STRING, brand STRING, "
    "description STRING"
)
ITEM_COLUMNS = ["item_id", "title", "year", "genres", "categories", "brand", "description"]
USERS_SCHEMA = "user_id STRING, age INT, gender STRING, occupation STRING, zip STRING"
USER_COLUMNS = ["user_id", "age", "gender", "occupation", "zip"]
# Splits: one table per split name, lake/splits/<name>, with a `split` column (train|valid|test) and
# a meta.json beside the parquet files (strategy, seed, cut-off timestamps, counts).
SPLIT_COLUMNS = ["user_id", "item_id", "rating", "event_ts", "split"]
QUARANTINE_COLUMNS = ["reason", "source_file", "line_number", "raw", "batch_date"]
# Profiles are written with pyarrow (jobs.profiles.table) and checked with Spark: one schema, both forms.
_TS = pa.timestamp("us", tz="UTC")  # microseconds: Feast rejects nanoseconds
PROFILE_SCHEMA = pa.schema([
    ("entity_id", pa.string()), ("profile_text", pa.string()), ("embedding", pa.list_(pa.float32())),
    ("source_hash", pa.string()), ("generator", pa.string()), ("event_timestamp", _TS),
    ("created_timestamp", _TS),
])
PROFILE_COLUMNS = PROFILE_SCHEMA.names
PROFILES_SCHEMA = (
    "entity_id STRING, profile_text STRING, embedding ARRAY<FLOAT>, source_hash STRING, generator STRING, "
    "event_timestamp TIMESTAMP, created_timestamp TIMESTAMP"
)

# Stats tables: the feature columns (name, type, description) between the id and the two timestamps.
# jobs.publish.stats writes them, features/views.py declares them as Feast fields: this is the one list.
STATS_FEATURES = {
    "user": [
        ("n_interactions", "bigint", "Interactions of the user up to the as-of time."),
        ("mean_rating", "double", "Mean explicit rating given by the user (null when no event has a rating)."),
        ("days_since_last", "double", "Days between the user's last interaction and the as-of time."),
        ("n_items", "bigint", "Distinct items the user interacted with."),
    ],
    "item": [
        ("n_interactions", "bigint", "Interactions with the item up to the as-of time."),
        ("mean_rating", "double", "Mean explicit rating of the item (null when no event has a rating)."),
        ("days_since_last", "double", "Days between the item's last interaction and the as-of time."),
        ("n_users", "bigint", "Distinct users who interacted with the item."),
    ],
}


def stats_columns(entity: str) -> list[str]:
    return [f"{entity}_id", *(name for name, _, _ in STATS_FEATURES[entity]), "event_timestamp", "created_timestamp"]


INTERACTIONS = "interactions"
ITEMS = "items"
USERS = "users"
QUARANTINE = "quarantine"
USER_PROFILES = "profiles_user"
ITEM_PROFILES = "profiles_item"
USER_STATS = "user_stats"
ITEM_STATS = "item_stats"
PROFILE_TABLES = {"user": USER_PROFILES, "item": ITEM_PROFILES}


def profile_table(entity: str) -> str:
    """The profile table of ``entity`` (``user`` or ``item``)."""
    if entity not in PROFILE_TABLES:
        raise ValueError(f"entity must be one of {sorted(PROFILE_TABLES)}, not {entity!r}")
    return PROFILE_TABLES[entity]


def as_utc(moment: datetime) -> datetime:
    """Lake timestamps are UTC: a naive datetime is read as UTC, an aware one is converted."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def split_table(name: str) -> str:
    return f"splits/{name}"


def table_path(settings: Settings, name: str) -> Path:
    """Stable location readers use; a symlink to the current version."""
    return settings.lake / name


def exists(settings: Settings, name: str) -> bool:
    return table_path(settings, name).exists()


# The command whose run writes each table: the hint of the one "missing table" error.
PRODUCERS = {
    INTERACTIONS: "ktrec ingest", ITEMS: "ktrec ingest", USERS: "ktrec ingest", QUARANTINE: "ktrec ingest",
    USER_PROFILES: "ktrec profiles --entity user", ITEM_PROFILES: "ktrec profiles --entity item",
    USER_STATS: "ktrec stats", ITEM_STATS: "ktrec stats", "splits": "ktrec split", "cora": "ktrec cora data",
    "delrec_teacher": "ktrec delrec teacher", "delrec": "ktrec delrec data",
}


class MissingTable(FileNotFoundError):
    """A lake table that was never written, and the command that writes it."""

    def __init__(self, name: str, path: Path) -> None:
        producer = PRODUCERS.get(name, PRODUCERS.get(name.split("/")[0], "the job that writes it"))
        super().__init__(f"lake table {name!r} does not exist at {path}: run `{producer}` first")
        self.table = name


def require(settings: Settings, name: str) -> Path:
    """The stable path of table ``name``; :class:`MissingTable` when it was never written."""
    path = table_path(settings, name)
    if not path.exists():
        raise MissingTable(name, path)
    return path


def read_frame(settings: Settings, name: str, columns: list[str] | None = None):
    """A lake table as pandas, without Spark (small tables, serving-side reads); only ``*.parquet`` files,
    hive partitions (``event_date``) as columns."""
    import pyarrow.dataset as ds

    root = require(settings, name).resolve()
    files = sorted(str(p) for p in root.rglob("*.parquet") if not p.name.startswith((".", "_")))
    if not files:
        raise MissingTable(name, root)
    dataset = ds.dataset(files, format="parquet", partitioning="hive", partition_base_dir=str(root))
    return dataset.to_table(columns=columns).to_pandas()


def current_version(settings: Settings, name: str) -> Path | None:
    path = table_path(settings, name)
    return path.resolve() if path.is_symlink() else None


def staging_dir(settings: Settings, name: str) -> Path:
    """A fresh, not yet existing folder for the next version of ``name`` (the writer creates it)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    path = settings.lake / ".versions" / name / f"{stamp}-{uuid.uuid4().hex[:8]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def carry_over(
    settings: Settings, name: str, dest: Path, keep: Callable[[Path], bool] = lambda _: True
) -> int:
    """Hard-link the current version's files for which ``keep(relative_path)`` holds into ``dest``."""
    current = current_version(settings, name)
    if current is None:
        return 0
    linked = 0
    for src in current.rglob("*"):
        rel = src.relative_to(current)
        if src.is_file() and keep(rel) and not rel.name.startswith(("_SUCCESS", ".")):
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(src, target)
            linked += 1
    return linked


def publish(settings: Settings, name: str, staged: Path, keep_versions: int = 3) -> Path:
    """Make ``staged`` the current version of ``name`` in one atomic rename; prune old versions."""
    if not staged.is_dir():
        raise FileNotFoundError(f"nothing staged for table {name!r} at {staged}")
    link = table_path(settings, name)
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.exists() and not link.is_symlink():
        raise RuntimeError(f"{link} is not a ktrec table (expected a symlink to a version folder)")
    tmp_link = link.with_name(f".{link.name}.{uuid.uuid4().hex[:8]}.lnk")
    os.symlink(staged, tmp_link, target_is_directory=True)
    os.replace(tmp_link, link)
    _prune(staged.parent, keep=staged, keep_versions=keep_versions)
    return link


def _prune(versions_dir: Path, keep: Path, keep_versions: int) -> None:
    versions = sorted(p for p in versions_dir.iterdir() if p.is_dir())
    for old in versions[:-keep_versions]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)
