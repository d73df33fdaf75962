"""Feast timings on MovieLens-100K-sized data: stats job, apply, materialize, historical and online reads.

Run: ``PYTHONPATH=. python -m benchmarks.feast_store [--examples 20000]``; writes
``benchmarks/reports/feast_store.{json,md}``. Uses a throwaway KTREC_HOME and the embedded profile.

Interactions: MovieLens 100K (943 users, 1,682 items, 100,000 ratings) through the real ingest job (timed as
``ingest``, not a feature-store step). Profiles: one per user and item at each of two as-of times with random
384-d embeddings (MiniLM's width), written with the profiles job's table writer, so no LLM time is mixed in.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from jobs.core import lake
from jobs.core.settings import DEFAULT_DATASET, REPO_ROOT, Settings
from jobs.profiles import table as profile_table

REPORTS = REPO_ROOT / "benchmarks" / "reports"
AS_OF = [datetime(1998, 1, 1, tzinfo=UTC), datetime(1998, 4, 23, tzinfo=UTC)]
INGEST_DATE = date(1998, 4, 23)  # the day after MovieLens 100K's last rating
EMBED_DIM = 384
TS = pa.timestamp("us", tz="UTC")


def load_interactions(settings: Settings, dataset: Path) -> pd.DataFrame:
    """Ingest MovieLens 100K with the real ingest job; returns the events as pandas (ids, event_timestamp)."""
    from jobs.ingest.batch import run

    run(settings, source=dataset, fmt="ml100k", batch_date=INGEST_DATE)
    events = pq.read_table(
        lake.table_path(settings, lake.INTERACTIONS).resolve(), columns=["user_id", "item_id", "event_ts"]
    )
    return events.to_pandas().rename(columns={"event_ts": "event_timestamp"})


def write_profiles(settings: Settings, *, entity: str, ids: list[str], rng: np.random.Generator) -> None:
    """One profile per id at each as-of time, appended through the profiles job's table writer."""
    for version, as_of in enumerate(AS_OF):
        vectors = rng.standard_normal((len(ids), EMBED_DIM), dtype=np.float32)
        rows = pa.table(
            {
                "entity_id": ids,
                "profile_text": [f"profile {version} of {i}" for i in ids],
                "embedding": pa.array(list(vectors), type=pa.list_(pa.float32())),
                "source_hash": [f"{version}"] * len(ids),
                "generator": ["benchmark:random:v1"] * len(ids),
                "event_timestamp": pa.array([as_of] * len(ids), type=TS),
                "created_timestamp": pa.array([as_of] * len(ids), type=TS),
            },
            schema=lake.PROFILE_SCHEMA,
        )
        profile_table.write_version(settings, entity=entity, rows=rows)


def timed(results: dict, name: str, fn, *args, **kwargs):
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    results[name] = round(time.perf_counter() - started, 3)
    return value


def latency_ms(fn, repeats: int) -> dict:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(statistics.median(samples), 2), "max_ms": round(max(samples), 2), "n": repeats}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--examples", type=int, default=20_000, help="training examples for the kt_training read"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ktrec-bench-feast-") as home:
        report = measure(Path(home), examples=args.examples)
    write_report(report)
    print(json.dumps(report, indent=2))
    return 0


def measure(home: Path, *, examples: int) -> dict:
    """Run every step in a fresh KTREC_HOME ``home``; returns the report."""
    os.environ["KTREC_HOME"] = str(home)  # features/ reads the process settings
    from jobs.core.settings import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    from jobs.publish import materialize, stats
    from jobs.publish import reads as feature_reads
    from jobs.publish.store import get_store

    rng = np.random.default_rng(settings.seed)
    seconds: dict[str, float] = {}
    events = timed(seconds, "ingest", load_interactions, settings, DEFAULT_DATASET)
    users, items = sorted(events["user_id"].unique()), sorted(events["item_id"].unique())
    write_profiles(settings, entity="user", ids=users, rng=rng)
    write_profiles(settings, entity="item", ids=items, rng=rng)
    for index, as_of in enumerate(AS_OF):
        timed(seconds, f"stats_job_as_of_{index + 1}", stats.run, settings, as_of=as_of)
    store = timed(seconds, "apply", get_store, settings)
    timed(seconds, "materialize_initial", materialize.run, settings, end=AS_OF[-1])
    timed(
        seconds,
        "historical_user_profiles_all_users",
        feature_reads.historical_features,
        settings,
        entity="user",
        ids=users,
        as_of=AS_OF[0],
        store=store,
    )
    sample = events.sample(n=min(examples, len(events)), random_state=settings.seed)
    entity_df = sample[["user_id", "item_id", "event_timestamp"]].reset_index(drop=True)
    training = timed(
        seconds,
        "historical_kt_training_examples",
        lambda: store.get_historical_features(
            entity_df=entity_df, features=store.get_feature_service("kt_training"), full_feature_names=True
        ).to_df(),
    )
    online = {
        "sdk_one_user": latency_ms(
            lambda: feature_reads.online_features(settings, entity="user", ids=[users[0]], store=store),
            repeats=50,
        ),
        "sdk_100_users": latency_ms(
            lambda: feature_reads.online_features(settings, entity="user", ids=users[:100], store=store),
            repeats=20,
        ),
    }
    report = {
        "benchmark": "feast_store",
        "profile": settings.profile,
        "offline_store": settings.feast.offline_store,
        "online_store": settings.feast.online_store,
        "users": len(users),
        "items": len(items),
        "interactions": len(events),
        "embedding_dim": EMBED_DIM,
        "training_examples": len(entity_df),
        "training_rows_with_user_profile": int(training["user_profile__embedding"].notna().sum()),
        "seconds": seconds,
        "online": online,
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return report


def write_report(report: dict) -> None:
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "feast_store.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Feast feature store on MovieLens 100K (embedded: DuckDB offline, SQLite online)",
        "",
        (
            f"{report['users']} users, {report['items']} items, {report['interactions']} interactions, "
            f"{report['embedding_dim']}-d profile embeddings at 2 as-of times; "
            f"{report['cpus']} CPUs, load average {report['load_average'][0]:.1f} while measuring."
        ),
        "",
        "| step | seconds |",
        "|---|---|",
        *[f"| {name} | {value} |" for name, value in report["seconds"].items()],
        "",
        "| online read | p50 ms | max ms | calls |",
        "|---|---|---|---|",
        *[f"| {name} | {v['p50_ms']} | {v['max_ms']} | {v['n']} |" for name, v in report["online"].items()],
        "",
    ]
    (REPORTS / "feast_store.md").write_text("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
