"""The lake: table locations, their schemas (DESIGN.md's data contracts) and atomic publication.

Layout. Each version of a table is an immutable folder ``<lake>/.versions/<name>/<id>``. A *generation*
``<lake>/.generations/<id>/`` is a small folder naming the current version of every table: one relative
symlink per table (``<gen>/<name> -> ../../.versions/<name>/<id>``) plus ``_tables.json`` (the same map, to
read without walking links). ``<lake>/_current`` is a symlink to the current generation, and the stable
path every reader uses, :func:`table_path` ``= <lake>/<name>``, is a symlink to ``_current/<name>``. A
lookup goes ``<lake>/<name> -> _current/<name> -> .generations/<g>/<name> -> .versions/<name>/<v>``; all
links are relative, so the lake can be moved or mounted elsewhere whole.

Commit. A job writes each new version into :func:`staging_dir` (never visible), then :func:`commit` builds a
new generation (the current one's links, the staged tables pointed at their new versions) and swaps
``_current`` with one ``rename`` (atomic on POSIX). Every table of one commit becomes visible at the same
instant to every reader of :func:`table_path` (Spark, pandas, Feast: all resolve the one ``_current``
link): before the rename they see the previous generation whole, after it the new one whole, and a crash
anywhere before the rename leaves the previous generation as the lake. :func:`publish` is a commit of one
table; an ingest batch is one commit of ``interactions``, ``items``, ``users``, ``quarantine`` and its
manifest (the table ``_manifests/ingest``). Commits are serialised by an ``flock`` on ``<lake>/.lock``
(each reads, then replaces, the generation).

Readers. A path is resolved when a file is opened: a reader that opens several tables one after the other
across a commit may mix two generations, and Spark, which lists files when a DataFrame is made and opens
them later, may find a listed file gone. To read one batch whole, resolve :func:`snapshot` once and read
``snapshot / name`` (it stays valid until pruned, ``keep_versions`` commits later).

A table seen for the first time gets its stable link before the rename (dangling, i.e. absent, until the
rename makes it resolve). A lake of the older layout (``<lake>/<name>`` linking straight to a version) is
adopted by its first commit: its links become the first generation and are re-pointed through
``_current`` right after the rename. Unchanged files are carried into a new version with hard links
(:func:`carry_over`), so a new version costs only what changed. After a commit, generations beyond the
newest ``keep_versions`` are removed, and so are a committed table's versions older than the newest
``keep_versions`` that no kept generation names (a crashed job's staged versions among them).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
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
# One row per quarantined input line, keyed by (source_digest, line_number): the sha256 of the file's bytes
# and the 1-based physical line (a Parquet row's position). ``source_file`` is the file that first delivered it.
QUARANTINE_SCHEMA = (
    "reason STRING, source_file STRING, source_digest STRING, line_number BIGINT, raw STRING, batch_date DATE"
)
QUARANTINE_COLUMNS = ["reason", "source_file", "source_digest", "line_number", "raw", "batch_date"]
QUARANTINE_KEY = ["source_digest", "line_number"]
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
# Ingest manifests: one JSON file per batch date, a table so it is committed with the batch it describes.
INGEST_MANIFESTS = "_manifests/ingest"
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


CURRENT = "_current"
GENERATIONS = ".generations"
VERSIONS = ".versions"
TABLES_FILE = "_tables.json"


def table_path(settings: Settings, name: str) -> Path:
    """Stable location readers use; a symlink through ``_current`` to the committed version."""
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
    return path.resolve() if path.is_symlink() and path.exists() else None


def snapshot(settings: Settings) -> Path | None:
    """The current generation folder: ``snapshot / name`` stays on one commit however many commits follow
    (until it is pruned, ``keep_versions`` commits later)."""
    link = settings.lake / CURRENT
    return link.resolve() if link.is_symlink() and link.exists() else None


def staging_dir(settings: Settings, name: str) -> Path:
    """A fresh, not yet existing folder for the next version of ``name`` (the writer creates it)."""
    path = settings.lake / VERSIONS / name / _stamp()
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
    """Make ``staged`` the current version of ``name`` (a :func:`commit` of one table)."""
    return commit(settings, {name: staged}, keep_versions=keep_versions)[name]


def commit(settings: Settings, staged: Mapping[str, Path], keep_versions: int = 3) -> dict[str, Path]:
    """Make every ``staged`` version current at once: one new generation, one rename of ``_current``."""
    lake = settings.lake.resolve()  # one spelling of every path, for the relative links
    for name, folder in staged.items():
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"nothing staged for table {name!r} at {folder}")
    with _locked(lake):
        tables, legacy = _current_tables(lake)
        for name in staged:
            _check_stable_link(lake, name)
        tables |= {name: Path(folder).resolve() for name, folder in staged.items()}
        generation = _write_generation(lake, tables)
        for name in staged:  # new tables: dangling (absent) until the swap below
            if not (lake / name).is_symlink():
                _link(lake / name, lake / CURRENT / name)
        _link(lake / CURRENT, generation)  # the commit
        for name in sorted({*staged, *legacy}):  # adopt links of the older layout (same versions: no change seen)
            if os.readlink(lake / name) != os.path.relpath(lake / CURRENT / name, (lake / name).parent):
                _link(lake / name, lake / CURRENT / name)
        _prune(lake, staged, keep_versions)
    return {name: table_path(settings, name) for name in staged}


def _stamp() -> str:
    return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}"


@contextmanager
def _locked(lake: Path) -> Iterator[None]:
    lake.mkdir(parents=True, exist_ok=True)
    with open(lake / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _current_tables(lake: Path) -> tuple[dict[str, Path], list[str]]:
    """The current generation's tables (name → version folder), and the older layout's links to adopt."""
    current = lake / CURRENT
    if current.is_symlink():
        entries = json.loads((current / TABLES_FILE).read_text())
        return {name: (lake / rel).resolve() for name, rel in entries.items()}, []
    versions, found = (lake / VERSIONS).resolve(), {}
    for root, dirs, files in os.walk(lake):
        if Path(root) == lake:
            dirs[:] = [d for d in dirs if not d.startswith(".")]
        for entry in dirs + files:
            path = Path(root) / entry
            if path.is_symlink() and path.exists() and path.resolve().is_relative_to(versions):
                found[str(path.relative_to(lake))] = path.resolve()
    return found, sorted(found)


def _check_stable_link(lake: Path, name: str) -> None:
    link = lake / name
    if (link.exists() or link.is_symlink()) and not link.is_symlink():
        raise RuntimeError(f"{link} is not a ktrec table (expected a symlink to a version folder)")


def _write_generation(lake: Path, tables: Mapping[str, Path]) -> Path:
    generation = lake / GENERATIONS / _stamp()
    generation.mkdir(parents=True)
    for name, version in sorted(tables.items()):
        _link(generation / name, version)
    rel = {name: str(version.relative_to(lake.resolve())) for name, version in sorted(tables.items())}
    (generation / TABLES_FILE).write_text(json.dumps(rel, indent=2, sort_keys=True) + "\n")
    return generation


def _link(link: Path, target: Path) -> None:
    """Point ``link`` at ``target`` (a relative symlink) with one atomic rename."""
    link.parent.mkdir(parents=True, exist_ok=True)
    relative = os.path.relpath(target, link.parent)  # lexical: a link in the target's path stays a link
    tmp = link.with_name(f".{link.name}.{uuid.uuid4().hex[:8]}.lnk")
    os.symlink(relative, tmp, target_is_directory=True)
    os.replace(tmp, link)


def _prune(lake: Path, committed: Mapping[str, Path], keep_versions: int) -> None:
    generations = sorted(p for p in (lake / GENERATIONS).iterdir() if p.is_dir() and not p.is_symlink())
    current = (lake / CURRENT).resolve()
    kept = [g for g in [*generations[-keep_versions:], current] if (g / TABLES_FILE).is_file()]
    for old in generations[:-keep_versions]:
        if old != current:
            shutil.rmtree(old, ignore_errors=True)
    named = {(lake / rel).resolve() for g in kept for rel in json.loads((g / TABLES_FILE).read_text()).values()}
    for staged in (Path(folder).resolve() for folder in committed.values()):
        older = sorted(p for p in staged.parent.iterdir() if p.is_dir() and p.name < staged.name)
        for old in older[: max(len(older) - (keep_versions - 1), 0)]:
            if old.resolve() not in named:
                shutil.rmtree(old, ignore_errors=True)
