"""``ktrec split``: cut the lake's interactions into train/valid/test as lake table splits/NAME (with its
meta.json): leave-last-out per user, a global time cut or a seeded random split, after collapsing duplicate
pairs and applying the optional implicit-positive and k-core filters. Bad input exits 1, the code
tests/test_split.py pins.
"""

from __future__ import annotations

import typer

from jobs.cli.common import JsonOpt, emit, known_errors, parse_time, spinner


@known_errors(code=1)  # tests/test_split.py pins exit 1 for an unknown --strategy
def split(
    strategy: str = typer.Option(
        "loo", "--strategy", help="loo (leave-last-out per user) | temporal (global time cut) | random."),
    name: str | None = typer.Option(None, "--name", help="Table name under lake/splits/ (default: the strategy)."),
    seed: int = typer.Option(2024, "--seed", help="Seed of the random split's hash."),
    k_core: int = typer.Option(0, "--k-core", min=0, help="Keep only users and items with >= K interactions (0: off)."),
    min_rating: float | None = typer.Option(None, "--min-rating", help="Implicit positives: keep rating >= R."),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Only events before this time (ISO 8601, naive = UTC); default: all."),
    as_json: bool = JsonOpt,
) -> None:
    """Split the lake's interactions into train/valid/test (lake table splits/NAME with meta.json).

    Duplicate (user, item) pairs are collapsed to their latest event, then --min-rating and --k-core are
    applied, then the split; valid/test rows whose user or item is absent from train are dropped.
    """
    from jobs.core.settings import get_settings
    from jobs.split import table as job

    cutoff = parse_time(as_of, "--as-of") if as_of else None
    with spinner(f"splitting interactions ({strategy})"):
        result = job.run(get_settings(), strategy=strategy, name=name, seed=seed, k_core=k_core,
                         min_rating=min_rating, as_of=cutoff)
    meta = result["meta"]
    emit({"table": result["table"], **meta["counts"], "density": meta["density"],
          "dropped_cold": meta["dropped_cold"], "train_end": meta["train_end"], "seconds": result["seconds"]}
         | ({"meta": meta} if as_json else {}), as_json)
