"""A profile cache outside the lake: generated texts and embeddings, reused across lakes and runs.

LLM profiles cost CPU time (minutes to hours here), and a benchmark rebuilds its lake many times: the cache
keeps every generated profile under ``<llm.profile_cache>/<dataset>/<generator>/<entity>.parquet``, where
the generator id already names the backend, the model and the prompt version. Rows are looked up by the
profile's source hash (prompt inputs, generator, token allowance, embedder), so a hit is exactly the row
the model would write again. Empty ``llm.profile_cache`` (the default) turns the cache off; ``--full``
bypasses it. A suggested place is ``~/.cache/ktrec/profiles`` (the benchmarks use
``/tmp/ktrec-bench/profile-cache``); it is never inside the repository or KTREC_HOME.
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from jobs.core.settings import Settings

SCHEMA = pa.schema([
    ("source_hash", pa.string()), ("profile_text", pa.string()), ("embedding", pa.list_(pa.float32())),
    ("generated_tokens", pa.int64()), ("created_timestamp", pa.timestamp("us", tz="UTC")),
])


def path(settings: Settings, *, entity: str, generator: str) -> Path | None:
    """The cache file of ``entity`` profiles by ``generator`` for the settings' dataset (None: cache off)."""
    if not settings.llm.profile_cache:
        return None
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", generator)
    root = Path(os.path.expanduser(settings.llm.profile_cache))
    return root / (settings.dataset.name or "dataset") / safe / f"{entity}.parquet"


def lookup(file: Path | None, hashes: set[str]) -> dict[str, dict]:
    """Cached rows by source hash, only those in ``hashes``."""
    if file is None or not file.is_file() or not hashes:
        return {}
    table = pq.read_table(file)
    return {row["source_hash"]: row for row in table.to_pylist() if row["source_hash"] in hashes}


def store(file: Path | None, rows: list[dict]) -> int:
    """Add ``rows`` (source_hash, profile_text, embedding, generated_tokens) not cached yet; returns how many.

    The file is rewritten beside itself and renamed, so a crash never leaves a half-written cache."""
    if file is None or not rows:
        return 0
    old = pq.read_table(file) if file.is_file() else SCHEMA.empty_table()
    known = set(old.column("source_hash").to_pylist())
    created = datetime.now(UTC)
    fresh = [{**r, "created_timestamp": created} for r in rows if r["source_hash"] not in known]
    if not fresh:
        return 0
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.{uuid.uuid4().hex[:8]}")
    pq.write_table(pa.concat_tables([old.cast(SCHEMA), pa.Table.from_pylist(fresh, schema=SCHEMA)]), tmp)
    tmp.replace(file)
    return len(fresh)
